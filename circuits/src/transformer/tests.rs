//! The block against its native twin, its constraint count, and forgeries.

use super::synthetic::{input, shape, spec, weights};
use super::*;
use crate::quant::int_to_field;
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, test_cs::TestConstraintSystem, ConstraintSystem, LinearCombination};

/// Allocates integers as private variables.
fn alloc<CS: ConstraintSystem<F>>(cs: &mut CS, name: &str, v: &[i64]) -> Vec<LinearCombination<F>> {
    v.iter()
        .enumerate()
        .map(|(i, &v)| {
            let a = AllocatedNum::alloc(cs.namespace(|| format!("{name}{i}")), || Ok(int_to_field(v))).unwrap();
            LinearCombination::zero() + a.get_variable()
        })
        .collect()
}

fn widen<T: Copy + Into<i64>>(v: &[T]) -> Vec<i64> {
    v.iter().map(|&v| v.into()).collect()
}

/// Synthesizes the block on `x` with weights `w` and the witness `hint`: the first
/// unsatisfied constraint, the outputs and the constraint count (the allocations of the
/// inputs and weights constrain nothing).
fn run(
    spec: &BlockSpec,
    w: &BlockWeights<i8, i64>,
    x: &[i16],
    hint: &BlockHint,
) -> (Option<String>, Vec<Option<F>>, usize) {
    let mut cs = TestConstraintSystem::<F>::new();
    let mut pair = |name: &str, (m, b): &(Vec<i8>, Vec<i64>)| {
        (alloc(&mut cs, &format!("{name}w"), &widen(m)), alloc(&mut cs, &format!("{name}b"), b))
    };
    let lw = BlockWeights {
        ln1: pair("ln1", &w.ln1),
        q: pair("q", &w.q),
        k: pair("k", &w.k),
        v: pair("v", &w.v),
        o: pair("o", &w.o),
        ln2: pair("ln2", &w.ln2),
        fc1: pair("fc1", &w.fc1),
        fc2: pair("fc2", &w.fc2),
    };
    let xs = alloc(&mut cs, "x", &widen(x));
    let out = block(&mut cs, spec, &lw, &xs, hint).unwrap();
    let unsat = cs.which_is_unsatisfied().map(str::to_string);
    (unsat, out.iter().map(AllocatedNum::get_value).collect(), cs.num_constraints())
}

fn fields<T: Copy + Into<i64>>(v: &[T]) -> Vec<Option<F>> {
    v.iter().map(|&v| Some(int_to_field(v.into()))).collect()
}

#[test]
fn block_matches_native_and_its_count() {
    let (shape, spec) = (shape(), spec(shape()).unwrap());
    for seed in 0..2 {
        let (w, x) = (weights(shape, seed), input(shape, 100 + seed));
        let trace = block_native(&spec, &w, &x).unwrap();
        let hint = BlockHint::new(&spec, &w, &x, &trace).unwrap();
        let (unsat, out, count) = run(&spec, &w, &x, &hint);
        assert_eq!(unsat, None, "seed {seed}");
        assert_eq!(out, fields(&trace.out), "seed {seed}");
        assert_eq!(count, block_constraints(&spec).unwrap(), "seed {seed}");
    }
}

/// The test block is not degenerate: attention is neither uniform nor one-hot everywhere,
/// and the stream keeps many values after both residuals.
#[test]
fn the_test_block_computes_something() {
    let (shape, spec) = (shape(), spec(shape()).unwrap());
    let trace = block_native(&spec, &weights(shape, 0), &input(shape, 100)).unwrap();
    let spread = |v: Vec<i64>| v.iter().collect::<std::collections::BTreeSet<_>>().len();
    for (name, v) in [
        ("a1", widen(&trace.a1)),
        ("q", widen(&trace.qkv[0])),
        ("mixed", widen(&trace.mixed)),
        ("g", widen(&trace.g)),
        ("out", widen(&trace.out)),
    ] {
        let n = spread(v);
        assert!(n >= 8, "{name} holds {n} distinct values");
    }
    // the stream uses its width: values beyond int8 come out of the block
    assert!(trace.out.iter().any(|&v| !(-128..128).contains(&v)));
    let graded = trace.probs.iter().filter(|p| p.len() > 1 && p.iter().any(|&v| v > 0 && v < 128)).count();
    assert!(graded >= trace.probs.len() / 2, "{graded} graded attention rows");
}

