//! A small GPT (synthetic weights: embedding, two blocks, head) proven end to end by the
//! library's three-segment path and verified; every public value of the statement and
//! every proof is bound: tampered, the proof does not verify. A proof stopped after its
//! first block resumes from the saved fold; a saved fold that does not end at the model's
//! stream is discarded and the blocks are folded again.

mod common;

use common::tiny_gpt as model;
use ff::Field;
use fold_ml::error::Error;
use fold_ml::gpt::GptStatement;
use fold_ml::prove::gpt::{prove, prove_from, verify, GptKeys, GptProgress, GptProof, ProgressSink};
use fold_ml_circuits::F;
use std::sync::OnceLock;

/// One setup and one proof for every test.
fn proven() -> &'static (GptKeys, GptProof) {
    static P: OnceLock<(GptKeys, GptProof)> = OnceLock::new();
    P.get_or_init(|| {
        let q = model();
        let keys = GptKeys::setup(&q).unwrap();
        let (proof, _) = prove(&keys, &q, F::from(77), &[5, 18, 0, 5]).unwrap();
        (keys, proof)
    })
}

#[test]
fn the_proof_verifies_and_names_the_next_token_of_the_native_model() {
    let (keys, proof) = proven();
    let q = model();
    let logits = q.logits(&[5, 18, 0, 5]).unwrap();
    assert_eq!(proof.statement.logits, logits);
    assert!(logits.iter().max() > logits.iter().min());
    let next = verify(&keys.verifier_keys(), &proof.statement, proof.proofs.each_ref()).unwrap();
    assert_eq!(next, fold_ml::model::network::argmax(&logits));
    assert_eq!(proof.statement.blocks, 2);
}

/// A change to a statement.
type Tamper = Box<dyn Fn(&mut GptStatement)>;

/// Each public value changed: the proof no longer verifies.
#[test]
fn a_tampered_statement_is_rejected() {
    let (keys, proof) = proven();
    let vks = keys.verifier_keys();
    let tampered: Vec<(&str, Tamper)> = vec![
        ("a token", Box::new(|s| s.tokens[1] = 17)),
        ("a logit", Box::new(|s| s.logits[3] += 1)),
        ("the logits' blind", Box::new(|s| s.logits_blind += F::ONE)),
        ("the model commitment", Box::new(|s| s.model_commitment += F::ONE)),
        ("the stream after the embedding", Box::new(|s| s.links[0].stream += F::ONE)),
        ("the model after the blocks", Box::new(|s| s.links[1].model += F::ONE)),
        ("the block count", Box::new(|s| s.blocks = 1)),
        ("the logits' bits", Box::new(|s| s.logit_bits = 34)),
    ];
    for (what, change) in tampered {
        let mut s = proof.statement.clone();
        change(&mut s);
        assert!(verify(&vks, &s, proof.proofs.each_ref()).is_err(), "{what} changed, the proof still verified");
    }
    let [e, b, h] = proof.proofs.each_ref();
    assert!(verify(&vks, &proof.statement, [h, b, e]).is_err(), "the proofs swapped still verified");
}

/// A proof made under other keys (another block spec) does not verify under these.
#[test]
fn a_proof_under_another_model_shape_is_rejected() {
    let (keys, proof) = proven();
    let [e, _, h] = keys.verifier_keys();
    let other = {
        let mut q = model();
        q.spec.mix = fold_ml_circuits::quant::RequantSpec::new(8, 24).unwrap();
        GptKeys::setup(&q).unwrap()
    };
    assert!(verify(&[e, &other.segments[1].vk, h], &proof.statement, proof.proofs.each_ref()).is_err());
}

/// Records what a proof saves: the blocks' folds seen, the discarded ones, and a copy of
/// the progress at `stop_at` folded blocks, where it stops the proof (as a kill would).
#[derive(Default)]
struct Recorder {
    stop_at: Option<usize>,
    kept: Option<Vec<u8>>,
    folds: Vec<usize>,
    discarded: Vec<String>,
}

impl ProgressSink for Recorder {
    fn save(&mut self, p: &GptProgress) -> Result<(), Error> {
        let Some(f) = &p.folding else { return Ok(()) };
        self.folds.push(f.blocks);
        if self.stop_at == Some(f.blocks) {
            self.kept = Some(bincode::serde::encode_to_vec(p, bincode::config::standard()).unwrap());
            return Err(Error::bad_input("test", "stopped"));
        }
        Ok(())
    }

    fn discarded(&mut self, why: &str) {
        self.discarded.push(why.to_string());
    }
}

#[test]
fn a_proof_resumes_from_a_saved_fold_and_a_forged_fold_is_discarded() {
    let (keys, _) = proven();
    let (q, salt, ids) = (model(), F::from(77), [5u16, 18, 0, 5]);
    let mut key = |j: usize| Ok(&keys.segments[j]);
    let mut first = Recorder { stop_at: Some(1), ..Recorder::default() };
    assert!(prove_from(&q, salt, GptProgress::start(&ids, 2), &mut key, &mut first).is_err());
    let kept = first.kept.expect("the fold after the first block was saved");
    let saved = || -> GptProgress { bincode::serde::decode_from_slice(&kept, bincode::config::standard()).unwrap().0 };
    let logits = q.logits(&[5, 18, 0, 5]).unwrap();

    let mut resumed = Recorder::default();
    let (proof, _) = prove_from(&q, salt, saved(), &mut key, &mut resumed).unwrap();
    assert_eq!(resumed.folds, [2], "the first block was folded again");
    assert!(resumed.discarded.is_empty());
    assert_eq!(proof.statement.logits, logits);
    verify(&keys.verifier_keys(), &proof.statement, proof.proofs.each_ref()).unwrap();

    // the fold is authentic, but the blind it is said to end at is not its own: it does
    // not end at the model's stream, and the blocks are folded again under the new blind
    let mut forged = saved();
    forged.blinds[1] += F::ONE;
    let mut again = Recorder::default();
    let (proof, _) = prove_from(&q, salt, forged, &mut key, &mut again).unwrap();
    assert_eq!(again.discarded.len(), 1);
    assert!(again.discarded[0].contains("another stream"), "{:?}", again.discarded);
    assert_eq!(again.folds, [1, 2]);
    verify(&keys.verifier_keys(), &proof.statement, proof.proofs.each_ref()).unwrap();
}
