//! Criterion benchmarks of the verifier on the README's default model (2 channels, 28×28,
//! 3×3 kernels; 2 layers here: the verifier's work does not grow with the depth, the key and
//! the proof are those of the 512-layer job):
//! - `fold-ml-verify`'s whole path with a warm key store (`verify_dir`: the statement's
//!   checks, the verifier key decoded from the store, the SNARK check);
//! - the verifier key decoded from the store alone (what the uncompressed key points of
//!   `vendor/halo2curves` speed up);
//! - the SNARK check alone, the key in memory.
//!
//! `cargo bench --bench verify` (proves the job and derives the key first, about a minute).

use criterion::{criterion_group, criterion_main, Criterion};
use fold_ml::job::manifest::{CheckpointPolicy, ModelRecord};
use fold_ml::job::{self, JobRequest};
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_verify::keys::verifier_key;
use fold_ml_verify::statement::Statement;
use fold_ml_verify::verify::{read_statement, verify_dir, verify_proof, Expected};
use std::time::Duration;

fn bench_verify(c: &mut Criterion) {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let (dir, store) = (scratch.path().join("job"), scratch.path().join("store"));
    let (channels, size, kernel, layers, seed) = (2, 28, 3, 2, 0);
    let input = SyntheticModel::conv(channels, size, kernel, layers, seed).expect("the default model").default_input();
    let request = JobRequest {
        model: ModelRecord::Synthetic { channels, size, kernel, layers, seed },
        model_file: None,
        input: Some(input),
        public_input: false,
        input_blind: None,
        cache_dir: scratch.path().join("cache"),
        checkpoint_every: CheckpointPolicy::Layers(layers),
        restart: false,
        layers_per_step: None,
        fold_budget: None,
        keys_in_memory: None,
        memory_limit_mib: None,
    };
    job::run(&dir, &request, &mut |_| {}).expect("the job proves");
    // first use: the verifier derives its key into its store (not measured here)
    let accepted = |dir: &std::path::Path| verify_dir(dir, &store, &Expected::default()).expect("readable");
    accepted(&dir).expect("the proof is accepted");

    let statement: Statement = read_statement(&dir.join("statement.json")).expect("readable").expect("a statement");
    let proof = std::fs::read(dir.join("proof.bin")).expect("the proof");
    let arch = statement.distinct_architectures()[0].clone();

    let mut group = c.benchmark_group("verify/default-conv-2x28x28");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("whole, warm key store", |b| b.iter(|| accepted(&dir).expect("accepted")));
    group.bench_function("verifier key from the store", |b| {
        b.iter(|| verifier_key(&store, &arch).expect("the stored key"))
    });
    let vk = verifier_key(&store, &arch).expect("the stored key");
    group.bench_function("SNARK check, key in memory", |b| {
        b.iter(|| verify_proof(&statement, &proof, &[&vk]).expect("accepted"))
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