/// The honest witness of one input does not prove another input, nor other weights.
#[test]
fn another_input_or_weight_is_rejected() {
    let (shape, spec) = (shape(), spec(shape()).unwrap());
    let (w, x) = (weights(shape, 0), input(shape, 100));
    let hint = BlockHint::new(&spec, &w, &x, &block_native(&spec, &w, &x).unwrap()).unwrap();
    let mut other = x.clone();
    other[5] = other[5].wrapping_add(1);
    assert!(run(&spec, &w, &other, &hint).0.is_some());
    let mut forged = w.clone();
    forged.v.0[3] += 1;
    assert!(run(&spec, &forged, &x, &hint).0.is_some());
}

/// A forged attention probability, a mix of another accumulator, a forged GELU output and
/// a forged residual are each rejected by their gadget.
#[test]
fn forged_intermediates_are_rejected() {
    let (shape, spec) = (shape(), spec(shape()).unwrap());
    let (w, x) = (weights(shape, 1), input(shape, 101));
    let honest = BlockHint::new(&spec, &w, &x, &block_native(&spec, &w, &x).unwrap()).unwrap();
    let mut hint = honest.clone();
    hint.softmax[3].outputs[0] += 1;
    assert!(run(&spec, &w, &x, &hint).0.unwrap().contains("softmax"));
    let mut hint = honest.clone();
    hint.gelu[7].requant.y += F::ONE;
    assert!(run(&spec, &w, &x, &hint).0.unwrap().contains("gelu7"));
    let mut hint = honest.clone();
    hint.mix[5].1 = crate::gadgets::requant::RequantHint::signed(3 << spec.mix.shift(), spec.mix).unwrap();
    assert!(run(&spec, &w, &x, &hint).0.unwrap().contains("mix"));
    let mut hint = honest;
    hint.residual1[2].y -= F::ONE;
    assert!(run(&spec, &w, &x, &hint).0.unwrap().contains("residual1"));
}

#[test]
fn bad_shapes_are_errors() {
    let mut s = spec(shape()).unwrap();
    s.shape.heads = 3;
    assert!(matches!(block_native(&s, &weights(shape(), 0), &input(shape(), 0)), Err(BlockError::Shape(_))));
    let s = spec(shape()).unwrap();
    let mut w = weights(shape(), 0);
    w.fc2.1.pop();
    assert!(matches!(block_native(&s, &w, &input(shape(), 0)), Err(BlockError::Shape(_))));
    assert!(matches!(block_native(&s, &weights(shape(), 0), &[0; 3]), Err(BlockError::Shape(_))));
}
/// The block of the GPT example's shape (16 tokens, width 64, 4 heads, MLP 256) at this
/// file's scales, pinned: 911,040 constraints for 803,840 multiply-accumulates, of which
/// the six projections take 477,504, GELU 200,704, the two LayerNorms 90,400 (16-bit rows,
/// `M = 24`), the residuals 47,104 (to the 16-bit stream), softmax 41,248, `Σ p·v` 37,376
/// and the scores 16,704. With an int8 stream (`M = 8`) it was 862,400: the wide stream
/// costs 48,640 constraints, 5.6%.
#[test]
fn constraints_at_the_gpt_shape_are_pinned() {
    let shape = BlockShape { tokens: 16, width: 64, heads: 4, hidden: 256 };
    assert_eq!(block_constraints(&spec(shape).unwrap()).unwrap(), 911_040);
}

/// The step's witness on the synthetic block, with blinds and salt drawn from `seed`.
fn step_witness(seed: u64) -> BlockWitness {
    BlockWitness {
        input: input(shape(), 100 + seed),
        weights: weights(shape(), seed),
        blind_in: F::from(1000 + seed),
        blind_out: F::from(2000 + seed),
        salt: F::from(3000 + seed),
    }
}

/// Synthesizes `step` on the state `z`: the first unsatisfied constraint and `z_out`.
pub(super) fn run_step<S: nova_snark::traits::circuit::StepCircuit<F>>(
    step: &S,
    z: [F; 3],
) -> (Option<String>, Vec<Option<F>>) {
    let mut cs = TestConstraintSystem::<F>::new();
    let z: Vec<_> = z
        .iter()
        .enumerate()
        .map(|(i, &v)| AllocatedNum::alloc(cs.namespace(|| format!("z{i}")), || Ok(v)).unwrap())
        .collect();
    let out = step.synthesize(&mut cs, &z).unwrap();
    (cs.which_is_unsatisfied().map(str::to_string), out.iter().map(AllocatedNum::get_value).collect())
}

