//! Sharded jobs: shards proven in any order by workers that take their index from a flag,
//! Slurm or Kubernetes, a worker killed mid-shard and resumed, and assemble refusing
//! missing, failed, foreign and duplicated shards; the verifier refusing a reordered or
//! dropped shard.

mod common;

use common::*;
use fold_ml::artifact::{self, Kind};
use fold_ml::job::checkpoint::{self, CRASH_HOOK_ENV, FAIL_HOOK_ENV};
use fold_ml::nova::CompressedSnark;
use fold_ml::statement::Statement;
use std::path::{Path, PathBuf};

/// The model of these tests: an 8-wide MLP of 12 layers, 2 layers per step.
const MODEL: [&str; 8] =
    ["--dense", "8", "--layers", "12", "--layers-per-step", "2", "--public-input", "--checkpoint-every"];

fn plan(name: &str, shards: usize) -> PathBuf {
    let dir = scratch().join(name);
    let mut args = vec!["plan", "--shards"];
    let n = shards.to_string();
    args.push(&n);
    args.extend(["--job", dir.to_str().unwrap()]);
    args.extend(MODEL);
    args.push("2");
    let (code, out, err) = fold_ml(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("as {shards} shards")), "{out}");
    dir
}

fn prove_shard(dir: &Path, env: &[(&str, &str)], extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["prove-shard", dir.to_str().unwrap()];
    args.extend(extra);
    run_env(env!("CARGO_BIN_EXE_fold-ml"), &args, env)
}

fn assemble(dir: &Path) -> (i32, String, String) {
    fold_ml(&["assemble", dir.to_str().unwrap()])
}

fn statement(dir: &Path) -> Statement {
    serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap()
}

