//! Shared fixtures: small proofs made once per test binary.

#![allow(dead_code)]

use fold_ml::job::write_results;
use fold_ml::prove::{prove, ProveRequest};
use fold_ml_circuits::synthetic::SyntheticModel;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A scratch directory that lives as long as the test binary.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// The parameter cache shared by every test of this binary.
pub fn cache() -> PathBuf {
    scratch().join("cache")
}

/// The small model of the tests: 1 channel, 5×5, 3×3 kernels.
pub fn small_model(layers: usize, seed: u64) -> SyntheticModel {
    SyntheticModel::conv(1, 5, 3, layers, seed).expect("valid shape")
}

/// Proves `model` on `input` into `scratch()/name` (once per name).
pub fn proven_job(
    name: &str,
    model: &SyntheticModel,
    input: Vec<u8>,
    public_input: bool,
) -> PathBuf {
    let dir = scratch().join(name);
    if !dir.join("statement.json").exists() {
        let req = ProveRequest {
            model,
            input,
            public_input,
            cache_dir: cache(),
        };
        let proven = prove(&req, &mut |_| {}).expect("proving succeeds");
        write_results(&dir, &proven).expect("results are written");
    }
    dir
}

/// The reference job: 3 layers of the small model on its default input.
pub fn reference_job() -> PathBuf {
    static JOB: OnceLock<PathBuf> = OnceLock::new();
    JOB.get_or_init(|| {
        let m = small_model(3, 0);
        proven_job("reference", &m, m.default_input(), false)
    })
    .clone()
}

/// Copies a job directory so a test can tamper with it.
pub fn copy_job(src: &Path, name: &str) -> PathBuf {
    let dst = scratch().join(name);
    std::fs::create_dir_all(&dst).expect("mkdir");
    for f in ["statement.json", "proof.bin", "vk.bin"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy");
    }
    dst
}

/// Runs a binary of this package; returns (exit code, stdout, stderr).
pub fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env("FOLD_ML_CACHE", cache())
        .output()
        .expect("binary runs");
    (
        out.status.code().expect("exited normally, not by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `fold-ml-verify DIR`.
pub fn verify_cli(dir: &Path) -> (i32, String, String) {
    run(
        env!("CARGO_BIN_EXE_fold-ml-verify"),
        &[dir.to_str().expect("utf-8 path")],
    )
}
