//! The block against its native twin, its constraint count, and forgeries.

use super::*;
use crate::gadgets::elementwise::AddSpec;
use crate::gadgets::gelu::GeluSpec;
use crate::gadgets::layernorm::{acc_bits_for, eps_int, LayerNormSpec};
use crate::quant::{int_to_field, RequantSpec};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, test_cs::TestConstraintSystem, ConstraintSystem, LinearCombination};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Activations carry 4 fraction bits, weights 7 (LayerNorm's `γ` 6): every projection
/// shifts by 7, the scores by 4 (the softmax reads them at 4 fraction bits).
const FRAC: u32 = 4;

fn layernorm_spec(d: usize) -> LayerNormSpec {
    let (e, m) = (eps_int(1e-5, d, FRAC).unwrap(), 8);
    let bits = acc_bits_for(d, e, m, 1 << 12).unwrap();
    LayerNormSpec::new(d, e, m, RequantSpec::new(m + 6 - FRAC, bits.max(m + 10)).unwrap()).unwrap()
}

fn spec(shape: BlockShape) -> BlockSpec {
    let rq = |shift, bits| RequantSpec::new(shift, bits).unwrap();
    let residual = AddSpec::new(1, 1, 0, rq(0, 10)).unwrap();
    BlockSpec {
        shape,
        ln1: layernorm_spec(shape.width),
        qkv: rq(7, 34),
        scores: rq(4, 24),
        softmax_frac: FRAC,
        softmax_table: 12,
        mix: rq(7, 24),
        proj: rq(7, 34),
        residual1: residual,
        ln2: layernorm_spec(shape.width),
        fc1: rq(7, 34),
        gelu: GeluSpec::same_scale(FRAC).unwrap(),
        fc2: rq(7, 34),
        residual2: residual,
    }
}

fn shape() -> BlockShape {
    BlockShape { tokens: 4, width: 8, heads: 2, hidden: 16 }
}

/// Uniform integers in `[-r, r]`.
fn ints(rng: &mut ChaCha20Rng, n: usize, r: i64) -> Vec<i64> {
    (0..n).map(|_| (rng.next_u64() % (2 * r as u64 + 1)) as i64 - r).collect()
}

fn int8s(rng: &mut ChaCha20Rng, n: usize, r: i64) -> Vec<i8> {
    ints(rng, n, r).into_iter().map(|v| v as i8).collect()
}

fn weights(shape: BlockShape, seed: u64) -> BlockWeights<i8, i64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (d, h) = (shape.width, shape.hidden);
    let gamma = |rng: &mut ChaCha20Rng| int8s(rng, d, 24).into_iter().map(|g| g + 64).collect::<Vec<_>>();
    let dense = |rng: &mut ChaCha20Rng, k, m| (int8s(rng, k * m, 48), ints(rng, m, 2000));
    BlockWeights {
        ln1: (gamma(&mut rng), ints(&mut rng, d, 1 << 12)),
        q: dense(&mut rng, d, d),
        k: dense(&mut rng, d, d),
        v: dense(&mut rng, d, d),
        o: dense(&mut rng, d, d),
        ln2: (gamma(&mut rng), ints(&mut rng, d, 1 << 12)),
        fc1: dense(&mut rng, d, h),
        fc2: dense(&mut rng, h, d),
    }
}

fn input(shape: BlockShape, seed: u64) -> Vec<i8> {
    int8s(&mut ChaCha20Rng::seed_from_u64(seed), shape.tokens * shape.width, 60)
}

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

fn widen(v: &[i8]) -> Vec<i64> {
    v.iter().map(|&v| i64::from(v)).collect()
}

/// Synthesizes the block on `x` with weights `w` and the witness `hint`: the first
/// unsatisfied constraint, the outputs and the constraint count (the allocations of the
/// inputs and weights constrain nothing).
fn run(
    spec: &BlockSpec,
    w: &BlockWeights<i8, i64>,
    x: &[i8],
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

fn fields(v: &[i8]) -> Vec<Option<F>> {
    v.iter().map(|&v| Some(int_to_field(i64::from(v)))).collect()
}

#[test]
fn block_matches_native_and_its_count() {
    let (shape, spec) = (shape(), spec(shape()));
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
    let (shape, spec) = (shape(), spec(shape()));
    let trace = block_native(&spec, &weights(shape, 0), &input(shape, 100)).unwrap();
    let spread = |v: &[i8]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
    for (name, v) in
        [("a1", &trace.a1), ("q", &trace.qkv[0]), ("mixed", &trace.mixed), ("g", &trace.g), ("out", &trace.out)]
    {
        assert!(spread(v) >= 8, "{name} holds {} distinct values", spread(v));
    }
    let graded = trace.probs.iter().filter(|p| p.len() > 1 && p.iter().any(|&v| v > 0 && v < 128)).count();
    assert!(graded >= trace.probs.len() / 2, "{graded} graded attention rows");
}

/// The honest witness of one input does not prove another input, nor other weights.
#[test]
fn another_input_or_weight_is_rejected() {
    let (shape, spec) = (shape(), spec(shape()));
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
    let (shape, spec) = (shape(), spec(shape()));
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
    let mut s = spec(shape());
    s.shape.heads = 3;
    assert!(matches!(block_native(&s, &weights(shape(), 0), &input(shape(), 0)), Err(BlockError::Shape(_))));
    let s = spec(shape());
    let mut w = weights(shape(), 0);
    w.fc2.1.pop();
    assert!(matches!(block_native(&s, &w, &input(shape(), 0)), Err(BlockError::Shape(_))));
    assert!(matches!(block_native(&s, &weights(shape(), 0), &[0; 3]), Err(BlockError::Shape(_))));
}
/// The block of the GPT example's shape (16 tokens, width 64, 4 heads, MLP 256) at this
/// file's scales, pinned: 862,400 constraints for 803,840 multiply-accumulates, of which
/// the six projections take 477,504, GELU 200,704, the two LayerNorms 58,144, softmax
/// 41,248, `Σ p·v` 37,376, the residuals 30,720 and the scores 16,704.
#[test]
fn constraints_at_the_gpt_shape_are_pinned() {
    let shape = BlockShape { tokens: 16, width: 64, heads: 4, hidden: 256 };
    assert_eq!(block_constraints(&spec(shape)).unwrap(), 862_400);
}
