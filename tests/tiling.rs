//! Tiled layers end to end: layers over the fold budget are proven a band of output rows
//! per fold, the job is interrupted inside a layer and resumed from a checkpoint there,
//! the proof verifies with the standalone verifier and says what the native model
//! computes, and a statement whose tiling was changed is rejected.

mod common;

use common::*;
use fold_ml::job::checkpoint::{self, FAIL_HOOK_ENV};
use fold_ml::job::events::{EventLog, JobEvent};
use fold_ml_circuits::layer::BlockSpec;
use fold_ml_circuits::reference::run_native;
use fold_ml_circuits::synthetic::SyntheticModel;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fold-ml");

/// 2 layers of 4 channels on 16×16 (about 70k constraints each) under a 30k budget,
/// checkpointing after every fold.
fn prove(dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = dir.to_str().unwrap();
    let args = ["prove", "--channels", "4", "--size", "16", "--layers", "2", "--seed", "3", "--fold-budget", "30000"];
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--checkpoint-seconds", "0", "--job", dir]);
    run_env(BIN, &args, env)
}

fn statement(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap()
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the checkpoint failure hook (--features test-hooks)")]
fn a_tiled_job_is_interrupted_inside_a_layer_resumed_and_verified() {
    let dir = scratch().join("tiled");
    // The disk "fills up" when the first layer is complete: the job stops with only
    // checkpoints inside that layer on disk.
    let (code, _, err) = prove(&dir, &[(FAIL_HOOK_ENV, "1")]);
    assert_ne!(code, 0, "the hook did not fire: {err}");
    let newest = checkpoint::list(&dir).first().map(|(k, _)| *k).expect("checkpoints inside the first layer");
    assert_eq!(newest.0, 0, "no layer finished");
    assert!(newest.1 >= 2, "several tiles in: {newest:?}");

    let (code, out, err) = prove(&dir, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let resumed: Vec<_> = EventLog::read(&dir)
        .into_iter()
        .filter_map(|e| match e.event {
            JobEvent::Resumed { from, tiles } => Some((from, tiles)),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, [(0, newest.1)], "resumed inside layer 0, at its newest checkpoint's tile");
    let said = format!("at 0 layers and {} tiles of layer 1", newest.1);
    assert!(format!("{out}{err}").contains(&said), "{out}\n{err}");
    let tiles: Vec<[usize; 2]> = EventLog::read(&dir)
        .into_iter()
        .filter_map(|e| match e.event {
            JobEvent::Folded { tile, .. } => tile,
            _ => None,
        })
        .collect();
    assert!(tiles.iter().any(|[t, n]| *t + 1 == *n), "the log shows tiles: {tiles:?}");

    let (code, out, _) = verify_cli(&dir);
    assert_eq!(code, 0, "{out}");
    let s = statement(&dir);
    let arch = &s["segments"][0]["architecture"];
    let rows = arch["tiling"]["Rows"].as_u64().expect("the layers are tiled by rows");
    assert!(rows < 16 && 16 % rows == 0);
    assert_eq!(arch["block"]["links"], serde_json::json!(["Rows", "Rows"]));

    // The proven output is the model's.
    let m = SyntheticModel::conv(4, 16, 3, 2, 3).unwrap();
    let layers: Vec<_> = m.iter().collect();
    let expected = run_native(&BlockSpec::layer(m.spec()), &m.default_input(), &layers).unwrap();
    let values: Vec<u8> = serde_json::from_value(s["output"]["values"].clone()).unwrap();
    assert_eq!(values, expected);
}

#[test]
fn a_statement_with_another_tiling_is_rejected() {
    let dir = scratch().join("tiled-tamper");
    let (code, out, err) = prove(&dir, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let copy = copy_job(&dir, "tiled-tamper-copy");
    let mut s = statement(&copy);
    let rows = s["segments"][0]["architecture"]["tiling"]["Rows"].as_u64().unwrap();
    let other = if rows == 4 { 2 } else { 4 };
    s["segments"][0]["architecture"]["tiling"] = serde_json::json!({ "Rows": other });
    // a forger recomputes the architecture digest too
    let arch: fold_ml::model::Architecture = serde_json::from_value(s["segments"][0]["architecture"].clone()).unwrap();
    s["segments"][0]["architecture_digest"] = arch.digest_hex().into();
    std::fs::write(copy.join("statement.json"), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let (code, out, err) = verify_cli(&copy);
    assert_ne!(code, 0, "{out}\n{err}");
    // untiled: the layer would be one step each, not the proven tiles
    s["segments"][0]["architecture"]["tiling"] = serde_json::Value::Null;
    let arch: fold_ml::model::Architecture = serde_json::from_value(s["segments"][0]["architecture"].clone()).unwrap();
    s["segments"][0]["architecture_digest"] = arch.digest_hex().into();
    std::fs::write(copy.join("statement.json"), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let (code, out, err) = verify_cli(&copy);
    assert_ne!(code, 0, "{out}\n{err}");
    // tiled, but its tensors claimed to be committed whole
    s["segments"][0]["architecture"]["tiling"] = serde_json::json!({ "Rows": rows });
    s["segments"][0]["architecture"]["block"]["links"] = serde_json::json!(["Whole", "Whole"]);
    let arch: fold_ml::model::Architecture = serde_json::from_value(s["segments"][0]["architecture"].clone()).unwrap();
    s["segments"][0]["architecture_digest"] = arch.digest_hex().into();
    std::fs::write(copy.join("statement.json"), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let (code, out, err) = verify_cli(&copy);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(format!("{out}{err}").contains("one row per link"), "{out}\n{err}");
    // tiled by groups of output channels (a layer of one model-commitment chunk cannot be)
    s["segments"][0]["architecture"]["tiling"] = serde_json::json!({ "Channels": 2 });
    s["segments"][0]["architecture"]["block"]["links"] = serde_json::json!(["Rows", { "Channels": 2 }]);
    let arch: fold_ml::model::Architecture = serde_json::from_value(s["segments"][0]["architecture"].clone()).unwrap();
    s["segments"][0]["architecture_digest"] = arch.digest_hex().into();
    std::fs::write(copy.join("statement.json"), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let (code, out, err) = verify_cli(&copy);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(format!("{out}{err}").contains("chunk"), "{out}\n{err}");
}

/// `inspect` says when even the smallest tile is over the fold budget (peak memory then
/// follows that tile, not the budget), and not when a tile fits.
#[test]
fn inspect_says_when_no_tiling_fits_the_budget() {
    let args = |budget: &'static str| {
        ["inspect", "--channels", "16", "--size", "32", "--layers", "2", "--fold-budget", budget]
    };
    let (code, out, err) = run(BIN, &args("10000"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tiled:") && out.contains("no tiling fits"), "{out}");
    let (code, out, err) = run(BIN, &args("262144"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tiled:") && !out.contains("no tiling fits"), "{out}");
}
