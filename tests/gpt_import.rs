//! GPT import: the shipped `examples/gpt/gpt.onnx` is read exactly (fold-ml's float reading
//! agrees with tract), its quantized next token follows tract's, the imported model is a
//! chain of satisfied steps (embedding, blocks, head), and graphs that differ from the pattern are refused with
//! the node named.

use ff::Field;
use fold_ml::model::onnx::gpt::{agreement, quantize, read_gpt, FloatGpt, QuantGpt};
use fold_ml::Error;
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::transformer::{
    logits_commitment_native, tokens_commitment_native, BlockWitness, EmbedStep, EmbedWitness, HeadStep, HeadWitness,
    TransformerStep,
};
use fold_ml_circuits::F;
use nova_snark::frontend::{num::AllocatedNum, test_cs::TestConstraintSystem, ConstraintSystem};
use nova_snark::traits::circuit::StepCircuit;
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tract_onnx::pb::ModelProto;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gpt")
}

fn windows(name: &str) -> Vec<Vec<usize>> {
    #[derive(serde::Deserialize)]
    struct File {
        inputs: Vec<Vec<usize>>,
    }
    serde_json::from_slice::<File>(&std::fs::read(dir().join(name)).unwrap()).unwrap().inputs
}

fn model() -> &'static (FloatGpt, QuantGpt) {
    static M: OnceLock<(FloatGpt, QuantGpt)> = OnceLock::new();
    M.get_or_init(|| {
        let float = read_gpt(&dir().join("gpt.onnx")).unwrap();
        let q = quantize(&float, &windows("calib.json")).unwrap();
        (float, q)
    })
}

#[test]
fn the_shipped_gpt_is_read_with_its_shape() {
    let (m, q) = model();
    assert_eq!((m.vocab, m.tokens, m.width, m.heads, m.hidden, m.blocks.len()), (96, 16, 64, 4, 256, 4));
    assert!(m.blocks.iter().all(|b| b.score_scale == 0.25));
    assert_eq!(q.blocks.len(), 4);
    assert_eq!(q.spec.shape.width, 64);
}

/// The float reading must agree with tract on every window, and the quantized next token
/// with tract's on most (a broken quantizer lands near chance, 1/96). The full figure
/// (500 windows) is measured by `cargo run --release --example gpt_agreement`.
#[test]
fn the_quantized_next_token_follows_tract() {
    let (m, q) = model();
    let test: Vec<_> = windows("test.json").into_iter().take(60).collect();
    let a = agreement(q, m, &dir().join("gpt.onnx"), &test).unwrap();
    assert_eq!(a.reader_with_tract, 1.0, "{a}");
    assert!(a.with_tract >= 0.85, "{a}");
}

/// Block 0 of the imported model on a held-out window: the step circuit at the imported
/// spec is satisfied and outputs the native next state.
/// Synthesizes `step` on `z`: every constraint must hold; returns `z_out`, checked against
/// the step's native twin `next`.
fn satisfied<S: StepCircuit<F>>(step: &S, z: [F; 3], next: [F; 3]) -> [F; 3] {
    let mut cs = TestConstraintSystem::<F>::new();
    let zv: Vec<_> = z
        .iter()
        .enumerate()
        .map(|(i, &v)| AllocatedNum::alloc(cs.namespace(|| format!("z{i}")), || Ok(v)).unwrap())
        .collect();
    let out = step.synthesize(&mut cs, &zv).unwrap();
    assert_eq!(cs.which_is_unsatisfied(), None);
    assert_eq!(out.iter().map(|v| v.get_value().unwrap()).collect::<Vec<_>>(), next.to_vec());
    next
}

