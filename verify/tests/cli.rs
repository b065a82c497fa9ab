//! The standalone verifier's command line: usage and input errors (exit 2) before any
//! work. Accepting and rejecting real proofs is tested by the prover's tests, which run
//! this binary on the proofs they make.

use std::process::Command;

fn verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fold-ml-verify")).args(args).output().expect("runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn usage_and_input_errors_exit_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, err) = verify(&[d]);
    assert_eq!(code, 2, "a directory without a statement: {err}");
    assert!(err.contains("statement.json"), "{err}");
    std::fs::write(dir.path().join("statement.json"), "not json").unwrap();
    std::fs::write(dir.path().join("proof.bin"), "").unwrap();
    let (code, err) = verify(&[d]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a JSON statement"), "{err}");
    let (code, err) = verify(&[d, "--model-commitment", "0x12"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--model-commitment"), "{err}");
    assert_eq!(verify(&[]).0, 2, "no directory");
}

#[test]
fn a_statement_that_is_json_but_not_a_statement_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("statement.json"), r#"{"format": "fold-ml statement"}"#).unwrap();
    std::fs::write(dir.path().join("proof.bin"), "").unwrap();
    let (code, err) = verify(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("REJECTED"), "{err}");
}
