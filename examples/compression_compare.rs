//! Compares the two Spartan compressions nova-snark offers, on the default layer circuit:
//! the non-preprocessing `spartan::snark` (what fold-ml uses) and the preprocessing
//! `spartan::ppsnark`, both with IPA. Prints setup, prove and verify times and sizes.
//!
//! `cargo run --release --example compression_compare -- [layers]` (default 4 layers)

use ff::Field;
use fold_ml::nova::{E1, E2};
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::layer::{LayerStep, LayerWitness};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::nova::{CompressedSNARK, PublicParams, RecursiveSNARK};
use nova_snark::provider::ipa_pc::EvaluationEngine;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::time::Instant;

fn run<S1, S2>(name: &str, model: &SyntheticModel)
where
    S1: RelaxedR1CSSNARKTrait<E1>,
    S2: RelaxedR1CSSNARKTrait<E2>,
{
    let spec = model.spec();
    let t = Instant::now();
    let pp = PublicParams::<E1, E2, LayerStep>::setup(
        &LayerStep::blank(fold_ml_circuits::layer::BlockSpec::layer(spec), 1),
        &*S1::ck_floor(),
        &*S2::ck_floor(),
    )
    .expect("setup");
    let (pk, vk) = CompressedSNARK::<E1, E2, LayerStep, S1, S2>::setup(&pp).expect("key setup");
    let setup = t.elapsed().as_secs_f64();

    let input = model.default_input();
    let layout = fold_ml_circuits::commit::Layout::whole(model.spec().input_dims());
    let z0 = StepState::initial(activation_commitment_native(&input, layout, F::ZERO));
    let mut acts = input;
    let mut rs: Option<RecursiveSNARK<E1, E2, LayerStep>> = None;
    for i in 0..model.layers() {
        let step = LayerStep::new(
            spec,
            LayerWitness {
                input: acts,
                layer_weights: model.layer(i),
                blind_in: F::ZERO,
                blind_out: F::ZERO,
                salt: model.salt(),
            },
        )
        .expect("valid layer");
        match rs.as_mut() {
            None => {
                let mut r = RecursiveSNARK::new(&pp, &step, &z0.to_vec()).expect("step 0");
                r.prove_step(&pp, &step).expect("count step 0");
                rs = Some(r);
            }
            Some(r) => r.prove_step(&pp, &step).expect("fold"),
        }
        acts = step.output().to_vec();
    }
    let rs = rs.expect("folded");
    let t = Instant::now();
    let proof = CompressedSNARK::<E1, E2, LayerStep, S1, S2>::prove(&pp, &pk, &rs).expect("compress");
    let prove = t.elapsed().as_secs_f64();
    let t = Instant::now();
    proof.verify(&vk, model.layers(), &z0.to_vec()).expect("verifies");
    let verify = t.elapsed().as_secs_f64();
    let size = bincode::serde::encode_to_vec(&proof, bincode::config::standard()).expect("encode").len();
    let vk_size = bincode::serde::encode_to_vec(&vk, bincode::config::standard()).expect("encode").len();
    println!("| {name} | {setup:.1} s | {prove:.1} s | {verify:.2} s | {size} B | {:.1} MB |", vk_size as f64 / 1e6);
}

fn main() {
    let layers = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let model = SyntheticModel::zator(layers, 0);
    println!("{layers} layers of the 2×28×28 conv body");
    println!("| compression | setup (pp + keys) | prove | verify | proof | verifier key |");
    println!("|---|---|---|---|---|---|");
    run::<
        nova_snark::spartan::snark::RelaxedR1CSSNARK<E1, EvaluationEngine<E1>>,
        nova_snark::spartan::snark::RelaxedR1CSSNARK<E2, EvaluationEngine<E2>>,
    >("spartan::snark + IPA (used)", &model);
    run::<
        nova_snark::spartan::ppsnark::RelaxedR1CSSNARK<E1, EvaluationEngine<E1>>,
        nova_snark::spartan::ppsnark::RelaxedR1CSSNARK<E2, EvaluationEngine<E2>>,
    >("spartan::ppsnark + IPA", &model);
}