/// The whole imported model as a chain of steps at full size: the embedding opens the
/// committed tokens, every block opens the stream the step before committed, and the
/// head's commitment opens to the importer's logits (whose argmax is the next token).
#[test]
fn the_imported_gpt_is_a_chain_of_satisfied_steps() {
    let (_, q) = model();
    let ids: Vec<u16> = windows("test.json")[0].iter().map(|&t| t as u16).collect();
    let blinds: Vec<F> = (0..=q.blocks.len() + 2).map(|i| F::from(100 + i as u64)).collect();
    let salt = F::from(5);
    let embed =
        EmbedWitness { ids: ids.clone(), weights: q.embed.clone(), blind_in: blinds[0], blind_out: blinds[1], salt };
    let embed = EmbedStep::new(q.embed_spec, embed).unwrap();
    let z0 = [F::ZERO, model_start(), tokens_commitment_native(&ids, blinds[0])];
    let mut z = satisfied(&embed, z0, embed.next_state(z0));
    let mut x = embed.output().to_vec();
    for (b, weights) in q.blocks.iter().enumerate() {
        let w = BlockWitness {
            input: x,
            weights: weights.clone(),
            blind_in: blinds[b + 1],
            blind_out: blinds[b + 2],
            salt,
        };
        let step = TransformerStep::new(q.spec, w).unwrap();
        z = satisfied(&step, z, step.next_state(z));
        x = step.output().to_vec();
    }
    let n = q.blocks.len();
    let w = HeadWitness { input: x, weights: q.head.clone(), blind_in: blinds[n + 1], blind_out: blinds[n + 2], salt };
    let head = HeadStep::new(q.head_spec, w).unwrap();
    let z = satisfied(&head, z, head.next_state(z));
    let logits = q.logits(&windows("test.json")[0]).unwrap();
    assert_eq!(head.logits(), logits);
    assert_eq!(z[0], F::from(n as u64 + 2));
    assert_eq!(z[2], logits_commitment_native(&logits, q.head_spec.logit_bits(), blinds[n + 2]));
}

#[test]
fn bad_token_ids_are_errors() {
    let (m, q) = model();
    let mut w = windows("test.json")[0].clone();
    w[3] = m.vocab;
    assert!(q.logits(&w).is_err());
    assert!(q.logits(&w[..5]).is_err());
    assert!(quantize(m, &[w]).is_err());
    assert!(quantize(m, &[]).is_err());
}

fn proto() -> ModelProto {
    ModelProto::decode(std::fs::read(dir().join("gpt.onnx")).unwrap().as_slice()).unwrap()
}

/// Writes `m` and reads it back as a GPT: the error's text.
fn refused(m: &ModelProto, name: &str) -> String {
    let tmp = std::env::temp_dir().join(format!("fold-ml-gpt-{}-{name}.onnx", std::process::id()));
    std::fs::write(&tmp, m.encode_to_vec()).unwrap();
    let err = read_gpt(&tmp).unwrap_err();
    std::fs::remove_file(&tmp).ok();
    assert!(matches!(err, Error::Onnx { .. }), "{err}");
    err.to_string()
}

fn set_f32(raw: &mut [u8], i: usize, v: f32) {
    raw[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn a_mask_that_is_not_causal_is_refused() {
    let mut m = proto();
    let g = m.graph.as_mut().unwrap();
    let mask = g.initializer.iter_mut().find(|t| t.dims == [16, 16]).unwrap();
    set_f32(&mut mask.raw_data, 1, 0.0); // row 0 sees key 1
    let e = refused(&m, "mask");
    assert!(e.contains("not causal") && e.contains("blocks.0/Add"), "{e}");
}

#[test]
fn another_gelu_is_refused() {
    let mut m = proto();
    let g = m.graph.as_mut().unwrap();
    let c = g.node.iter_mut().find(|n| n.name == "/blocks/blocks.2/Constant_5").unwrap();
    let t = c.attribute[0].t.as_mut().unwrap();
    set_f32(&mut t.raw_data, 0, 2.0);
    let e = refused(&m, "gelu");
    assert!(e.contains("√2") && e.contains("blocks.2/Div_1"), "{e}");
}

#[test]
fn a_node_outside_the_pattern_is_refused() {
    let mut m = proto();
    let g = m.graph.as_mut().unwrap();
    // a Softmax over the queries instead of the keys
    let sm = g.node.iter_mut().find(|n| n.op_type == "Softmax").unwrap();
    sm.attribute[0].i = 2;
    let e = refused(&m, "softmax");
    assert!(e.contains("last axis") || e.contains("over the keys"), "{e}");
    // a node that computes something nobody reads
    let mut m = proto();
    let g = m.graph.as_mut().unwrap();
    let mut extra = g.node.iter().find(|n| n.op_type == "Erf").unwrap().clone();
    extra.name = "stray".into();
    extra.output = vec!["stray_out".into()];
    g.node.push(extra);
    let e = refused(&m, "stray");
    assert!(e.contains("Erf"), "{e}");
}
