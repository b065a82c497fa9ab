//! A GPT through the command line: `prove` of a GPT model file on a prompt (killed after
//! its first segment; its progress damaged, then ignored with a warning; killed again after
//! its first block, and resumed from that block), `fold-ml-verify` of the result with
//! keys it derives from the statement, `commit`, and every edit of `statement.json` or
//! `proof.bin` rejected. The model is a small synthetic GPT (the shipped one takes minutes).

mod common;

use common::{fold_ml, run_env, scratch, verify_cli};
use fold_ml::artifact::{self, Kind};
use fold_ml::gpt::GptStatement;
use fold_ml::job::gpt::{ABORT_BLOCK_HOOK_ENV, ABORT_HOOK_ENV};
use fold_ml::model::gpt_file::GptModel;
use fold_ml::nova::CompressedSnark;
use fold_ml_circuits::F;
use std::path::{Path, PathBuf};

const VOCAB: usize = 19;
const TOKENS: [usize; 4] = [5, 18, 0, 5];

fn model() -> GptModel {
    GptModel { name: "tiny-gpt".into(), q: common::tiny_gpt(), salt: F::from(99) }
}

fn logits(m: &GptModel) -> Vec<i64> {
    m.q.logits(&TOKENS).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn statement(dir: &Path) -> GptStatement {
    serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap()
}

/// A copy of the proven job with `edit` applied to its files.
fn edited(job: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["statement.json", "proof.bin"] {
        std::fs::copy(job.join(f), dir.join(f)).unwrap();
    }
    edit(&dir);
    dir
}

/// A change to a statement's JSON.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

fn edit_statement(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("statement.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    change(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_gpt_is_proven_resumed_and_verified_from_the_command_line() {
    let m = model();
    let file = scratch().join("tiny.foldml");
    m.write(&file).unwrap();
    assert_eq!(GptModel::read(&file).unwrap(), m);
    let tokens = scratch().join("tokens.json");
    std::fs::write(&tokens, serde_json::to_vec(&TOKENS).unwrap()).unwrap();
    let job = scratch().join("gpt-job");
    let args = ["prove", "--model", path(&file), "--input", path(&tokens), "--job", path(&job)];

    // killed right after the embedding is proven
    let (code, _, err) = run_env(env!("CARGO_BIN_EXE_fold-ml"), &args, &[(ABORT_HOOK_ENV, "0")]);
    assert_ne!(code, 0, "the hook did not abort: {err}");
    let progress = job.join("gpt-progress.bin");
    let mut bytes = std::fs::read(&progress).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&progress, bytes).unwrap();

    // the damaged progress is ignored with a warning; killed again after the first block's
    // fold is saved (a checkpoint after every block, recorded in the job)
    let mut every_block = args.to_vec();
    every_block.extend(["--checkpoint-every", "1"]);
    let (code, _, err) = run_env(env!("CARGO_BIN_EXE_fold-ml"), &every_block, &[(ABORT_BLOCK_HOOK_ENV, "1")]);
    assert_ne!(code, 0, "the hook did not abort: {err}");
    assert!(err.contains("warning: ignoring the saved progress"), "{err}");
    assert!(err.contains("blocks: fold of 1 block(s) saved"), "{err}");
    assert!(!job.join("statement.json").exists());

    // resumed from the first block: the second is folded, the blocks and the head compressed
    let (code, out, err) = fold_ml(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("resuming after 1 proven segment(s) and 1 folded block(s)"), "{err}");
    assert!(err.contains("blocks: fold of 2 block(s) saved"), "the policy was not kept: {err}");
    assert!(!err.contains("warning"), "{err}");
    assert!(out.contains("embedding  proven before this run") && out.contains("head       fold"), "{out}");
    assert!(!progress.exists(), "the secret progress is left behind");

    let s = statement(&job);
    let want = logits(&m);
    assert_eq!(s.logits, want);
    assert!(want.iter().max() > want.iter().min());
    assert_eq!(s.next_token, fold_ml::model::network::argmax(&want));
    assert_eq!(s.tokens, TOKENS.map(|t| t as u16));

    let (code, out, err) = verify_cli(&job);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ACCEPTED: a GPT of 2 blocks") && out.contains(&format!("next token {}", s.next_token)),
        "{out}"
    );

    // the published commitment pins the model
    let (code, out, _) = fold_ml(&["commit", "--model", path(&file)]);
    assert_eq!(code, 0);
    let published: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hex = published["model_commitment"].as_str().unwrap().to_string();
    assert_eq!(hex, fold_ml::field::to_hex(&s.model_commitment));
    let verify = |dir: &Path, extra: &[&str]| {
        let mut a = vec![path(dir)];
        a.extend_from_slice(extra);
        run_env(&common::verify_bin(), &a, &[])
    };
    assert_eq!(verify(&job, &["--model-commitment", &hex]).0, 0);
    let other = fold_ml::field::to_hex(&(s.model_commitment + F::from(1)));
    assert_eq!(verify(&job, &["--model-commitment", &other]).0, 1);

    // proven again: nothing to do
    let (code, out, _) = fold_ml(&args);
    assert_eq!(code, 0);
    assert!(out.contains("already complete"), "{out}");

    // another prompt in the same job directory is refused, with exit code 2
    let other_tokens = scratch().join("other-tokens.json");
    std::fs::write(&other_tokens, b"[1, 2, 3, 4]").unwrap();
    let (code, _, err) =
        fold_ml(&["prove", "--model", path(&file), "--input", path(&other_tokens), "--job", path(&job)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another model or prompt"), "{err}");

    // every public value and the proof's bytes are bound
    let next = s.next_token;
    let tampers: Vec<(&str, Edit)> = vec![
        ("a token", Box::new(|v| v["tokens"][1] = 17.into())),
        (
            "a logit (next token kept)",
            Box::new(move |v| {
                let i = if next == 0 { 1 } else { 0 };
                let l = v["logits"][i].as_i64().unwrap();
                v["logits"][i] = (l - 1).into();
            }),
        ),
        ("the next token", Box::new(move |v| v["next_token"] = ((next + 1) % VOCAB).into())),
        ("the block count", Box::new(|v| v["blocks"] = 1.into())),
        ("the stream link", Box::new(|v| v["links"][0]["stream"] = v["links"][1]["stream"].clone())),
        ("the block spec", Box::new(|v| v["architecture"]["block"]["softmax_table"] = 9.into())),
        ("an unknown field", Box::new(|v| v["extra"] = 1.into())),
    ];
    for (i, (what, change)) in tampers.into_iter().enumerate() {
        let dir = edited(&job, &format!("gpt-tampered-{i}"), |d| edit_statement(d, change));
        let (code, out, err) = verify_cli(&dir);
        assert_eq!(code, 1, "{what} changed: {out}{err}");
        assert!(err.contains("REJECTED"), "{what}: {err}");
    }
    // another block spec, with proof.bin re-headed for it: the verifier derives that spec's
    // keys, under which the proof does not verify
    let dir = edited(&job, "gpt-other-spec", |d| {
        edit_statement(d, |v| v["architecture"]["block"]["mix"] = serde_json::json!({"shift": 8, "acc_bits": 24}));
        let (old, new) = (s.architecture.digest(), statement(d).architecture.digest());
        let p = d.join("proof.bin");
        let snarks: Vec<CompressedSnark> = artifact::decode(Kind::Proof, &old, &std::fs::read(&p).unwrap()).unwrap();
        std::fs::write(&p, artifact::encode(Kind::Proof, &new, &snarks).unwrap()).unwrap();
    });
    let (code, _, err) = verify_cli(&dir);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("segment 1's proof does not verify"), "{err}");

    let dir = edited(&job, "gpt-tampered-proof", |d| {
        let p = d.join("proof.bin");
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 40] ^= 1;
        std::fs::write(&p, bytes).unwrap();
    });
    assert_eq!(verify_cli(&dir).0, 1, "a flipped bit in proof.bin");
}

