//! End to end: prove, then verify; and every way a verifier must say no.

mod common;

use common::*;
use fold_ml::error::{ArtifactError, VerifyError};
use fold_ml::statement::Statement;
use fold_ml::verify::{verify_dir, Expected};
use fold_ml_circuits::reference::run_native;
use std::path::Path;

fn statement(dir: &Path) -> Statement {
    serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap()
}

fn write_statement(dir: &Path, s: &Statement) {
    std::fs::write(dir.join("statement.json"), serde_json::to_vec_pretty(s).unwrap()).unwrap();
}

fn verdict(dir: &Path) -> Result<Statement, VerifyError> {
    verify_dir(dir, &cache(), &Expected::default()).expect("files are readable")
}

#[test]
fn proof_verifies_and_output_equals_the_reference() {
    let job = reference_job();
    let s = verdict(&job).expect("accepted");
    let m = model_of(&small(3, 0));
    let layers: Vec<_> = m.iter().collect();
    let expected =
        run_native(&fold_ml_circuits::layer::BlockSpec::layer(m.spec()), &m.default_input(), &layers).unwrap();
    assert_eq!(s.output.values, Some(expected));
    assert_eq!(s.num_layers, 3);
    assert!(s.input.values.is_none(), "the input is private by default");
    let (code, out, _) = verify_cli(&job);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ACCEPTED"));
    // the standalone verifier needs no opening and no weights
    let bare = copy_job(&job, "bare");
    assert_eq!(verify_cli(&bare).0, 0);
}

#[test]
fn proof_for_a_different_input_is_rejected() {
    let m = small(3, 0);
    let other_input: Vec<u8> = model_of(&m).default_input().iter().map(|&a| 127 - a).collect();
    let other = proven_job("other-input", m, other_input, false);
    assert!(verdict(&other).is_ok());
    // the other proof under the reference statement
    let mixed = copy_job(&reference_job(), "mixed");
    std::fs::copy(other.join("proof.bin"), mixed.join("proof.bin")).unwrap();
    assert!(matches!(verdict(&mixed), Err(VerifyError::ProofInvalid { .. })));
    let (code, _, err) = verify_cli(&mixed);
    assert_eq!(code, 1);
    assert!(err.contains("REJECTED"), "{err}");
}

#[test]
fn changed_statement_is_rejected() {
    let job = reference_job();
    let honest = statement(&job);
    type Edit = fn(&mut Statement);
    let cases: [(&str, Edit); 6] = [
        ("output values", |s| {
            let v = s.output.values.as_mut().unwrap();
            v[4] = (v[4] + 1) % 128;
        }),
        ("output", |s| {
            let v = s.output.values.as_mut().unwrap();
            v[4] = (v[4] + 1) % 128;
            let layout = s.output_layout();
            let v = s.output.values.as_ref().unwrap();
            s.output.commitment =
                fold_ml_circuits::commit::activation_commitment_native(v, layout, s.output.blind.unwrap());
        }),
        ("model commitment", |s| s.model_commitment += fold_ml::F::from(1)),
        ("output blind", |s| *s.output.blind.as_mut().unwrap() += fold_ml::F::from(1)),
        ("layers", |s| s.num_layers += 1),
        ("input commitment", |s| s.input.commitment += fold_ml::F::from(1)),
    ];
    for (name, edit) in cases {
        let dir = copy_job(&job, &format!("edit-{}", name.replace(' ', "-")));
        let mut s = honest.clone();
        edit(&mut s);
        write_statement(&dir, &s);
        let v = verdict(&dir);
        assert!(v.is_err(), "{name}: accepted");
        match name {
            "output" => {
                assert_eq!(v.unwrap_err(), VerifyError::StateMismatch { segment: 0, what: "activation commitment" })
            }
            "model commitment" => {
                assert_eq!(v.unwrap_err(), VerifyError::StateMismatch { segment: 0, what: "model commitment" })
            }
            "output values" | "layers" | "output blind" => {
                assert!(matches!(v.unwrap_err(), VerifyError::BadStatement(_)), "{name}")
            }
            _ => assert!(matches!(v.unwrap_err(), VerifyError::ProofInvalid { .. }), "{name}"),
        }
        assert_eq!(verify_cli(&dir).0, 1, "{name}");
    }
    // a statement that lies about its own architecture digest
    let dir = copy_job(&job, "edit-arch");
    let mut s = honest.clone();
    s.segments[0].architecture.block.stages[0].requant = fold_ml_circuits::quant::RequantSpec::new(5, 16).unwrap();
    write_statement(&dir, &s);
    assert!(matches!(verdict(&dir), Err(VerifyError::BadStatement(_))));
    assert_eq!(verify_cli(&dir).0, 1);
}

