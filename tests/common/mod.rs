//! Shared fixtures: small proofs made once per test binary.

#![allow(dead_code)]

use fold_ml::job::manifest::{CheckpointPolicy, ModelRecord};
use fold_ml::job::{self, JobRequest};
use fold_ml_circuits::synthetic::SyntheticModel;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A scratch directory for this run of the test binary, under cargo's per-target temporary
/// directory. A static is never dropped, so a `TempDir` here would never be deleted (each
/// run used to leave ~1 GB in /tmp); instead each run removes the scratch directories of
/// earlier runs of the same binary whose process is gone.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // the binary's name without cargo's hash suffix: the same for every build
        let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let exe = exe.unwrap_or_default();
        let prefix = format!("scratch-{}-", exe.rsplit_once('-').map_or(exe.as_str(), |(name, _)| name));
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix(&prefix)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
            if gone && Path::new("/proc/self").exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(format!("{prefix}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// The parameter cache shared by every test of this binary.
pub fn cache() -> PathBuf {
    scratch().join("cache")
}

/// The small model of the tests: 1 channel, 5×5, 3×3 kernels.
pub fn small(layers: usize, seed: u64) -> ModelRecord {
    ModelRecord::Synthetic { channels: 1, size: 5, kernel: 3, layers, seed }
}

/// The model a descriptor stands for.
pub fn model_of(d: &ModelRecord) -> SyntheticModel {
    match d {
        &ModelRecord::Synthetic { channels, size, kernel, layers, seed } => {
            SyntheticModel::conv(channels, size, kernel, layers, seed).expect("valid shape")
        }
        &ModelRecord::SyntheticDense { width, layers, seed } => {
            SyntheticModel::dense(width, layers, seed).expect("valid shape")
        }
        ModelRecord::File { .. } => panic!("not a synthetic model"),
    }
}

/// A job request for `model` on `input`, checkpointing after every fold.
pub fn request(model: ModelRecord, input: Vec<u8>, public_input: bool) -> JobRequest {
    JobRequest {
        model,
        model_file: None,
        input: Some(input),
        public_input,
        input_blind: None,
        cache_dir: cache(),
        checkpoint_every: CheckpointPolicy::Layers(1),
        restart: false,
        layers_per_step: Some(1),
        fold_budget: None,
        keys_in_memory: None,
        memory_limit_mib: None,
    }
}

/// Proves `model` on `input` into `scratch()/name` (once per name).
pub fn proven_job(name: &str, model: ModelRecord, input: Vec<u8>, public_input: bool) -> PathBuf {
    let dir = scratch().join(name);
    if !dir.join("statement.json").exists() {
        job::run(&dir, &request(model, input, public_input), &mut |_| {}).expect("proving succeeds");
    }
    dir
}

/// The reference job: 3 layers of the small model on its default input.
pub fn reference_job() -> PathBuf {
    static JOB: OnceLock<PathBuf> = OnceLock::new();
    JOB.get_or_init(|| {
        let m = small(3, 0);
        let input = model_of(&m).default_input();
        proven_job("reference", m, input, false)
    })
    .clone()
}

/// Copies the public files of a proof directory so a test can tamper with them.
pub fn copy_job(src: &Path, name: &str) -> PathBuf {
    let dst = scratch().join(name);
    std::fs::create_dir_all(&dst).expect("mkdir");
    for f in ["statement.json", "proof.bin"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy");
    }
    dst
}

/// Runs a binary of this package with the shared cache; returns (exit code, stdout, stderr).
pub fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    run_env(bin, args, &[])
}

/// [`run`] with extra environment variables. A process killed by a signal reports -1.
pub fn run_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env("FOLD_ML_CACHE", cache())
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The standalone verifier binary, built by the `fold-ml-verify` crate of this workspace
/// (`cargo test --workspace` builds it; it lives beside this package's binaries).
pub fn verify_bin() -> String {
    let fold_ml = Path::new(env!("CARGO_BIN_EXE_fold-ml"));
    let bin = fold_ml.with_file_name(format!("fold-ml-verify{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing: run the tests with --workspace", bin.display());
    bin.to_string_lossy().into_owned()
}

/// `fold-ml-verify DIR`.
pub fn verify_cli(dir: &Path) -> (i32, String, String) {
    run(&verify_bin(), &[dir.to_str().expect("utf-8 path")])
}

/// `fold-ml ARGS`.
pub fn fold_ml(args: &[&str]) -> (i32, String, String) {
    run(env!("CARGO_BIN_EXE_fold-ml"), args)
}

/// The small synthetic GPT of the GPT tests: vocabulary 19, context 4, width 8, two blocks.
pub fn tiny_gpt() -> fold_ml::model::onnx::gpt::QuantGpt {
    use fold_ml_circuits::transformer::synthetic::{
        embed_spec, embed_weights, head_spec, head_weights, shape, spec, weights,
    };
    let scales = fold_ml::model::onnx::gpt::quantize::ScaleReport {
        stream: vec![],
        growth: (1.0, 1.0),
        softmax_frac: 4,
        gelu: (4, 4),
    };
    fold_ml::model::onnx::gpt::QuantGpt {
        embed_spec: embed_spec(shape(), 19).unwrap(),
        embed: embed_weights(shape(), 19, 3),
        spec: spec(shape()).unwrap(),
        blocks: vec![weights(shape(), 4), weights(shape(), 5)],
        head_spec: head_spec(shape(), 19).unwrap(),
        head: head_weights(shape(), 19, 6),
        scales,
    }
}
