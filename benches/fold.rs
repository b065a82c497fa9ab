//! Criterion benchmarks of one fold: fold-ml's layer steps (conv and dense, one and
//! several layers per fold) side by side with bare Nova folding a squaring chain of the
//! same constraint count, and the native witness generation that precedes a fold.
//!
//! `cargo bench --bench fold`; throughput is reported per multiply-accumulate. Also one
//! tile of a layer too large for one fold (`fold/tile…`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ff::Field;
use fold_ml::nova::{PublicParams, RecursiveSnark, E1, E2, S1, S2};
use fold_ml_circuits::baseline::SquaringChain;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::layer::{BlockSpec, LayerStep, StepWitness};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::Step;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::tile::{TileSpec, TileState, TileStep, TileWitness};
use fold_ml_circuits::F;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::time::{Duration, Instant};

/// Streams valid steps of `model`, `k` layers each (wrapping around its layers).
struct Steps {
    model: SyntheticModel,
    k: usize,
    acts: Vec<u8>,
    next: usize,
}

impl Steps {
    fn next_step(&mut self) -> Step {
        let layers = (0..self.k).map(|j| self.model.layer((self.next + j) % self.model.layers())).collect();
        let input = std::mem::take(&mut self.acts);
        let w = StepWitness { input, layers, blind_in: F::ZERO, blind_out: F::ZERO, salt: F::ZERO };
        let step = LayerStep::multi(BlockSpec::layer(self.model.spec()), self.k, w).expect("valid layers");
        self.acts = step.output().to_vec();
        self.next += self.k;
        Step::Layer(step)
    }
}

fn bench_config(c: &mut Criterion, name: &str, model: SyntheticModel, k: usize) {
    let spec = BlockSpec::layer(model.spec());
    let cost = StepCost::of_step(&spec, k);
    let mut group = c.benchmark_group(format!("fold/{name}/k={k}"));
    group.sample_size(10).measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(cost.macs as u64));

    let pp = PublicParams::setup(&Step::Layer(LayerStep::blank(spec.clone(), k)), &*S1::ck_floor(), &*S2::ck_floor())
        .expect("setup");
    let mut steps = Steps { model, k, acts: model.default_input(), next: 0 };
    let layout = spec.input_layout();
    let z0 = StepState::initial(activation_commitment_native(&model.default_input(), layout, F::ZERO));
    let first = steps.next_step();
    let mut rs = RecursiveSnark::new(&pp, &first, &z0.to_vec()).expect("step 0");
    rs.prove_step(&pp, &first).expect("count step 0");
    for _ in 0..2 {
        // past the first real fold, which is cheaper than the rest
        rs.prove_step(&pp, &steps.next_step()).expect("fold");
    }
    group.bench_function(BenchmarkId::new("fold-ml", cost.constraints), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let step = steps.next_step(); // witness generation: pipelined in the driver
                let t = Instant::now();
                rs.prove_step(&pp, &step).expect("fold");
                total += t.elapsed();
            }
            total
        })
    });
    group.bench_function(BenchmarkId::new("native witness", cost.constraints), |b| b.iter(|| steps.next_step()));

    let bare = SquaringChain { n: cost.constraints };
    let pp = nova_snark::nova::PublicParams::<E1, E2, SquaringChain>::setup(&bare, &*S1::ck_floor(), &*S2::ck_floor())
        .expect("setup");
    let mut rs = nova_snark::nova::RecursiveSNARK::new(&pp, &bare, &[F::from(3), F::ZERO, F::ZERO]).expect("step 0");
    for _ in 0..3 {
        rs.prove_step(&pp, &bare).expect("fold");
    }
    group.bench_function(BenchmarkId::new("bare nova", cost.constraints), |b| {
        b.iter(|| rs.prove_step(&pp, &bare).expect("fold"))
    });
    group.finish();
}

fn bench_folds(c: &mut Criterion) {
    bench_config(c, "conv2x28x28", SyntheticModel::zator(64, 0), 1);
    bench_config(c, "dense16", SyntheticModel::dense(16, 64, 0).expect("valid"), 1);
    bench_config(c, "dense16", SyntheticModel::dense(16, 64, 0).expect("valid"), 4);
}

/// One tile of a tiled 16→16 3×3 convolution on 32×32 (4 rows of 32, the default fold
/// budget's choice): the cost of a fold of a layer too large for one.
fn bench_tiles(c: &mut Criterion) {
    let model = SyntheticModel::conv(16, 32, 3, 2, 0).expect("valid");
    let spec = TileSpec::new(model.spec(), None, 4);
    let cost = StepCost::of_tile(&spec).expect("a valid tiling");
    let mut group = c.benchmark_group("fold/tile16x32x32/rows=4");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(cost.macs as u64));
    let blank = Step::Tile(TileStep::blank(spec).expect("valid"));
    let pp = PublicParams::setup(&blank, &*S1::ck_floor(), &*S2::ck_floor()).expect("setup");
    let input = model.default_input();
    let witness = TileWitness {
        layer_weights: model.layer(0),
        second_weights: None,
        blind_in: F::ZERO,
        blind_out: F::ZERO,
        salt: F::ZERO,
        cache: Default::default(),
    };
    let tiles = spec.tiles();
    let step = |t: usize| Step::Tile(TileStep::new(spec, t % tiles, &input, witness.clone()).expect("valid tile"));
    let layout = fold_ml_circuits::commit::Layout::by_rows(model.spec().input_dims());
    let z0 = TileState::boundary(StepState::initial(activation_commitment_native(&input, layout, F::ZERO)));
    let mut rs = RecursiveSnark::new(&pp, &step(0), &z0.to_vec()).expect("step 0");
    let mut next = 0;
    for _ in 0..3 {
        rs.prove_step(&pp, &step(next)).expect("fold");
        next += 1;
    }
    group.bench_function(BenchmarkId::new("fold-ml tile", cost.constraints), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = step(next); // witness generation: pipelined in the driver
                next += 1;
                let t = Instant::now();
                rs.prove_step(&pp, &s).expect("fold");
                total += t.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench_folds, bench_tiles);
criterion_main!(benches);
