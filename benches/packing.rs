//! Criterion benchmarks of packed products beside the unpacked circuit: one Nova fold of a
//! linear layer's compute (range checks of its inputs, weights and biases; products;
//! requantize+ReLU+clamp) with up to 7 outputs per product constraint, and the same layer
//! with one product per multiply-accumulate (`Packing::with_max_slots(op, 1)`).
//!
//! `cargo bench --bench packing`; throughput is reported per multiply-accumulate, and each
//! benchmark's id is its constraint count.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ff::Field;
use fold_ml::nova::{E1, E2, S1, S2};
use fold_ml_circuits::gadgets::bits::{add_constant, alloc_uint, lc};
use fold_ml_circuits::gadgets::conv::ConvShape;
use fold_ml_circuits::gadgets::linear::{linear_hints_with, linear_requant_with, Linear, LinearHints, LinearShape};
use fold_ml_circuits::gadgets::pack::Packing;
use fold_ml_circuits::quant::{bits_le, RequantSpec, ACT_BITS, BIAS_BITS, BIAS_OFFSET, WEIGHT_BITS, WEIGHT_OFFSET};
use fold_ml_circuits::F;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::nova::{PublicParams, RecursiveSNARK};
use nova_snark::traits::circuit::StepCircuit;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::time::Duration;

/// A linear layer's compute as a step circuit (the state passes through unchanged).
#[derive(Clone)]
struct LinearStep {
    op: Linear,
    packing: Packing,
    input: Vec<u8>,
    weights: Vec<i8>,
    bias: Vec<i32>,
    hints: LinearHints,
}

impl LinearStep {
    fn new(op: Linear, packing: Packing) -> Self {
        // a fixed pseudo-random layer: inputs in [0, 127], weights in [-20, 20], biases in [-600, 600]
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m) as i64
        };
        let input: Vec<u8> = (0..op.shape.num_inputs()).map(|_| next(128) as u8).collect();
        let weights: Vec<i8> = (0..op.num_weights()).map(|_| (next(41) - 20) as i8).collect();
        let bias: Vec<i32> = (0..op.shape.num_biases()).map(|_| (next(1201) - 600) as i32).collect();
        let hints = linear_hints_with(&op, packing, (&input, &input), &weights, &bias).expect("a valid layer");
        Self { op, packing, input, weights, bias, hints }
    }
}

/// Range-checks `v + offset` to `bits` bits and returns `v`.
fn checked<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    v: i64,
    offset: i64,
    bits: u32,
) -> Result<LinearCombination<F>, SynthesisError> {
    let u: Num<F> = alloc_uint(cs, &bits_le((v + offset) as u64, bits))?;
    Ok(lc(&add_constant::<CS>(u, -F::from(offset as u64))))
}

impl StepCircuit<F> for LinearStep {
    fn arity(&self) -> usize {
        1
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let mut alloc = |name: &str, values: Vec<i64>, offset: i64, bits: u32| {
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| checked(&mut cs.namespace(|| format!("{name}{i}")), v, offset, bits))
                .collect::<Result<Vec<_>, _>>()
        };
        let input = alloc("a", self.input.iter().map(|&a| a.into()).collect(), 0, ACT_BITS)?;
        let weights = alloc("w", self.weights.iter().map(|&w| w.into()).collect(), WEIGHT_OFFSET, WEIGHT_BITS)?;
        let bias = alloc("b", self.bias.iter().map(|&b| b.into()).collect(), BIAS_OFFSET, BIAS_BITS)?;
        linear_requant_with(cs, &self.op, self.packing, (&input, &input), (&weights, &bias), &self.hints)?;
        Ok(z.to_vec())
    }
}

fn bench_layer(c: &mut Criterion, name: &str, shape: ConvShape) {
    let requant = RequantSpec::new(8, 22).expect("valid");
    let op = Linear {
        shape: LinearShape::Conv(shape),
        requant,
        skip: 0,
        projection: None,
        zero_point: 0,
        block_zero_point: 0,
    };
    let mut group = c.benchmark_group(format!("packing/{name}"));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(op.macs() as u64));
    for (label, packing) in [("unpacked", Packing::with_max_slots(&op, 1)), ("packed", Packing::of(&op))] {
        let step = LinearStep::new(op, packing);
        let pp = PublicParams::<E1, E2, LinearStep>::setup(&step, &*S1::ck_floor(), &*S2::ck_floor()).expect("setup");
        let mut rs = RecursiveSNARK::new(&pp, &step, &[F::ONE]).expect("step 0");
        for _ in 0..3 {
            rs.prove_step(&pp, &step).expect("fold");
        }
        let id = BenchmarkId::new(label, pp.num_constraints().0);
        group.bench_function(id, |b| b.iter(|| rs.prove_step(&pp, &step).expect("fold")));
    }
    group.finish();
}

fn bench_packing(c: &mut Criterion) {
    // 144 multiply-accumulates per output
    bench_layer(c, "conv16x16x16", ConvShape::same(16, 16, 16, 16, 3));
    // the default model's layer: 18 per output, where requantization and range checks dominate
    bench_layer(c, "conv2x28x28", ConvShape::same(2, 2, 28, 28, 3));
}

criterion_group!(benches, bench_packing);
criterion_main!(benches);
