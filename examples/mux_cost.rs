//! What one proof for a whole network would cost with the multiplexed step circuit
//! (`fold_ml_circuits::mux`): the circuit that holds every distinct step of a model's
//! plan, its parameter setup, and the compression of a one-step run of it, checked by
//! the verifier; beside it, the plan's own steps. Folding is not timed here: a fold costs
//! about the same per constraint whatever the circuit (the README's fold tables), and
//! every fold of a multiplexed run pays the whole circuit.
//!
//! The largest of the plan's own steps is set up and compressed the same way (one step,
//! from the state its blank opens), for a like-for-like ratio; `--largest-only` skips the
//! multiplexed circuit (to measure another plan's largest step).
//!
//! `cargo run --release --example mux_cost -- MODEL.foldml [FOLD_BUDGET] [--largest-only]`

use fold_ml::model::network::Network;
use fold_ml::nova::{E1, E2, S1, S2};
use fold_ml::prove::plan::architectures;
use fold_ml_circuits::cost::step_constraints;
use fold_ml_circuits::mux::{MuxSlots, MuxState, MuxStep};
use fold_ml_circuits::step::Step;
use fold_ml_circuits::tile::TileState;
use fold_ml_circuits::F;
use nova_snark::nova::{CompressedSNARK, PublicParams, RecursiveSNARK};
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let largest_only = args.iter().any(|a| a == "--largest-only");
    let mut args = args.into_iter().filter(|a| a != "--largest-only");
    let usage = "usage: mux_cost MODEL.foldml [FOLD_BUDGET] [--largest-only]";
    let path = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let budget = args.next().map(|b| b.parse()).transpose()?;
    let net = Network::read(path.as_ref())?;
    let archs = architectures(&net, None, budget);
    let mut distinct = Vec::new();
    for a in &archs {
        if !distinct.contains(a) {
            distinct.push(a.clone());
        }
    }
    let shapes: Vec<_> = distinct.iter().map(|a| (a.block.clone(), a.layers_per_step, a.tiling)).collect();
    let (mut sum, mut largest) = (0, (0, 0));
    let mut steps = 0;
    for (j, a) in distinct.iter().enumerate() {
        let c = step_constraints(&a.blank()?)?;
        sum += c;
        largest = largest.max((c, j));
        println!("step {j}: {c} constraints ({} tiles per block)", a.tiles());
    }
    for (a, seg) in archs.iter().zip(&net.segments) {
        steps += a.steps(seg.layers.len());
    }
    let slots = MuxSlots::new(&shapes)?;
    let mux = MuxStep::blank(&slots);
    let counted = step_constraints(&mux)?;
    println!(
        "{} distinct steps, {sum} constraints in all; multiplexed: {counted} (+{}); {steps} steps",
        distinct.len(),
        counted - sum
    );
    if !largest_only {
        let z0 = MuxState { tile: tile_state(slots.opens(0))?, schedule: F::from(0) }.to_vec();
        measure("the multiplexed circuit", &Step::Mux(Box::new(mux)), &z0)?;
    }
    let a = &distinct[largest.1];
    let z0 = match a.tiling {
        Some(_) => tile_state(slots.opens(largest.1))?.to_vec(),
        None => slots.opens(largest.1).to_vec(),
    };
    measure(&format!("the largest step ({})", largest.0), &a.blank()?, &z0)
}

/// Sets up `step`'s parameters and keys, folds it once from `z0` (the state its blank
/// opens), compresses and verifies; prints the seconds.
fn measure(name: &str, step: &Step, z0: &[F]) -> anyhow::Result<()> {
    let t = Instant::now();
    let pp = PublicParams::<E1, E2, Step>::setup(step, &*S1::ck_floor(), &*S2::ck_floor())?;
    let (pk, vk) = CompressedSNARK::<E1, E2, Step, S1, S2>::setup(&pp)?;
    let setup = t.elapsed().as_secs_f64();
    let mut rs = RecursiveSNARK::new(&pp, step, z0)?;
    rs.prove_step(&pp, step)?;
    let t = Instant::now();
    let proof = CompressedSNARK::<E1, E2, Step, S1, S2>::prove(&pp, &pk, &rs)?;
    let compress = t.elapsed().as_secs_f64();
    proof.verify(&vk, 1, z0)?;
    let primary = pp.num_constraints().0;
    let bytes = bincode::serde::encode_to_vec(&proof, bincode::config::standard())?.len();
    println!(
        "{name}: {primary} primary constraints per fold, setup {setup:.1} s, compression {compress:.1} s, \
         proof {bytes} B (verified)"
    );
    Ok(())
}

/// A slot's state as a tile state (zero tile slots for a whole-block slot).
fn tile_state(z: &[F]) -> anyhow::Result<TileState> {
    TileState::from_z(&pad(z)).ok_or_else(|| anyhow::anyhow!("a slot's state"))
}

/// A slot's state padded with zero tile slots.
fn pad(z: &[F]) -> Vec<F> {
    let mut z = z.to_vec();
    z.resize(fold_ml_circuits::tile::TILE_ARITY, F::from(0));
    z
}
