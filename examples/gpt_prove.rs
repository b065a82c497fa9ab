//! Proves the shipped GPT (`examples/gpt/gpt.onnx`, 4 blocks) end to end on one held-out
//! window of `test.json`: the next character, from public token ids to public logits, with
//! the weights private. Imports and calibrates as `gpt_agreement` does, sets up the three
//! segments' keys (embedding, blocks, head), folds and compresses each, verifies, and
//! prints the times, the proof's size and peak memory.
//!
//! `cargo run --release --example gpt_prove [-- <window index> [<blocks>]]` (default: 0, and
//! the model's 4 blocks). More blocks than the model has make a deeper GPT of the same shape
//! for the depth table: the imported blocks repeated in turn (its next token is not a
//! trained model's; what it costs to prove is the same).

use anyhow::{Context, Result};
use fold_ml::model::onnx::gpt::{quantize, read_gpt};
use fold_ml::prove::gpt::{prove, verify, GptKeys};
use fold_ml_circuits::cost::step_constraints;
use fold_ml_circuits::transformer::{EmbedStep, HeadStep, TransformerStep};
use fold_ml_circuits::F;
use std::path::Path;
use std::time::Instant;

fn json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

#[derive(serde::Deserialize)]
struct Windows {
    inputs: Vec<Vec<usize>>,
}

/// Constraints of a step circuit.
fn num<C: nova_snark::traits::circuit::StepCircuit<F>>(step: &C) -> Result<usize> {
    step_constraints(step).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gpt");
    let index: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let vocab: Vec<String> = json(&dir.join("vocab.json"))?;
    let float = read_gpt(&dir.join("gpt.onnx"))?;
    let mut q = quantize(&float, &json::<Windows>(&dir.join("calib.json"))?.inputs)?;
    if let Some(blocks) = std::env::args().nth(2).map(|s| s.parse::<usize>()).transpose()? {
        q.blocks = (0..blocks).map(|b| q.blocks[b % q.blocks.len()].clone()).collect();
        println!("{blocks} blocks: the imported 4 repeated in turn");
    }
    let window = json::<Windows>(&dir.join("test.json"))?.inputs.into_iter().nth(index).context("no such window")?;
    let ids: Vec<u16> = window.iter().map(|&t| u16::try_from(t)).collect::<Result<_, _>>()?;
    let text: String = window.iter().map(|&t| vocab[t].as_str()).collect();

    let constraints = [
        num(&EmbedStep::blank(q.embed_spec)?)?,
        num(&TransformerStep::blank(q.spec)?)?,
        num(&HeadStep::blank(q.head_spec)?)?,
    ];
    println!("step constraints (embedding, block, head; without Nova's verifier circuit): {constraints:?}");
    let t = Instant::now();
    let keys = GptKeys::setup(&q)?;
    let setup = t.elapsed().as_secs_f64();
    println!("setup of the three segments' keys: {setup:.1} s");
    let salt = <F as ff::Field>::random(rand_core::OsRng);
    let (proof, times) = prove(&keys, &q, salt, &ids)?;
    let names = ["embedding", "blocks", "head"];
    for (i, name) in names.iter().enumerate() {
        println!("{name}: fold {:.2} s, compress {:.1} s", times.fold[i], times.compress[i]);
    }
    let total: f64 = times.fold.iter().chain(&times.compress).sum();
    println!("prove (fold + compress, all segments): {total:.1} s");
    let bytes: usize = (proof.proofs.iter())
        .map(|p| bincode::serde::encode_to_vec(p, bincode::config::standard()).map(|b| b.len()))
        .sum::<Result<_, _>>()?;
    println!("proof: {bytes} bytes in three compressed SNARKs");
    let t = Instant::now();
    let next = verify(&keys.verifier_keys(), &proof.statement, proof.proofs.each_ref())?;
    println!("verified in {:.2} s", t.elapsed().as_secs_f64());
    println!("{text:?} -> next character {:?} (token {next})", vocab[next]);
    println!("peak memory: {:.2} GiB", fold_ml::mem::peak_rss_bytes().unwrap_or(0) as f64 / f64::from(1 << 30));
    Ok(())
}
