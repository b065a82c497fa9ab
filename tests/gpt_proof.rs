//! A small GPT (synthetic weights: embedding, two blocks, head) proven end to end by the
//! library's three-segment path and verified; every public value of the statement and
//! every proof is bound: tampered, the proof does not verify.

mod common;

use common::tiny_gpt as model;
use ff::Field;
use fold_ml::gpt::GptStatement;
use fold_ml::prove::gpt::{prove, verify, GptKeys, GptProof};
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