#[test]
fn flipped_proof_bytes_are_rejected() {
    let job = reference_job();
    let proof = std::fs::read(job.join("proof.bin")).unwrap();
    let dir = copy_job(&job, "flipped");
    for pos in [0, 9, 20, 60, 100, proof.len() / 2, proof.len() - 1] {
        let mut bad = proof.clone();
        bad[pos] ^= 0x40;
        std::fs::write(dir.join("proof.bin"), &bad).unwrap();
        let v = verdict(&dir);
        assert!(matches!(v, Err(VerifyError::MalformedProof(_))), "byte {pos}: {v:?}");
        assert_eq!(verify_cli(&dir).0, 1, "byte {pos}");
    }
    std::fs::write(dir.join("proof.bin"), &proof[..proof.len() - 10]).unwrap();
    assert!(matches!(verdict(&dir), Err(VerifyError::MalformedProof(ArtifactError::Truncated(_)))));
}

#[test]
fn tampered_snark_with_a_valid_checksum_is_rejected() {
    // Re-encode the proof with a flipped payload byte and a fresh checksum: only the SNARK
    // verifier can catch it now.
    let job = reference_job();
    let s = statement(&job);
    let digest = s.architectures_digest();
    let proof = std::fs::read(job.join("proof.bin")).unwrap();
    let payload_start = proof.len() - {
        let snarks: Vec<fold_ml::nova::CompressedSnark> =
            fold_ml::artifact::decode(fold_ml::artifact::Kind::Proof, &digest, &proof).unwrap();
        bincode::serde::encode_to_vec(&snarks, bincode::config::standard()).unwrap().len()
    };
    let dir = copy_job(&job, "resealed");
    let mut rejected = 0;
    for offset in [40, 400, 2000, 5000, 9000] {
        let mut payload = proof[payload_start..].to_vec();
        if offset >= payload.len() {
            continue;
        }
        payload[offset] ^= 0x01;
        let Ok((snark, _)) = bincode::serde::decode_from_slice::<Vec<fold_ml::nova::CompressedSnark>, _>(
            &payload,
            bincode::config::standard(),
        ) else {
            rejected += 1; // undecodable: also a rejection path, exercised above
            continue;
        };
        let bytes = fold_ml::artifact::encode(fold_ml::artifact::Kind::Proof, &digest, &snark).unwrap();
        std::fs::write(dir.join("proof.bin"), &bytes).unwrap();
        assert!(verdict(&dir).is_err(), "payload byte {offset} flipped was accepted");
        rejected += 1;
    }
    assert!(rejected >= 3);
}

#[test]
fn public_input_is_checked_against_its_commitment() {
    let m = small(2, 5);
    let input = model_of(&m).default_input();
    let job = proven_job("public-input", m, input.clone(), true);
    let s = verdict(&job).expect("accepted");
    assert_eq!(s.input.values.as_deref(), Some(&input[..]));
    let dir = copy_job(&job, "public-input-edited");
    let mut s2 = s.clone();
    s2.input.values.as_mut().unwrap()[0] ^= 1;
    write_statement(&dir, &s2);
    assert!(matches!(verdict(&dir), Err(VerifyError::BadStatement(_))));
}