fn state_before(w: &BlockWitness) -> [F; 3] {
    [F::from(3), crate::gadgets::commit::model_start(), stream_commitment_native(&w.input, w.blind_in)]
}

#[test]
fn a_block_step_is_satisfied_and_matches_its_native_state() {
    let spec = spec(shape()).unwrap();
    for seed in 0..2 {
        let w = step_witness(seed);
        let z = state_before(&w);
        let step = TransformerStep::new(spec, w).unwrap();
        let (unsat, out) = run_step(&step, z);
        assert_eq!(unsat, None);
        let expect = step.next_state(z);
        assert_eq!(out, expect.iter().map(|&v| Some(v)).collect::<Vec<_>>());
        assert_eq!(expect[2], stream_commitment_native(step.output(), F::from(2000 + seed)));
    }
}

#[test]
fn an_input_that_does_not_open_the_state_is_rejected() {
    let spec = spec(shape()).unwrap();
    let w = step_witness(0);
    let mut z = state_before(&w);
    z[2] = stream_commitment_native(&w.input, w.blind_in + F::ONE);
    let step = TransformerStep::new(spec, w).unwrap();
    assert_eq!(run_step(&step, z).0.as_deref(), Some("input opens z_in.stream"));
}

/// The step computes with whatever weights its prover holds; the model commitment is what
/// binds them: one weight changed, two tensors swapped, or the same weights read under
/// another scale each give another running commitment.
#[test]
fn the_model_commitment_binds_weights_their_places_and_the_scales() {
    let spec = spec(shape()).unwrap();
    let (salt, start) = (F::from(7), crate::gadgets::commit::model_start());
    let w = weights(shape(), 0);
    let honest = block_update_native(&spec, start, salt, &w).unwrap();
    let mut changed = w.clone();
    changed.fc2.0[0] = changed.fc2.0[0].wrapping_add(1);
    let mut swapped = w.clone();
    std::mem::swap(&mut swapped.q, &mut swapped.k);
    let mut rescaled = spec;
    rescaled.qkv = crate::quant::RequantSpec::new(8, 34).unwrap();
    for other in [
        block_update_native(&spec, start, salt, &changed).unwrap(),
        block_update_native(&spec, start, salt, &swapped).unwrap(),
        block_update_native(&rescaled, start, salt, &w).unwrap(),
        block_update_native(&spec, start, salt + F::ONE, &w).unwrap(),
    ] {
        assert_ne!(other, honest);
    }
    // and the circuit's running commitment is the native one
    let step = TransformerStep::new(spec, BlockWitness { weights: changed.clone(), salt, ..step_witness(0) }).unwrap();
    let z = state_before(&step_witness(0));
    let (unsat, out) = run_step(&step, z);
    assert_eq!(unsat, None);
    assert_eq!(out[1], Some(block_update_native(&spec, z[1], salt, &changed).unwrap()));
}

/// The specs a statement carries decode to what was encoded, and a decoded spec is
/// validated by its constructors: a field edited out of range is refused.
#[test]
fn specs_round_trip_and_invalid_encodings_are_refused() {
    use super::synthetic::{embed_spec, head_spec};
    let (block, embed, head) =
        (spec(shape()).unwrap(), embed_spec(shape(), 19).unwrap(), head_spec(shape(), 19).unwrap());
    let json = serde_json::to_value((block, embed, head)).unwrap();
    assert_eq!(serde_json::from_value::<(BlockSpec, EmbedSpec, HeadSpec)>(json.clone()).unwrap(), (block, embed, head));
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("a LayerNorm of 20-bit inputs", |v| v[0]["ln1"]["in_bits"] = 20.into()),
        ("a LayerNorm bias shift of 31", |v| v[0]["ln2"]["beta_shift"] = 31.into()),
        ("a GELU of 9 fraction bits", |v| v[0]["gelu"]["frac_bits"] = 9.into()),
        ("a residual whose accumulator overflows", |v| v[0]["residual1"]["m_a"] = (1i64 << 40).into()),
        ("an embedding add of 17-bit output", |v| v[1]["add"]["out_bits"] = 17.into()),
    ];
    for (what, edit) in edits {
        let mut v = json.clone();
        edit(&mut v);
        assert!(serde_json::from_value::<(BlockSpec, EmbedSpec, HeadSpec)>(v).is_err(), "{what} was accepted");
    }
    let mut v = json;
    v[0]["extra"] = 1.into();
    assert!(serde_json::from_value::<(BlockSpec, EmbedSpec, HeadSpec)>(v).is_err(), "an unknown field");
}
