//! Writes a deeper GPT model file for depth measurements: the blocks of a model file that
//! `fold-ml import` wrote, repeated in turn up to the depth asked for, under the same specs
//! (one step circuit, the same keys) and a fresh salt. Its next token is not a trained
//! model's; what it costs to prove, resume and verify is that of a GPT of that depth.
//!
//! `cargo run --release --example gpt_deepen -- gpt.foldml 64 gpt64.foldml`, then
//! `fold-ml prove --model gpt64.foldml --input tokens.json --job job64`.

use anyhow::{bail, Context, Result};
use fold_ml::model::gpt_file::GptModel;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, blocks, to] = args.as_slice() else {
        bail!("usage: gpt_deepen <model file> <blocks> <output model file>");
    };
    let blocks: usize = blocks.parse().context("the number of blocks")?;
    if blocks == 0 {
        bail!("a GPT needs at least one block");
    }
    let mut m = GptModel::read(&PathBuf::from(from))?;
    let imported = m.q.blocks.len();
    m.q.blocks = (0..blocks).map(|b| m.q.blocks[b % imported].clone()).collect();
    m.name = format!("{}-{blocks}", m.name);
    m.salt = <fold_ml::F as ff::Field>::random(rand_core::OsRng);
    m.write(&PathBuf::from(to))?;
    println!("wrote {to}: {blocks} blocks (the {imported} of {from} repeated in turn)");
    Ok(())
}