#[test]
fn gpt_inputs_that_do_not_fit_are_refused_with_exit_code_2() {
    let file = scratch().join("tiny-refusals.foldml");
    model().write(&file).unwrap();
    let job = scratch().join("gpt-refused");
    let write = |name: &str, bytes: &[u8]| {
        let p = scratch().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases = [
        (write("t-long.json", b"[1, 2, 3, 4, 5]"), "tokens below"),
        (write("t-big.json", b"[1, 2, 3, 19]"), "tokens below"),
        (write("t-frac.json", b"[1, 2.5, 3, 4]"), "not a token id"),
        (write("t-two.json", b"{\"inputs\": [[1, 2, 3, 4], [1, 2, 3, 4]]}"), "prove takes one"),
    ];
    for (tokens, want) in cases {
        let (code, _, err) = fold_ml(&["prove", "--model", path(&file), "--input", path(&tokens), "--job", path(&job)]);
        assert_eq!(code, 2, "{}: {err}", tokens.display());
        assert!(err.contains(want), "{}: {err}", tokens.display());
    }
    let (code, _, err) = fold_ml(&["prove", "--model", path(&file), "--job", path(&job)]);
    assert_eq!(code, 2);
    assert!(err.contains("a GPT needs a prompt"), "{err}");
    let tokens = write("t-ok.json", b"[1, 2, 3, 4]");
    let (code, _, err) = fold_ml(&[
        "prove",
        "--model",
        path(&file),
        "--input",
        path(&tokens),
        "--job",
        path(&job),
        "--layers-per-step",
        "2",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--layers-per-step") && err.contains("does not apply to a GPT"), "{err}");
    // a machine too small for the blocks' steps, as the cost model estimates them: refused
    // before the job is recorded
    let m = model();
    let req = fold_ml::job::gpt::GptRequest {
        model: &m,
        model_file: file.clone(),
        tokens: vec![1, 2, 3, 4],
        cache_dir: scratch().join("cache"),
        checkpoint_every: None,
        memory_limit_mib: Some(64),
        restart: false,
    };
    let small = scratch().join("gpt-too-small");
    let err = fold_ml::job::gpt::run_gpt(&small, &req, &mut |_| {}).err().expect("refused");
    assert!(err.to_string().contains("estimated peak memory") && err.to_string().contains("64 MiB"), "{err}");
    assert!(!small.join("gpt-job.json").exists() && !small.join("gpt-progress.bin").exists());
    // inspect: the three segments, the blocks one step each, with the transformer's estimates
    let (code, out, err) = fold_ml(&["inspect", "--model", path(&file)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("| embedding | 1 |") && out.contains("| blocks | 2 |") && out.contains("| head | 1 |"),
        "{out}"
    );
    assert!(out.contains("scaled by 1.7"), "{out}");
    // a damaged model file
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    let damaged = write("tiny-damaged.foldml", &bytes);
    let (code, _, err) = fold_ml(&["prove", "--model", path(&damaged), "--input", path(&tokens), "--job", path(&job)]);
    assert_eq!(code, 2, "{err}");
}
