//! The reproducible benchmark behind the README's performance tables. Prints markdown.
//!
//! `cargo run --release --example bench_table` (about 15 minutes on 2 cores)
//! `cargo run --release --example bench_table -- --quick` (overhead table only)
//! `cargo run --release --example bench_table -- --depth-only` (depth table only)
//!
//! 1. Overhead: fold-ml's time per fold (the real driver, witness generation pipelined)
//!    against bare Nova folding a squaring chain with the same number of step constraints
//!    and the same state, measured side by side.
//! 2. Depth: end-to-end `fold-ml prove` runs (subprocesses) at several depths: per-layer
//!    time, compression, proof size, verification, and peak RSS, which must stay flat.

use ff::Field;
use fold_ml::model::Architecture;
use fold_ml::nova::{PublicParams, E1, E2, S1, S2};
use fold_ml::prove::fold_layers;
use fold_ml::prove::plan::{auto_layers_per_step, StepSizes};
use fold_ml::prove::segment::{SegmentStart, SegmentTask};
use fold_ml_circuits::baseline::SquaringChain;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::layer::{BlockSpec, LayerStep};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::Step;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::nova::{PublicParams as NovaPP, RecursiveSNARK};
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::process::Command;
use std::time::Instant;

const WARMUP: usize = 2;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds per fold of the fold-ml driver, after the warm-up folds.
fn fold_ml_per_fold(model: &SyntheticModel, k: usize) -> (f64, usize) {
    let spec = model.spec();
    let blank = Step::Layer(LayerStep::blank(BlockSpec::layer(spec), k));
    let pp = PublicParams::setup(&blank, &*S1::ck_floor(), &*S2::ck_floor()).expect("setup");
    let arch = Architecture::new(BlockSpec::layer(spec), k);
    let input = model.default_input();
    let z0 = StepState::initial(activation_commitment_native(&input, BlockSpec::layer(spec).input_layout(), F::ZERO));
    let task = SegmentTask {
        index: 0,
        layers: model,
        arch: &arch,
        layer_offset: 0,
        model_layers: model.layers(),
        salt: model.salt(),
        start: SegmentStart { state: z0, activations: input, blind: F::ZERO },
        end_blind: F::ZERO,
    };
    let mut stamps = vec![Instant::now()];
    fold_layers(&pp, &task, task.fresh(), &mut |_| {
        stamps.push(Instant::now());
        Ok(())
    })
    .expect("folds");
    let gaps: Vec<f64> = stamps.windows(2).skip(WARMUP).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    (median(gaps), pp.num_constraints().0)
}

/// Median seconds per fold of bare Nova on a squaring chain of `n` constraints.
fn bare_per_fold(n: usize, folds: usize) -> (f64, usize) {
    let c = SquaringChain { n };
    let pp = NovaPP::<E1, E2, SquaringChain>::setup(&c, &*S1::ck_floor(), &*S2::ck_floor()).expect("setup");
    let z0 = vec![F::from(3), F::ZERO, F::ZERO];
    let mut rs = RecursiveSNARK::new(&pp, &c, &z0).expect("step 0");
    let mut gaps = Vec::new();
    for i in 0..folds + WARMUP + 1 {
        let t = Instant::now();
        rs.prove_step(&pp, &c).expect("fold");
        if i > WARMUP {
            gaps.push(t.elapsed().as_secs_f64());
        }
    }
    (median(gaps), pp.num_constraints().0)
}