fn result_file(dir: &Path, i: usize) -> PathBuf {
    dir.join("segments").join(format!("seg-{i:04}.bin"))
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (the crash hook)")]
fn shards_proven_anywhere_link_into_the_unsharded_statement() {
    let dir = plan("three", 3);
    // Kubernetes' index, then Slurm's, out of order; the middle one killed mid-write.
    let (code, _, err) = prove_shard(&dir, &[("JOB_COMPLETION_INDEX", "2")], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = prove_shard(&dir, &[("SLURM_ARRAY_TASK_ID", "1"), (CRASH_HOOK_ENV, "8")], &[]);
    assert_ne!(code, 0, "the crash hook fires at the checkpoint of 8 layers: {err}");
    let work = fold_ml::job::shards::shard_dir(&dir, 1);
    assert_eq!(checkpoint::list(&work).first().map(|(k, _)| k.0), Some(6), "the durable checkpoint survives");
    let (_, out, _) = fold_ml(&["status", dir.to_str().unwrap()]);
    assert!(out.contains("1/3 shards proven") && out.contains("stopped (resumable)"), "{out}");
    let (code, _, err) = prove_shard(&dir, &[("SLURM_ARRAY_TASK_ID", "1")], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 6 layers"), "{err}");
    let (code, _, err) = prove_shard(&dir, &[], &["--shard", "0"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = prove_shard(&dir, &[], &["--shard", "0"]);
    assert_eq!(code, 0);
    assert!(out.contains("already proven"), "a finished shard is not proven again: {out}");

    let (code, out, err) = assemble(&dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("assembled 3 shards (12 layers)"), "{out}");
    let (code, out, err) = verify_cli(&dir);
    assert_eq!(code, 0, "{out}{err}");
    let sharded = statement(&dir);
    assert_eq!(sharded.segments.iter().map(|s| s.num_layers).collect::<Vec<_>>(), vec![4, 4, 4], "the cuts");

    // The same model and input proven in one job: the same model commitment, input and output.
    let one = scratch().join("unsharded");
    let mut args = vec!["prove", "--job", one.to_str().unwrap()];
    args.extend(MODEL);
    args.push("2");
    let (code, _, err) = fold_ml(&args);
    assert_eq!(code, 0, "{err}");
    let whole = statement(&one);
    assert_eq!(sharded.model_commitment, whole.model_commitment);
    assert_eq!(sharded.input, whole.input, "a public input is committed under blind 0 either way");
    assert_eq!(sharded.output.values, whole.output.values);
    assert_eq!(whole.segments.len(), 1);
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (the failing-disk hook)")]
fn assemble_names_missing_failed_foreign_and_duplicated_shards() {
    let (a, b) = (plan("a", 3), plan("b", 3));
    for (dir, i) in [(&a, "0"), (&a, "2"), (&b, "1")] {
        let (code, _, err) = prove_shard(dir, &[], &["--shard", i]);
        assert_eq!(code, 0, "{err}");
    }
    let refused = |why: &str| {
        let (code, _, err) = assemble(&a);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(why), "expected {why:?}: {err}");
        assert!(!a.join("statement.json").exists(), "nothing is written");
    };
    refused("shard 1 is missing (0 of 4 layers folded)");
    // another plan's shard 1 (same model, other blinds: another digest)
    std::fs::copy(result_file(&b, 1), result_file(&a, 1)).unwrap();
    refused("shard 1 is damaged or foreign");
    // this plan's shard 0 duplicated as shard 1
    std::fs::copy(result_file(&a, 0), result_file(&a, 1)).unwrap();
    refused("shard 1 is damaged or foreign");
    std::fs::remove_file(result_file(&a, 1)).unwrap();
    // a worker that failed (a full disk at its checkpoint of 6 layers)
    let (code, _, _) = prove_shard(&a, &[(FAIL_HOOK_ENV, "6")], &["--shard", "1"]);
    assert_ne!(code, 0);
    refused("shard 1 failed");
    let (code, _, err) = prove_shard(&a, &[], &["--shard", "1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = assemble(&a);
    assert_eq!(code, 0, "{err}");
    assert_eq!(verify_cli(&a).0, 0);

    // The verifier: every shard proof checks from the state the previous one ends in.
    let s = statement(&a);
    let digest = s.architectures_digest();
    let proofs: Vec<CompressedSnark> =
        artifact::decode(Kind::Proof, &digest, &std::fs::read(a.join("proof.bin")).unwrap()).unwrap();
    let tampered = |name: &str, s: &Statement, proofs: &[&CompressedSnark]| {
        let dir = copy_job(&a, name);
        std::fs::write(dir.join("statement.json"), serde_json::to_vec(s).unwrap()).unwrap();
        let bytes = artifact::encode(Kind::Proof, &s.architectures_digest(), &proofs).unwrap();
        std::fs::write(dir.join("proof.bin"), bytes).unwrap();
        let (code, out, err) = verify_cli(&dir);
        assert_eq!(code, 1, "{name}: {out}{err}");
    };
    let p: Vec<&CompressedSnark> = proofs.iter().collect();
    tampered("swapped-shards", &s, &[p[1], p[0], p[2]]);
    tampered("repeated-shard", &s, &[p[0], p[0], p[2]]);
    // shard 1 dropped: shard 2 linked straight after shard 0
    let mut dropped = s.clone();
    dropped.segments.remove(1);
    dropped.links.remove(0);
    dropped.num_layers -= 4;
    tampered("dropped-shard", &dropped, &[p[0], p[2]]);
}

#[test]
fn plans_and_workers_refuse_what_they_cannot_do() {
    let dir = scratch().join("refusals");
    let job = dir.to_str().unwrap();
    let bad = |args: &[&str], env: &[(&str, &str)], why: &str| {
        let (code, _, err) = run_env(env!("CARGO_BIN_EXE_fold-ml"), args, env);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: expected {why:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    let mut too_many = vec!["plan", "--shards", "7", "--job", job];
    too_many.extend(MODEL);
    too_many.push("2");
    bad(&too_many, &[], "the model folds in 6 steps: at most 6 shards");
    assert!(!dir.exists(), "a refused plan writes nothing");
    let dir = plan("refusals", 2);
    let mut again = vec!["plan", "--shards", "2", "--job", job];
    again.extend(MODEL);
    again.push("2");
    bad(&again, &[], "already holds a job");
    let mut prove = vec!["prove", "--job", job];
    prove.extend(MODEL);
    prove.push("2");
    bad(&prove, &[], "is a sharded job");
    bad(&["resume", job], &[], "is a sharded job");
    bad(&["compress", job, "--at", "2"], &[], "is a sharded job");
    let worker = ["prove-shard", job];
    bad(&worker, &[], "give the shard index, or set SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX");
    bad(&worker, &[("SLURM_ARRAY_TASK_ID", "x1")], "SLURM_ARRAY_TASK_ID: \"x1\" is not a shard index");
    bad(&["prove-shard", job, "--shard", "2"], &[], "shard 2 does not exist: the plan has shards 0..=1");
    // a damaged secrets file is named, and nothing is proven from it
    let secrets = dir.join(fold_ml::job::shards::SECRETS_FILE);
    let mut bytes = std::fs::read(&secrets).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&secrets, bytes).unwrap();
    bad(&["prove-shard", job, "--shard", "1"], &[], "shard-secrets.bin");
    // a plan edited by hand no longer matches its digest
    let plan_file = dir.join(fold_ml::job::shards::PLAN_FILE);
    let text = std::fs::read_to_string(&plan_file).unwrap().replacen("\"layers\": 6", "\"layers\": 7", 1);
    std::fs::write(&plan_file, text).unwrap();
    bad(&["prove-shard", job, "--shard", "0"], &[], "plan_digest does not match the plan");
    let (_, out, err) = fold_ml(&["status", job]);
    assert!(!err.contains("panicked") && out.is_empty(), "{out}{err}");
}

/// The Kubernetes Jobs' container command (`deploy/k8s/worker.sh`, the image's entrypoint),
/// run here as each pod of the Indexed Job would run it: JOB_COMPLETION_INDEX per shard.
#[test]
fn the_kubernetes_worker_command_proves_every_index_then_assembles() {
    let dir = plan("kubernetes", 2);
    let worker = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s/worker.sh");
    let bin = env!("CARGO_BIN_EXE_fold-ml");
    let cache = cache();
    let env = |index: &'static str| {
        vec![
            ("FOLD_ML", bin.to_string()),
            ("FOLD_ML_VERIFY", verify_bin()),
            ("FOLD_ML_JOB", dir.to_str().unwrap().to_string()),
            ("FOLD_ML_CACHE", cache.to_str().unwrap().to_string()),
            ("JOB_COMPLETION_INDEX", index.to_string()),
        ]
    };
    let sh = |step: &str, index: &'static str| {
        let e = env(index);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_env("sh", &[worker, step], &e)
    };
    for index in ["1", "0"] {
        let (code, _, err) = sh("prove", index);
        assert_eq!(code, 0, "pod {index}: {err}");
    }
    let (code, out, err) = sh("assemble", "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("assembled 2 shards") && out.contains("ACCEPTED"), "{out}");
    let (code, _, err) = run_env("sh", &[worker, "prove"], &[("FOLD_ML_JOB", dir.to_str().unwrap())]);
    assert_eq!(code, 2, "outside an Indexed Job the index is missing: {err}");
}
