//! Fusing consecutive one-block segments at import (`fold_ml::model::fuse`): on the digits
//! models of `examples/digits/`, what is fused, that the fused network computes exactly
//! what the imported one does, and what is never fused.

use fold_ml::model::fuse::fuse;
use fold_ml::model::network::{Network, Segment};
use fold_ml::model::{model_commitment, onnx, Architecture};
use fold_ml::prove::plan::{step_constraints, DEFAULT_FOLD_BUDGET, NOVA_PRIMARY_OVERHEAD};
use fold_ml::F;
use std::path::{Path, PathBuf};

fn digits(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/digits").join(file)
}

fn import(model: &str) -> Network {
    let calibration = onnx::read_inputs(&digits("calib.json")).unwrap();
    onnx::import(&digits(model), &calibration, Some(F::from(7u64))).unwrap().0
}

fn whole_step(segment: &Segment) -> usize {
    step_constraints(&Architecture::new(segment.spec.clone(), segment.spec.num_stages()))
}

#[test]
fn the_digits_cnn_fuses_into_one_block_that_computes_the_same() {
    let net = import("cnn.onnx");
    assert_eq!(net.segments.len(), 3);
    let (fused, index) = fuse(&net, DEFAULT_FOLD_BUDGET);
    assert_eq!(index, [0, 0, 0]);
    let [segment] = fused.segments.as_slice() else { panic!("{} segments", fused.segments.len()) };
    assert_eq!((segment.spec.num_stages(), segment.layers.len()), (3, 3));
    assert_eq!(segment.origin, net.segments.iter().flat_map(|s| s.origin.clone()).collect::<Vec<_>>());
    fused.check().unwrap();
    // one step within the budget, smaller than the three apart (no commitments between)
    let apart: usize = net.segments.iter().map(|s| whole_step(s) - NOVA_PRIMARY_OVERHEAD).sum();
    let one = whole_step(segment) - NOVA_PRIMARY_OVERHEAD;
    assert!(one < apart && one <= DEFAULT_FOLD_BUDGET, "{one} vs {apart}");
    // every held-out digit: the same output activations
    for x in onnx::read_inputs(&digits("test.json")).unwrap() {
        let q = net.quantize_input(&x).unwrap();
        assert_eq!(fused.run_native(&q).unwrap(), net.run_native(&q).unwrap());
    }
    // the commitment binds each layer's place in its block: fusing makes another model
    assert_ne!(model_commitment(&fused), model_commitment(&net));
}

#[test]
fn nothing_is_fused_over_the_fold_budget() {
    let net = import("cnn.onnx");
    let largest = net.segments.iter().map(|s| whole_step(s) - NOVA_PRIMARY_OVERHEAD).max().unwrap();
    let (same, index) = fuse(&net, largest);
    assert_eq!(same, net, "no two layers fit in a step of the largest one alone");
    assert_eq!(index, [0, 1, 2]);
    for budget in [largest + 1, 40_000, DEFAULT_FOLD_BUDGET] {
        let (fused, _) = fuse(&net, budget);
        for s in &fused.segments {
            assert!(s.layers.len() == 1 || whole_step(s) - NOVA_PRIMARY_OVERHEAD <= budget, "{budget}");
        }
    }
}

#[test]
fn a_shortcut_is_never_fused_behind_another_segment() {
    // The digits ResNet: stem, 63 identical blocks `Relu(x + conv(x))`, the last block
    // (with its pooling), the dense head. A block's shortcut reads its block's input, so a
    // residual block cannot be appended to the stem; a run of 63 blocks is no one block.
    let net = import("resnet64.onnx");
    let stacked = &net.segments[1];
    assert!(stacked.layers.len() > 1 && stacked.spec.stages[0].skip != 0);
    let (fused, _) = fuse(&net, usize::MAX / 2);
    assert_eq!(fused.segments[0], net.segments[0], "the stem stays alone");
    assert_eq!(fused.segments[1], net.segments[1], "the stack of blocks stays whole");
    let one_block =
        Segment { layers: stacked.layers[..1].to_vec(), origin: stacked.origin[..1].to_vec(), ..stacked.clone() };
    let pair = Network { segments: vec![net.segments[0].clone(), one_block], ..net.clone() };
    pair.check().unwrap();
    let (kept, index) = fuse(&pair, usize::MAX / 2);
    assert_eq!((kept, index), (pair, vec![0, 1]));
}