#[test]
fn usage_and_input_errors_exit_with_2() {
    let fold_ml = env!("CARGO_BIN_EXE_fold-ml");
    let missing = scratch().join("does-not-exist");
    assert_eq!(verify_cli(&missing).0, 2);
    let (code, _, err) = run(fold_ml, &["prove", "--layers", "0", "--job", scratch().join("zero").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--layers"), "{err}");
    let bad_input = scratch().join("bad-input.json");
    std::fs::write(&bad_input, "[1, 2, 3]").unwrap();
    let (code, _, err) = run(
        fold_ml,
        &["prove", "--layers", "1", "--size", "5", "--channels", "1", "--input", bad_input.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad-input.json") && err.contains("expected 25"), "{err}");
    std::fs::write(&bad_input, "[200]").unwrap();
    let (code, _, err) = run(fold_ml, &["prove", "--layers", "1", "--input", bad_input.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("outside [0, 127]"), "{err}");
    assert_eq!(run(fold_ml, &["prove", "--no-such-flag"]).0, 2);
}

#[test]
fn cli_prove_then_verify() {
    let job = scratch().join("cli-job");
    let fold_ml = env!("CARGO_BIN_EXE_fold-ml");
    let (code, out, err) =
        run(fold_ml, &["prove", "--layers", "2", "--size", "5", "--channels", "1", "--job", job.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("proof size"), "{out}");
    let (code, out, _) = run(fold_ml, &["verify", job.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // a finished job is not silently overwritten
    let (code, out, err) =
        run(fold_ml, &["prove", "--layers", "2", "--size", "5", "--channels", "1", "--job", job.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job already complete"), "{out}");
    // the model commitment printed by `commit` is the statement's
    let (code, out, _) = run(fold_ml, &["commit", "--layers", "2", "--size", "5", "--channels", "1"]);
    assert_eq!(code, 0);
    let s = statement(&job);
    assert!(out.contains(&fold_ml::field::to_hex(&s.model_commitment)), "{out}");
}

#[test]
fn several_layers_per_step_including_a_partial_last_step() {
    // 5 layers at 2 per step: 3 folds, the last one padded with a disabled slot.
    let m = small(5, 3);
    let input = model_of(&m).default_input();
    let dir = scratch().join("k2-n5");
    let mut req = request(m.clone(), input.clone(), true);
    req.layers_per_step = Some(2);
    fold_ml::job::run(&dir, &req, &mut |_| {}).expect("proving succeeds");
    let s = verdict(&dir).expect("accepted");
    assert_eq!((s.num_layers, s.segments[0].architecture.layers_per_step), (5, 2));
    let model = model_of(&m);
    let layers: Vec<_> = model.iter().collect();
    assert_eq!(
        s.output.values,
        Some(run_native(&fold_ml_circuits::layer::BlockSpec::layer(model.spec()), &input, &layers).unwrap())
    );
    // the same statement as one layer per step, but for the architecture (and the
    // output's fresh blind)
    let one = proven_job("k1-n5", m, input, true);
    let s1 = statement(&one);
    assert_eq!((&s1.output.values, s1.model_commitment, &s1.input), (&s.output.values, s.model_commitment, &s.input));
    // claiming 4 or 6 layers (2 or 3 folds) is rejected
    for n in [4, 6] {
        let d = copy_job(&dir, &format!("k2-claims-{n}"));
        let mut s2 = s.clone();
        s2.num_layers = n;
        s2.segments[0].num_layers = n;
        write_statement(&d, &s2);
        assert!(verdict(&d).is_err(), "{n} layers accepted");
    }
    // and the CLI takes the flag
    let (code, out, err) = fold_ml(&[
        "prove",
        "--dense",
        "4",
        "--layers",
        "3",
        "--layers-per-step",
        "2",
        "--job",
        scratch().join("cli-dense").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("proved 3 layers"), "{out}");
    assert_eq!(verify_cli(&scratch().join("cli-dense")).0, 0);
}
