//! Bad input to the CLI: each case gets a clear one-line error naming the file or flag,
//! and exit code 2; a job interrupted by a failing disk resumes with no lost checkpoint.

mod common;

use common::*;
use fold_ml::job::checkpoint::{self, FAIL_HOOK_ENV};

fn expect_2(args: &[&str], needle: &str) {
    let (code, _, err) = fold_ml(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{args:?}: {err}"));
    assert!(line.contains(needle), "{args:?}: {line:?} does not name {needle:?}");
}

#[test]
fn bad_flags_and_shapes() {
    let job = scratch().join("never");
    let j = job.to_str().unwrap();
    expect_2(&["prove", "--layers", "0", "--job", j], "--layers");
    expect_2(&["prove", "--kernel", "4", "--job", j], "--kernel");
    expect_2(&["prove", "--channels", "0", "--job", j], "--channels");
    expect_2(&["prove", "--size", "0", "--job", j], "--size");
    expect_2(&["prove", "--dense", "0", "--job", j], "--dense");
    expect_2(&["prove", "--layers", "2", "--layers-per-step", "0", "--job", j], "--layers-per-step");
    // a step no verifier derives keys for is refused before any setup, not run out of memory
    expect_2(&["prove", "--dense", "4096", "--layers", "1", "--job", j], "weights");
    assert!(!job.exists(), "nothing is created for a rejected request");
    // clap's own usage errors also exit with 2
    assert_eq!(fold_ml(&["prove", "--layers", "many"]).0, 2);
    assert_eq!(fold_ml(&["frobnicate"]).0, 2);
}

#[test]
fn bad_input_files() {
    let j = scratch().join("never2");
    let j = j.to_str().unwrap();
    let missing = scratch().join("missing.json");
    expect_2(&["prove", "--input", missing.to_str().unwrap(), "--job", j], "missing.json");
    let dir_as_file = scratch().join("a-directory.json");
    std::fs::create_dir_all(&dir_as_file).unwrap();
    expect_2(&["prove", "--input", dir_as_file.to_str().unwrap(), "--job", j], "a-directory.json");
    let f = scratch().join("bad.json");
    for (content, needle) in [
        ("not json", "bad.json"),
        ("[1, 2, 3]", "expected 784"),
        ("[-1]", "outside [0, 127]"),
        ("[128]", "outside [0, 127]"),
        ("{\"values\": [1]}", "bad.json"),
    ] {
        std::fs::write(&f, content).unwrap();
        expect_2(&["prove", "--input", f.to_str().unwrap(), "--job", j], needle);
    }
}

#[test]
fn bad_proof_directories() {
    let v = &verify_bin();
    let empty = scratch().join("empty-proof-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = run(v, &[empty.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("statement.json"), "{err}");
    let dir = copy_job(&reference_job(), "no-proof");
    std::fs::remove_file(dir.join("proof.bin")).unwrap();
    let (code, _, err) = run(v, &[dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("proof.bin"), "{err}");
    let dir = copy_job(&reference_job(), "garbage-statement");
    std::fs::write(dir.join("statement.json"), "{ this is not json").unwrap();
    let (code, _, err) = run(v, &[dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("statement.json"), "{err}");
    // proof directories carry no key: the verifier derives its own, and takes none
    let (code, _, err) = run(v, &[reference_job().to_str().unwrap(), "--vk", "/nonexistent/vk.bin"]);
    assert_eq!(code, 2);
    assert!(err.contains("--vk"), "{err}");
    // status and resume of something that is not a job
    expect_2(&["status", empty.to_str().unwrap()], "manifest.json");
    expect_2(&["resume", empty.to_str().unwrap()], "manifest.json");
    expect_2(&["verify-checkpoint", empty.to_str().unwrap()], "manifest.json");
}

/// The verifier writes a key it derived to its store while it checks the proof with it; a
/// write that fails is still the run's error (exit 2, naming the path), not a silent pass.
#[test]
fn unwritable_key_store() {
    let cache = scratch().join("key-store-is-a-file");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("verifier"), "not a directory").unwrap();
    let job = reference_job();
    let (code, out, err) = run(&verify_bin(), &[job.to_str().unwrap(), "--cache", cache.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("verifier") && line.contains("Not a directory"), "{line}");
    assert!(!out.contains("ACCEPTED") && !err.contains("ACCEPTED"), "{out}{err}");
}

#[test]
fn unwritable_job_directory() {
    // /proc does not accept new directories, whoever we are
    expect_2(
        &["prove", "--layers", "1", "--size", "4", "--channels", "1", "--job", "/proc/fold-ml-job"],
        "/proc/fold-ml-job",
    );
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn full_disk_while_checkpointing_then_resume() {
    let dir = scratch().join("full-disk");
    let d = dir.to_str().unwrap();
    let args = [
        "prove",
        "--size",
        "5",
        "--channels",
        "1",
        "--layers",
        "5",
        "--layers-per-step",
        "1",
        "--checkpoint-every",
        "1",
        "--job",
        d,
    ];
    let (code, _, err) = run_env(env!("CARGO_BIN_EXE_fold-ml"), &args, &[(FAIL_HOOK_ENV, "3")]);
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(line.contains("ckpt-00000003.bin") && line.contains("No space left"), "{line}");
    // no torn temporary file, and the previous checkpoints are intact
    let names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    assert_eq!(checkpoint::list(&dir).first().map(|(k, _)| k.0), Some(2));
    let events = fold_ml::job::events::EventLog::read(&dir);
    assert!(events.iter().any(|e| e.event.name() == "failed"));
    // the disk is fine again: the same command resumes from layer 2
    let (code, _, err) = run(env!("CARGO_BIN_EXE_fold-ml"), &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 2 layers"), "{err}");
    assert_eq!(verify_cli(&dir).0, 0);
}
