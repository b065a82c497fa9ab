//! Cost of one fold of a real layer step (past Nova's first, cheaper step), and of the
//! native witness generation that precedes it.
//!
//! `cargo bench --bench fold`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ff::Field;
use fold_ml::nova::{PublicParams, RecursiveSnark, S1, S2};
use fold_ml_circuits::commit::{activation_commitment_native, model_iv_native};
use fold_ml_circuits::layer::{LayerStep, LayerWitness};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::time::{Duration, Instant};

/// Streams valid steps of `model` (wrapping around its layers forever).
struct Steps {
    model: SyntheticModel,
    acts: Vec<u8>,
    next: usize,
}

impl Steps {
    fn next_step(&mut self) -> LayerStep {
        let params = self.model.layer(self.next % self.model.layers());
        let witness =
            LayerWitness { input: std::mem::take(&mut self.acts), params, blind_in: F::ZERO, blind_out: F::ZERO };
        let step = LayerStep::new(self.model.spec(), witness).expect("valid layer");
        self.acts = step.output().to_vec();
        self.next += 1;
        step
    }
}

fn bench_fold(c: &mut Criterion) {
    let mut group = c.benchmark_group("fold");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    let model = SyntheticModel::zator(64, 0);
    let spec = model.spec();
    group.throughput(Throughput::Elements(spec.shape.macs() as u64));

    let pp = PublicParams::setup(&LayerStep::blank(spec, 1), &*S1::ck_floor(), &*S2::ck_floor()).expect("setup");
    let mut steps = Steps { model, acts: model.default_input(), next: 0 };
    let z0 = StepState {
        layer: 0,
        model: model_iv_native(model.salt()),
        activations: activation_commitment_native(&model.default_input(), F::ZERO),
    };
    let first = steps.next_step();
    let mut rs = RecursiveSnark::new(&pp, &first, &z0.to_vec()).expect("step 0");
    rs.prove_step(&pp, &first).expect("count step 0");
    // Warm up past the first real fold, which is cheaper than the rest.
    for _ in 0..2 {
        rs.prove_step(&pp, &steps.next_step()).expect("fold");
    }

    group.bench_function(BenchmarkId::new("conv 2x28x28 k3", "one layer per fold"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let step = steps.next_step(); // witness generation, not timed here
                let t = Instant::now();
                rs.prove_step(&pp, &step).expect("fold");
                total += t.elapsed();
            }
            total
        })
    });
    group.bench_function(BenchmarkId::new("conv 2x28x28 k3", "native witness"), |b| b.iter(|| steps.next_step()));
    group.finish();
}

criterion_group!(benches, bench_fold);
criterion_main!(benches);
