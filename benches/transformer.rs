//! Criterion benchmark of one Nova fold of a transformer block step
//! ([`fold_ml_circuits::transformer::TransformerStep`]): the opening of its input stream's
//! commitment, the range checks of its weights and biases and their absorption into the
//! running model commitment, the block (LayerNorms, packed projections, causal attention
//! with the base-2 softmax, GELU, residuals) and the commitment to its output stream.
//!
//! `cargo bench --bench transformer`; throughput is per multiply-accumulate, and the fold's
//! benchmark id is the step's constraint count (Nova's verifier circuit included). Shape:
//! the GPT example's (16 tokens, width 64, 4 heads, MLP 256) at the synthetic block's
//! scales and seeded weights.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ff::Field;
use fold_ml::nova::{E1, E2, S1, S2};
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::transformer::synthetic::{input, spec, weights};
use fold_ml_circuits::transformer::{stream_commitment_native, BlockShape, BlockWitness, TransformerStep};
use fold_ml_circuits::F;
use nova_snark::nova::{PublicParams, RecursiveSNARK};
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::cell::RefCell;
use std::time::{Duration, Instant};

fn bench_block(c: &mut Criterion, shape: BlockShape) {
    let spec = spec(shape).expect("valid synthetic block");
    let x = input(shape, 1);
    let witness = BlockWitness {
        input: x.clone(),
        weights: weights(shape, 0),
        blind_in: F::ONE,
        blind_out: F::ONE,
        salt: F::ONE,
    };
    let step = TransformerStep::new(spec, witness.clone()).expect("native block");
    let d = shape.width;
    let attention: usize = (1..=shape.tokens).map(|n| 2 * n * d).sum();
    let macs = shape.tokens * (4 * d * d + 2 * d * shape.hidden) + attention;

    let mut group =
        c.benchmark_group(format!("transformer/T={},d={},h={},H={}", shape.tokens, d, shape.heads, shape.hidden));
    group.sample_size(10).measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(macs as u64));
    let start = Instant::now();
    let pp = PublicParams::<E1, E2, TransformerStep>::setup(&step, &*S1::ck_floor(), &*S2::ck_floor()).expect("setup");
    eprintln!("setup {:.1} s, {} constraints", start.elapsed().as_secs_f64(), pp.num_constraints().0);
    let z0 = [F::ZERO, model_start(), stream_commitment_native(&x, F::ONE)];
    let mut rs = RecursiveSNARK::new(&pp, &step, &z0).expect("step 0");
    rs.prove_step(&pp, &step).expect("fold");
    // `prove_step` folds an unsatisfied step without complaint: check the fold verifies
    rs.verify(&pp, rs.num_steps(), &z0).expect("the folded block step verifies");
    // every fold a valid next block: its input the last output (all blinds 1), built
    // outside the timing
    let current = RefCell::new(step.output().to_vec());
    let next = || BlockWitness { input: current.borrow().clone(), ..witness.clone() };
    group.bench_function(BenchmarkId::new("fold", pp.num_constraints().0), |b| {
        b.iter_batched(
            || TransformerStep::new(spec, next()).expect("block"),
            |s| {
                rs.prove_step(&pp, &s).expect("fold");
                *current.borrow_mut() = s.output().to_vec();
            },
            BatchSize::PerIteration,
        )
    });
    rs.verify(&pp, rs.num_steps(), &z0).expect("every benchmarked fold verifies");
    group.bench_function("witness", |b| b.iter(|| TransformerStep::new(spec, next()).expect("block")));
    group.finish();
}

fn bench_transformer(c: &mut Criterion) {
    bench_block(c, BlockShape { tokens: 16, width: 64, heads: 4, hidden: 256 });
}

criterion_group!(benches, bench_transformer);
criterion_main!(benches);