fn overhead_table() {
    println!("### Per fold: fold-ml against bare Nova with the same constraint count\n");
    println!("| layer | layers/fold | primary constraints | fold-ml per fold | bare Nova per fold | ratio | fold-ml per layer |");
    println!("|---|---|---|---|---|---|---|");
    let configs: Vec<(String, SyntheticModel, usize)> = {
        let mut v = Vec::new();
        let conv = SyntheticModel::zator(1, 0).spec();
        let auto_conv = auto_layers_per_step(&StepSizes::of(&BlockSpec::layer(conv)), 512);
        for k in [1, auto_conv] {
            v.push(("conv 2×28×28 3×3".to_string(), SyntheticModel::zator(k * 8, 0), k));
        }
        for w in [16, 32, 64] {
            let spec = SyntheticModel::dense(w, 1, 0).expect("valid").spec();
            let auto = auto_layers_per_step(&StepSizes::of(&BlockSpec::layer(spec)), 128);
            for k in [1, auto] {
                v.push((format!("dense W={w}"), SyntheticModel::dense(w, k * 10, 0).expect("valid"), k));
            }
        }
        v.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
        v
    };
    for (name, model, k) in configs {
        let (ours, primary) = fold_ml_per_fold(&model, k);
        let step = StepCost::of_step(&BlockSpec::layer(model.spec()), k).constraints;
        let (bare, bare_primary) = bare_per_fold(step, 5);
        assert!(bare_primary.abs_diff(primary) < 200, "{bare_primary} vs {primary}");
        println!(
            "| {name} | {k} | {primary} | {:.3} s | {:.3} s | {:.2} | {:.4} s |",
            ours,
            bare,
            ours / bare,
            ours / k as f64
        );
    }
    println!();
}

struct Run {
    total: f64,
    fold: f64,
    compress: f64,
    proof: u64,
    rss: f64,
    k: usize,
    verify: f64,
}

fn prove_cli(args: &[String]) -> Run {
    let exe = std::env::current_exe().expect("exe");
    let bin = exe.parent().and_then(|p| p.parent()).expect("target dir").join("fold-ml");
    let dir = std::env::temp_dir().join(format!("fold-ml-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir.join("job"));
    let mut full: Vec<String> = vec!["prove".into()];
    full.extend_from_slice(args);
    full.extend([
        "--job".into(),
        dir.join("job").display().to_string(),
        "--cache".into(),
        dir.join("cache").display().to_string(),
    ]);
    let out = Command::new(&bin).args(&full).output().expect("fold-ml runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{text}{err}");
    let num = |key: &str| -> f64 {
        let line = text.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("{key} in {text}"));
        line.split_whitespace().find_map(|w| w.parse().ok()).expect("a number")
    };
    // the second run: the verifier's own key is derived by the first
    let verify_once = || {
        let t = Instant::now();
        let v = Command::new(bin.with_file_name("fold-ml-verify"))
            .args([dir.join("job").display().to_string(), "--cache".into(), dir.join("cache").display().to_string()])
            .output()
            .expect("verifier runs");
        assert!(v.status.success());
        t.elapsed().as_secs_f64()
    };
    verify_once();
    let verify = verify_once();
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("job/statement.json")).expect("statement")).expect("json");
    let _ = std::fs::remove_dir_all(dir.join("job"));
    Run {
        total: num("folding") + num("compression"),
        fold: num("folding"),
        compress: num("compression"),
        proof: num("proof size") as u64,
        rss: num("peak memory"),
        k: statement["segments"][0]["architecture"]["layers_per_step"].as_u64().expect("layers per step") as usize,
        verify,
    }
}

fn depth_table() {
    println!("### End to end by depth (`fold-ml prove`, automatic layers per fold; parameter setup excluded)\n");
    println!("| model | layers | layers/fold | folding | per layer | compression | prove total | proof | verify (warm key) | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<(&str, Vec<String>, usize)> = Vec::new();
    for n in [64, 128, 512, 1024, 2048] {
        rows.push(("dense W=16", vec!["--dense".into(), "16".into()], n));
    }
    rows.push(("dense W=32", vec!["--dense".into(), "32".into()], 128));
    rows.push(("dense W=64", vec!["--dense".into(), "64".into()], 128));
    for n in [64, 512] {
        rows.push(("conv 2×28×28 3×3", vec![], n));
    }
    for (name, mut args, n) in rows {
        args.extend(["--layers".into(), n.to_string()]);
        let r = prove_cli(&args);
        println!(
            "| {name} | {n} | {} | {:.1} s | {:.4} s | {:.1} s | {:.1} s | {} B | {:.1} s | {:.0} MiB |",
            r.k,
            r.fold,
            r.fold / n as f64,
            r.compress,
            r.total,
            r.proof,
            r.verify,
            r.rss
        );
    }
    println!();
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let depth_only = std::env::args().any(|a| a == "--depth-only");
    if !depth_only {
        overhead_table();
    }
    if !quick {
        depth_table();
    }
}
