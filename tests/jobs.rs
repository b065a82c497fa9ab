//! Resumable jobs: kill -9, a crash in the middle of writing a checkpoint, damaged
//! checkpoints, moved jobs, mismatched resumes, finished jobs, and checkpoint proofs.

mod common;

use common::*;
use ff::Field;
use fold_ml::artifact::{self, Kind};
use fold_ml::job::checkpoint::{self, CRASH_HOOK_ENV};
use fold_ml::job::events::EventLog;
use fold_ml::job::{self, Outcome};
use fold_ml::F;
use fold_ml_circuits::commit::activation_commitment_native;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fold-ml");

fn prove_args(dir: &Path, layers: usize, seed: u64) -> Vec<String> {
    prove_args_k(dir, layers, seed, 1)
}

/// `fold-ml prove` of the small model, checkpointing after every fold, `k` layers per fold.
fn prove_args_k(dir: &Path, layers: usize, seed: u64, k: usize) -> Vec<String> {
    let mut a: Vec<String> = ["prove", "--size", "5", "--channels", "1", "--public-input", "--checkpoint-every", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend([
        "--layers-per-step".into(),
        k.to_string(),
        "--layers".into(),
        layers.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--job".into(),
        dir.display().to_string(),
    ]);
    a
}

fn prove_cli(dir: &Path, layers: usize, seed: u64, env: &[(&str, &str)]) -> (i32, String, String) {
    let args = prove_args(dir, layers, seed);
    run_env(BIN, &args.iter().map(String::as_str).collect::<Vec<_>>(), env)
}

fn events(dir: &Path, name: &str) -> Vec<fold_ml::job::events::JobEvent> {
    EventLog::read(dir).into_iter().map(|e| e.event).filter(|e| e.name() == name).collect()
}

/// An interrupted job: folding aborted while writing the checkpoint at `abort_at` layers.
fn interrupted_job(name: &str, layers: usize, abort_at: usize) -> PathBuf {
    let dir = scratch().join(name);
    let (code, _, err) = prove_cli(&dir, layers, 0, &[(CRASH_HOOK_ENV, &abort_at.to_string())]);
    assert_ne!(code, 0, "the crash hook did not fire: {err}");
    assert!(!dir.join("statement.json").exists());
    let kept: Vec<usize> = checkpoint::list(&dir).into_iter().map(|(k, _)| k.0).collect();
    assert_eq!(kept, vec![abort_at - 1, abort_at - 2], "the two newest durable checkpoints are kept");
    dir
}

/// A statement without the output's blind and blinded commitment, which every run draws
/// afresh: what an interrupted job must prove identically to an uninterrupted one.
fn comparable(json: &str) -> fold_ml::statement::Statement {
    let mut s: fold_ml::statement::Statement = serde_json::from_str(json).unwrap();
    let opened = fold_ml_circuits::commit::activation_commitment_native(
        s.output.values.as_ref().unwrap(),
        s.output_layout(),
        s.output.blind.unwrap(),
    );
    assert_eq!(opened, s.output.commitment, "the public output opens its commitment");
    (s.output.commitment, s.output.blind) = (F::ZERO, None);
    s
}

fn uninterrupted_statement(layers: usize) -> String {
    let dir = scratch().join(format!("uninterrupted-{layers}"));
    if !dir.join("statement.json").exists() {
        let (code, _, err) = prove_cli(&dir, layers, 0, &[]);
        assert_eq!(code, 0, "{err}");
    }
    std::fs::read_to_string(dir.join("statement.json")).unwrap()
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn sigkill_and_crash_mid_checkpoint_then_resume() {
    let dir = scratch().join("killed");
    let layers = 8;
    // 1. SIGKILL once a checkpoint is durable
    let mut child = Command::new(BIN)
        .args(prove_args(&dir, layers, 0))
        .env("FOLD_ML_CACHE", cache())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while events(&dir, "checkpoint").is_empty() {
        assert!(Instant::now() < deadline, "no checkpoint within 300 s");
        assert!(child.try_wait().unwrap().is_none(), "the prover finished before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let after_kill = checkpoint::list(&dir).first().map(|(k, _)| k.0).expect("a checkpoint survived");
    assert!(after_kill < layers);
    // 2. crash in the middle of writing a later checkpoint
    let crash_at = (after_kill + 2).min(layers);
    let (code, _, _) = prove_cli(&dir, layers, 0, &[(CRASH_HOOK_ENV, &crash_at.to_string())]);
    assert_ne!(code, 0);
    assert!(
        std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".tmp")),
        "a torn temporary file is left, as after a real crash"
    );
    assert_eq!(checkpoint::list(&dir).first().map(|(k, _)| k.0), Some(crash_at - 1));
    // 3. resume: finishes from the newest durable checkpoint
    let (code, out, err) = fold_ml(&["resume", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("resuming from the checkpoint at {} layers", crash_at - 1)), "{err}");
    assert!(out.contains(&format!("({} folded by this run)", layers - (crash_at - 1))), "{out}");
    assert_eq!(verify_cli(&dir).0, 0);
    assert_eq!(
        comparable(&std::fs::read_to_string(dir.join("statement.json")).unwrap()),
        comparable(&uninterrupted_statement(layers))
    );
    let resumed = events(&dir, "resumed");
    assert_eq!(resumed.len(), 2);
    assert!(!events(&dir, "compressed").is_empty());
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn damaged_newest_checkpoint_falls_back_to_the_previous() {
    let dir = interrupted_job("fallback", 5, 5); // checkpoints at 4 and 3
    let newest = checkpoint::list(&dir)[0].1.clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let (code, _, err) = prove_cli(&dir, 5, 0, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: skipping the checkpoint at 4 layers"), "{err}");
    assert!(err.contains("resuming from the checkpoint at 3 layers"), "{err}");
    assert_eq!(events(&dir, "checkpoint_rejected").len(), 1);
    assert_eq!(verify_cli(&dir).0, 0);
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn truncated_checkpoints_everywhere_need_restart() {
    let dir = interrupted_job("all-damaged", 4, 4);
    for (_, path) in checkpoint::list(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    }
    let (code, _, err) = fold_ml(&["resume", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("all 2 checkpoints are damaged") && err.contains("--restart"), "{err}");
    assert!(!dir.join("statement.json").exists());
    let (code, _, err) = fold_ml(&["resume", dir.to_str().unwrap(), "--restart"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(verify_cli(&dir).0, 0);
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn resume_with_another_model_or_input_is_refused() {
    let dir = interrupted_job("mismatch", 4, 3);
    let (code, _, err) = prove_cli(&dir, 4, 1, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--seed"), "{err}");
    let (code, _, err) = prove_cli(&dir, 5, 0, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--layers") && err.contains("job: 4, now: 5"), "{err}");
    let mut req = request(small(4, 0), vec![7; 25], true);
    req.checkpoint_every = fold_ml::job::manifest::CheckpointPolicy::Layers(1);
    let e = job::run(&dir, &req, &mut |_| {}).err().expect("refused");
    // The library names the setting; the CLI names the flag (`--input`, asserted above for the others).
    assert!(
        matches!(
            e,
            fold_ml::Error::Job(job::JobError::Differs { setting: job::JobSetting::Input, finished: false, .. })
        ),
        "{e}"
    );
    assert!(!e.to_string().contains("--"), "the library speaks no CLI: {e}");
    // nothing was lost: the original request still resumes
    let (code, _, err) = prove_cli(&dir, 4, 0, &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn moved_job_resumes_in_its_new_place() {
    let dir = interrupted_job("to-move", 4, 4);
    let moved = scratch().join("moved-elsewhere").join("job");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&dir, &moved).unwrap();
    let (code, _, err) = fold_ml(&["resume", moved.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 3 layers"), "{err}");
    assert_eq!(verify_cli(&moved).0, 0);
    assert_eq!(
        comparable(&std::fs::read_to_string(moved.join("statement.json")).unwrap()),
        comparable(&uninterrupted_statement(4))
    );
}

/// A job whose step is estimated to need more memory than the limit is refused before any
/// setup (nothing written); a finished job is still recognized under any limit.
#[test]
fn a_job_over_the_memory_limit_is_refused_before_any_work() {
    let m = small(3, 0);
    let input = model_of(&m).default_input();
    let dir = scratch().join("over-memory");
    let req = job::JobRequest { memory_limit_mib: Some(1), ..request(m.clone(), input.clone(), true) };
    match job::run(&dir, &req, &mut |_| {}) {
        Err(fold_ml::Error::Job(job::JobError::Memory {
            segment: 0,
            constraints,
            estimated_mib,
            available_mib: 1,
        })) => {
            assert!(constraints > 10_000 && estimated_mib > 1, "{constraints} constraints, {estimated_mib} MiB");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(!dir.join("manifest.json").exists(), "nothing written");
    let finished = scratch().join("finished-under-a-limit");
    assert_eq!(prove_cli(&finished, 3, 0, &[]).0, 0);
    let req = job::JobRequest { memory_limit_mib: Some(1), ..request(m.clone(), input, true) };
    assert!(matches!(job::run(&finished, &req, &mut |_| {}), Ok(Outcome::AlreadyComplete(_))));
}

#[test]
fn finished_job_is_not_proven_again() {
    let dir = scratch().join("finished");
    assert_eq!(prove_cli(&dir, 3, 0, &[]).0, 0);
    let before = EventLog::read(&dir).len();
    let (code, out, _) = prove_cli(&dir, 3, 0, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("job already complete"), "{out}");
    assert_eq!(EventLog::read(&dir).len(), before, "no new events: nothing was re-proven");
    let req = request(small(3, 0), model_of(&small(3, 0)).default_input(), true);
    assert!(matches!(job::run(&dir, &req, &mut |_| {}), Ok(Outcome::AlreadyComplete(_))));
    let (code, out, _) = fold_ml(&["status", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("finished") && out.contains("3/3"), "{out}");
}

#[cfg(unix)]
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn secrets_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = interrupted_job("perms", 3, 3);
    for path in [dir.join("secret.json"), checkpoint::list(&dir)[0].1.clone()] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

fn rewrite_checkpoint(path: &Path, edit: impl FnOnce(&mut checkpoint::Checkpoint)) {
    let digest = artifact::peek_arch(Kind::Checkpoint, &std::fs::read(path).unwrap()).unwrap();
    let mut c = checkpoint::read(path, &digest).unwrap();
    edit(&mut c);
    std::fs::write(path, artifact::encode(Kind::Checkpoint, &digest, &c).unwrap()).unwrap();
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn verify_checkpoint_and_compress_a_prefix() {
    let dir = interrupted_job("prefix", 5, 5); // checkpoints at 4 and 3
    let d = dir.to_str().unwrap();
    let (code, out, err) = fold_ml(&["verify-checkpoint", d, "--at", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("first 3 layers"), "{out}");
    assert_eq!(fold_ml(&["status", d]).0, 0);
    // a shareable proof of the first 4 layers
    let (code, _, err) = fold_ml(&["compress", d, "--at", "4"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = verify_cli(&dir.join("prefix-4"));
    assert_eq!(code, 0, "{out}");
    let prefix: fold_ml::statement::Statement =
        serde_json::from_slice(&std::fs::read(dir.join("prefix-4/statement.json")).unwrap()).unwrap();
    assert_eq!(prefix.num_layers, 4);
    assert!(prefix.output.values.is_none(), "a prefix keeps its output committed");
    // the model commitment of a prefix is the model holder's commitment of those layers
    let (_, out, _) = fold_ml(&["commit", "--layers", "4", "--size", "5", "--channels", "1"]);
    assert!(out.contains(&fold_ml::field::to_hex(&prefix.model_commitment)), "{out}");
    // the prefix's output is hidden under the checkpoint's blind, whose opening stays with
    // the job's secrets
    let opening_path = dir.join("openings/prefix-4.json");
    let mode = std::fs::metadata(&opening_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let opening: serde_json::Value = serde_json::from_slice(&std::fs::read(&opening_path).unwrap()).unwrap();
    let values: Vec<u8> = serde_json::from_value(opening["values"].clone()).unwrap();
    let blind = fold_ml::field::from_hex(opening["blind"].as_str().unwrap()).unwrap();
    assert_eq!(activation_commitment_native(&values, prefix.output_layout(), blind), prefix.output.commitment);
}

#[test]
fn compressed_prefixes_of_the_same_output_are_unlinkable() {
    // Two jobs of the same model on the same input, each compressed at its last layer: the
    // published output commitments differ, and neither is the plain digest of the output.
    let layers = 3;
    let mut commitments = Vec::new();
    for name in ["unlinkable-a", "unlinkable-b"] {
        let dir = scratch().join(name);
        let (code, _, err) = prove_cli(&dir, layers, 0, &[]);
        assert_eq!(code, 0, "{err}");
        let full: fold_ml::statement::Statement =
            serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap();
        let (code, _, err) = fold_ml(&["compress", dir.to_str().unwrap(), "--at", &layers.to_string()]);
        assert_eq!(code, 0, "{err}");
        let out = dir.join(format!("prefix-{layers}"));
        assert_eq!(verify_cli(&out).0, 0);
        let prefix: fold_ml::statement::Statement =
            serde_json::from_slice(&std::fs::read(out.join("statement.json")).unwrap()).unwrap();
        assert!(prefix.output.values.is_none() && prefix.output.blind.is_none());
        let output = full.output.values.unwrap();
        assert_ne!(prefix.output.commitment, activation_commitment_native(&output, prefix.output_layout(), F::ZERO));
        commitments.push((output, prefix.output.commitment));
    }
    assert_eq!(commitments[0].0, commitments[1].0, "the same output");
    assert_ne!(commitments[0].1, commitments[1].1, "published under different blinds");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn tampered_checkpoints_are_rejected() {
    let dir = interrupted_job("tampered", 5, 5); // checkpoints at 4 and 3
    let d = dir.to_str().unwrap().to_string();
    let path3 = checkpoint::list(&dir)[1].1.clone();
    let path4 = checkpoint::list(&dir)[0].1.clone();
    let original = std::fs::read(&path4).unwrap();
    let restore = || std::fs::write(&path4, &original).unwrap();
    // flipped bytes
    let mut bytes = original.clone();
    bytes[original.len() - 100] ^= 1;
    std::fs::write(&path4, &bytes).unwrap();
    let (code, _, err) = fold_ml(&["verify-checkpoint", &d, "--at", "4"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("REJECTED") && err.contains("checksum"), "{err}");
    restore();
    // changed state
    rewrite_checkpoint(&path4, |c| c.state[1] += fold_ml::F::from(1));
    let (code, _, err) = fold_ml(&["verify-checkpoint", &d, "--at", "4"]);
    assert_eq!(code, 1, "{err}");
    restore();
    // changed step count
    rewrite_checkpoint(&path4, |c| c.layers_done = 3);
    let (code, _, err) = fold_ml(&["verify-checkpoint", &d, "--at", "4"]);
    assert_eq!(code, 1, "{err}");
    restore();
    // a self-consistent checkpoint whose recursive proof starts from another input
    let other = scratch().join("tampered-other");
    let mut req = request(small(5, 0), vec![9; 25], true);
    req.checkpoint_every = fold_ml::job::manifest::CheckpointPolicy::Layers(1);
    job::run(&other, &req, &mut |_| {}).unwrap();
    let foreign =
        checkpoint::read(&checkpoint::list(&other)[1].1, &artifact::peek_arch(Kind::Checkpoint, &original).unwrap())
            .unwrap();
    rewrite_checkpoint(&path4, |c| {
        let job_digest = c.job_digest;
        *c = foreign.clone();
        c.job_digest = job_digest;
    });
    let (code, _, err) = fold_ml(&["verify-checkpoint", &d, "--at", "4"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify"), "{err}");
    // resuming skips it and falls back to the genuine checkpoint at 3
    assert!(path3.exists());
    let (code, _, err) = fold_ml(&["resume", &d]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 3 layers"), "{err}");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn jobs_with_several_layers_per_step_resume() {
    let dir = scratch().join("k2-resume");
    let args = prove_args_k(&dir, 5, 0, 2);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // checkpoints cover 2, 4, 5 layers; crash while writing the one at 4
    let (code, _, _) = run_env(BIN, &args, &[(CRASH_HOOK_ENV, "4")]);
    assert_ne!(code, 0);
    assert_eq!(checkpoint::list(&dir).first().map(|(k, _)| k.0), Some(2));
    let (code, _, err) = fold_ml(&["verify-checkpoint", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(BIN, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 2 layers"), "{err}");
    assert_eq!(verify_cli(&dir).0, 0);
    // resuming with another grouping is refused
    let (code, _, err) = fold_ml(&[
        "prove",
        "--size",
        "5",
        "--channels",
        "1",
        "--public-input",
        "--layers",
        "5",
        "--layers-per-step",
        "3",
        "--job",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--layers-per-step"), "{err}");
}
