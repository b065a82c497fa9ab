//! Imports `examples/gpt/gpt.onnx`, calibrates it on `calib.json` and prints how often the
//! quantized next token (the integer model the proof covers) is tract's float one on the
//! held-out windows of `test.json`.
//!
//! `cargo run --release --example gpt_agreement [-- <windows>]` (default: all 500).

use anyhow::{Context, Result};
use fold_ml::model::onnx::gpt::{agreement, quantize, read_gpt};
use fold_ml_circuits::transformer::block_constraints;
use std::path::Path;
use std::time::Instant;

fn windows(path: &Path) -> Result<Vec<Vec<usize>>> {
    #[derive(serde::Deserialize)]
    struct File {
        inputs: Vec<Vec<usize>>,
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice::<File>(&bytes).with_context(|| format!("parsing {}", path.display()))?.inputs)
}

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gpt");
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(500);
    let onnx = dir.join("gpt.onnx");
    let t0 = Instant::now();
    let float = read_gpt(&onnx)?;
    let q = quantize(&float, &windows(&dir.join("calib.json"))?)?;
    println!("imported {} blocks in {:.1} s: {}", q.blocks.len(), t0.elapsed().as_secs_f64(), q.scales);
    println!("block spec: {:?}", q.spec);
    println!("one block step: {} constraints (without the commitments)", block_constraints(&q.spec)?);
    let test: Vec<_> = windows(&dir.join("test.json"))?.into_iter().take(n).collect();
    let t1 = Instant::now();
    let a = agreement(&q, &float, &onnx, &test)?;
    println!("{a} ({:.1} s)", t1.elapsed().as_secs_f64());
    Ok(())
}
