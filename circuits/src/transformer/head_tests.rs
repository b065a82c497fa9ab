//! The head step against its native twin, and forgeries.

use super::*;
use crate::gadgets::commit::model_start;
use crate::transformer::stream_commitment_native;
use crate::transformer::synthetic::{head_spec, head_weights, input, shape};
use crate::transformer::tests::run_step;

const VOCAB: usize = 29;

fn witness(seed: u64) -> HeadWitness {
    HeadWitness {
        input: input(shape(), 50 + seed),
        weights: head_weights(shape(), VOCAB, seed),
        blind_in: F::from(10 + seed),
        blind_out: F::from(20 + seed),
        salt: F::from(30 + seed),
    }
}

fn state_before(w: &HeadWitness) -> [F; 3] {
    [F::from(5), model_start(), stream_commitment_native(&w.input, w.blind_in)]
}

#[test]
fn the_head_step_is_satisfied_and_matches_its_native_twin() {
    let spec = head_spec(shape(), VOCAB).unwrap();
    assert_eq!(spec.logit_bits(), 33);
    for seed in 0..2 {
        let w = witness(seed);
        let z = state_before(&w);
        let step = HeadStep::new(spec, w.clone()).unwrap();
        let logits = head_native(&spec, &w.weights, &w.input).unwrap();
        assert_eq!(step.logits(), logits);
        // not degenerate: the logits spread and read the last row only
        assert!(logits.iter().max() > logits.iter().min());
        let mut earlier = w.input.clone();
        earlier[0] = earlier[0].wrapping_add(1000);
        assert_eq!(head_native(&spec, &w.weights, &earlier).unwrap(), logits);
        let (unsat, out) = run_step(&step, z);
        assert_eq!(unsat, None);
        assert_eq!(out, step.next_state(z).iter().map(|&v| Some(v)).collect::<Vec<_>>());
        assert_eq!(out[0], Some(F::from(6)));
        assert_eq!(out[1], Some(head_update_native(&spec, model_start(), w.salt, &w.weights).unwrap()));
        assert_eq!(out[2], Some(logits_commitment_native(&logits, 33, w.blind_out)));
    }
}

#[test]
fn a_stream_that_does_not_open_the_state_is_rejected() {
    let spec = head_spec(shape(), VOCAB).unwrap();
    let w = witness(0);
    let mut z = state_before(&w);
    z[2] = stream_commitment_native(&w.input, w.blind_in + F::ONE);
    let step = HeadStep::new(spec, w).unwrap();
    assert_eq!(run_step(&step, z).0.as_deref(), Some("input opens z_in.stream"));
}

/// A logit one off (the largest made larger, the smallest smaller, or one moved by a
/// whole `2^B`) is rejected: each is bound to its dot product and its bits.
#[test]
fn a_wrong_logit_is_rejected() {
    let spec = head_spec(shape(), VOCAB).unwrap();
    let w = witness(1);
    let z = state_before(&w);
    let honest = HeadStep::new(spec, w).unwrap();
    for (o, delta) in [(0, 1), (7, -1), (VOCAB - 1, 1)] {
        let mut step = honest.clone();
        step.logits[o] += delta;
        let unsat = run_step(&step, z).0.expect("a wrong logit must be rejected");
        assert!(unsat.starts_with(&format!("logit{o}/")), "{unsat}");
    }
}

#[test]
fn bad_shapes_are_errors() {
    let spec = head_spec(shape(), VOCAB).unwrap();
    let mut short = witness(0);
    short.input.pop();
    assert!(HeadStep::new(spec, short).is_err());
    let mut wide_bias = witness(0);
    wide_bias.weights.out.1[0] = 1 << 31;
    assert!(HeadStep::new(spec, wide_bias).is_err());
    let mut missing = witness(0);
    missing.weights.out.0.pop();
    assert!(HeadStep::new(spec, missing).is_err());
    let narrow = spec.ln.with_input_bits(8).unwrap();
    assert!(HeadSpec { ln: narrow, ..spec }.check().is_err());
}

/// One weight changed, another LayerNorm scale or another salt each give another running
/// commitment.
#[test]
fn the_model_commitment_binds_the_weights_and_the_scales() {
    let spec = head_spec(shape(), VOCAB).unwrap();
    let (salt, start) = (F::from(7), model_start());
    let w = head_weights(shape(), VOCAB, 0);
    let honest = head_update_native(&spec, start, salt, &w).unwrap();
    let mut changed = w.clone();
    changed.out.0[5] = changed.out.0[5].wrapping_add(1);
    let rescaled = HeadSpec { ln: spec.ln.with_beta_shift(1).unwrap(), ..spec };
    for other in [
        head_update_native(&spec, start, salt, &changed).unwrap(),
        head_update_native(&rescaled, start, salt, &w).unwrap(),
        head_update_native(&spec, start, salt + F::ONE, &w).unwrap(),
    ] {
        assert_ne!(other, honest);
    }
}
