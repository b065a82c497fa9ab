//! The tamper suite: for a genuine proof, every single-byte flip in the proof, sampled
//! payload flips resealed with a valid checksum (so the SNARK verifier itself must say
//! no), and every single-field change in the statement. Each must be rejected — never
//! accepted, never a panic. Prints the counts.

mod common;

use common::*;
use fold_ml::artifact::{decode, encode, Kind};
use fold_ml::nova::{CompressedSnark, VerifierKey};
use fold_ml::statement::Statement;
use fold_ml::verify::verify_proof;
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[derive(Default)]
struct Tally {
    tried: usize,
    rejected: usize,
    accepted: Vec<String>,
    panics: Vec<String>,
}

impl Tally {
    fn check(&mut self, what: String, f: impl FnOnce() -> bool) {
        self.tried += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(true) => self.accepted.push(what),
            Ok(false) => self.rejected += 1,
            Err(_) => self.panics.push(what),
        }
    }
}

/// Every JSON leaf, as a path of object keys and array indices.
fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            path.push(Value::String(k.clone()));
            leaves(x, path, out);
            path.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            path.push(Value::from(i));
            leaves(x, path, out);
            path.pop();
        }),
        _ => out.push(path.clone()),
    }
}

fn leaf_mut<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, p| match p {
        Value::String(k) => &mut v[k.as_str()],
        _ => &mut v[p.as_u64().unwrap() as usize],
    })
}

/// The smallest change of a leaf that keeps its type.
fn mutate(v: &mut Value) {
    *v = match v.take() {
        Value::Number(n) => Value::from(n.as_u64().map_or(1, |x| if x == 0 { 1 } else { x - 1 })),
        Value::String(s) => {
            let mut c: Vec<char> = s.chars().collect();
            let last = c.last_mut().expect("non-empty");
            *last = if *last == '0' { '1' } else { '0' };
            Value::String(c.into_iter().collect())
        }
        Value::Bool(b) => Value::Bool(!b),
        // an absent option (no pooling): claim one
        Value::Null => serde_json::json!({ "kind": "max", "size": 1 }),
        other => other,
    };
}

#[test]
fn tamper_suite() {
    let job = reference_job();
    let honest_json: Value = serde_json::from_slice(&std::fs::read(job.join("statement.json")).unwrap()).unwrap();
    let statement: Statement = serde_json::from_value(honest_json.clone()).unwrap();
    let proof = std::fs::read(job.join("proof.bin")).unwrap();
    let vk: VerifierKey = fold_ml_verify::keys::verifier_key(&cache(), &statement.segments[0].architecture).unwrap();
    let vk = [&vk];
    assert!(verify_proof(&statement, &proof, &vk).is_ok(), "the genuine proof verifies");
    let mut t = Tally::default();

    // 1. every single-byte flip in proof.bin
    for pos in 0..proof.len() {
        let mut bad = proof.clone();
        bad[pos] ^= 0xff;
        t.check(format!("proof byte {pos}"), || verify_proof(&statement, &bad, &vk).is_ok());
    }
    // 2. payload flips resealed with a valid header and checksum (sampled)
    let arch = statement.architectures_digest();
    let snarks: Vec<CompressedSnark> = decode(Kind::Proof, &arch, &proof).unwrap();
    let payload = bincode::serde::encode_to_vec(&snarks, bincode::config::standard()).unwrap();
    let step = (payload.len() / 150).max(1);
    for pos in (0..payload.len()).step_by(step) {
        let mut bad = payload.clone();
        bad[pos] ^= 0x01;
        t.check(format!("resealed payload byte {pos}"), || {
            match bincode::serde::decode_from_slice::<Vec<CompressedSnark>, _>(&bad, bincode::config::standard()) {
                Ok((s, _)) => verify_proof(&statement, &encode(Kind::Proof, &arch, &s).unwrap(), &vk).is_ok(),
                Err(_) => false, // undecodable: the reader rejects it
            }
        });
    }
    // 3. every single-field change in the statement
    let mut paths = Vec::new();
    leaves(&honest_json, &mut Vec::new(), &mut paths);
    assert!(paths.len() > 20);
    for path in &paths {
        let mut v = honest_json.clone();
        mutate(leaf_mut(&mut v, path));
        assert_ne!(v, honest_json);
        t.check(format!("statement field {path:?}"), || match serde_json::from_value::<Statement>(v) {
            Ok(s) => verify_proof(&s, &proof, &vk).is_ok(),
            Err(_) => false, // a field that no longer parses: the verifier rejects the statement
        });
    }
    println!(
        "tamper suite: {} mutations tried, {} rejected, {} accepted, {} panics",
        t.tried,
        t.rejected,
        t.accepted.len(),
        t.panics.len()
    );
    assert!(t.accepted.is_empty(), "accepted: {:?}", t.accepted);
    assert!(t.panics.is_empty(), "panicked: {:?}", t.panics);
    assert_eq!(t.rejected, t.tried);
}

#[test]
fn tampered_files_exit_with_1_from_the_cli() {
    let job = reference_job();
    let proof = std::fs::read(job.join("proof.bin")).unwrap();
    let dir = copy_job(&job, "cli-tamper");
    for pos in [3, 45, 81, 500, proof.len() - 2] {
        let mut bad = proof.clone();
        bad[pos] ^= 0xff;
        std::fs::write(dir.join("proof.bin"), &bad).unwrap();
        let (code, _, err) = verify_cli(&dir);
        assert_eq!(code, 1, "byte {pos}: {err}");
        assert!(err.starts_with("REJECTED: "), "{err}");
    }
    std::fs::write(dir.join("proof.bin"), &proof).unwrap();
    let mut s: Value = serde_json::from_slice(&std::fs::read(job.join("statement.json")).unwrap()).unwrap();
    s["num_layers"] = Value::from(2);
    std::fs::write(dir.join("statement.json"), s.to_string()).unwrap();
    assert_eq!(verify_cli(&dir).0, 1);
    s["model_commitment"] = Value::from("0x12");
    std::fs::write(dir.join("statement.json"), s.to_string()).unwrap();
    let (code, _, err) = verify_cli(&dir);
    assert_eq!(code, 1, "{err}");
}
