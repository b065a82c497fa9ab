//! Multi-layer blocks (ResNet basic blocks, with identity and projection shortcuts) in one
//! step, against the native reference, and the wrong witnesses they must reject: a
//! shortcut that reads the wrong tensor, a tampered intermediate activation, and a model
//! commitment that forgets where a layer sits in its block.

use ff::Field;
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::linear_hints, linear::LinearShape};
use fold_ml_circuits::layer::{block_native, layer_native, BlockSpec, LayerSpec, LayerStep, LayerWeights};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::reference::{model_commitment, NativeRun};
use fold_ml_circuits::F;
use proptest::prelude::*;

mod common;

const SALT: u64 = 77;

/// A ResNet basic block on a `c×s×s` input: `conv3x3(stride) → conv3x3 + shortcut`, the
/// shortcut an identity (`skip`) when `down` is false, else a 1×1 stride-2 projection
/// to `2c` channels.
fn basic_block(c: usize, s: usize, down: bool, skip: u32, shift: u32) -> BlockSpec {
    let rq = RequantSpec::new(shift, 24).unwrap();
    let (co, stride) = if down { (2 * c, 2) } else { (c, 1) };
    let conv1 = ConvShape { stride: [stride; 2], ..ConvShape::same(c, co, s, s, 3) };
    let (_, oh, ow) = conv1.output_dims();
    let conv2 = ConvShape::same(co, co, oh, ow, 3);
    let projection = down.then_some(ConvShape { stride: [2, 2], ..ConvShape::same(c, co, s, s, 1) });
    let stage1 =
        LayerSpec { skip: if down { 0 } else { skip }, projection, ..LayerSpec::new(LinearShape::Conv(conv2), rq) };
    BlockSpec::new(vec![LayerSpec::new(LinearShape::Conv(conv1), rq), stage1])
}

fn blocks() -> impl Strategy<Value = BlockSpec> {
    (1usize..3, 2usize..6, any::<bool>(), 1u32..9, 3u32..7).prop_map(|(c, s, d, k, sh)| basic_block(c, s, d, k, sh))
}

fn case() -> impl Strategy<Value = common::BlockCase> {
    common::block_cases(blocks())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(21), ..ProptestConfig::default() })]

    #[test]
    fn a_block_step_matches_the_native_block((block, input, layers) in case()) {
        let step = LayerStep::multi(block.clone(), 2, common::block_witness(&input, &layers, SALT)).unwrap();
        let z = common::state_before(&block, &input, 4);
        let next = step.next_state(&z);
        prop_assert!(common::synth(&step, &z, Some(&next)).0);
        prop_assert_eq!(next.layer, z.layer + 2);
        let native = block_native(&block, &input, &layers).unwrap();
        prop_assert_eq!(step.output(), &native[..]);
        // the layer-by-layer reference executor agrees, commitments included
        let mut run = NativeRun::start(block.clone(), input.clone(), F::from(3), F::from(SALT)).unwrap();
        run.apply(&layers[0], F::from(1)).unwrap();
        run.apply(&layers[1], F::from(5)).unwrap();
        prop_assert_eq!(run.activations(), &native[..]);
        prop_assert_eq!(run.state().activations, next.activations);
        prop_assert_eq!(run.state().model, model_commitment(F::from(SALT), block.updates().into_iter().zip(&layers)));
    }

    #[test]
    fn a_shortcut_that_reads_the_wrong_tensor_is_rejected((block, input, layers) in case()) {
        // The second layer's shortcut fed its own input (the first layer's output) instead
        // of the block input: possible to claim when the sizes agree (identity shortcuts).
        let mid = layer_native(&block, 0, (&input, &input), &layers[0]).unwrap();
        prop_assume!(mid.len() == input.len() && block.stages[1].skip != 0);
        let honest = block_native(&block, &input, &layers).unwrap();
        let wrong = layer_native(&block, 1, (&mid, &mid), &layers[1]).unwrap();
        prop_assume!(wrong != honest);
        let hints = vec![
            linear_hints(&block.linear(0), &input, &input, &layers[0].weights, &layers[0].bias).unwrap(),
            linear_hints(&block.linear(1), &mid, &mid, &layers[1].weights, &layers[1].bias).unwrap(),
        ];
        let z = common::state_before(&block, &input, 4);
        let step = LayerStep::block_unchecked(block, common::block_witness(&input, &layers, SALT), hints);
        prop_assert!(!common::synth(&step, &z, Some(&step.next_state(&z))).0);
    }

    #[test]
    fn a_tampered_intermediate_activation_is_rejected((block, input, layers) in case(), pick in any::<prop::sample::Index>()) {
        let mut first = linear_hints(&block.linear(0), &input, &input, &layers[0].weights, &layers[0].bias).unwrap();
        let o = pick.index(first.outputs.len());
        first.outputs[o].y += F::ONE;
        let mid = first.ys();
        prop_assume!(mid.iter().all(|&v| v < 128));
        let second = linear_hints(&block.linear(1), &mid, &input, &layers[1].weights, &layers[1].bias).unwrap();
        let z = common::state_before(&block, &input, 4);
        let step = LayerStep::block_unchecked(block, common::block_witness(&input, &layers, SALT), vec![first, second]);
        prop_assert!(!common::synth(&step, &z, Some(&step.next_state(&z))).0);
    }
}

#[test]
fn the_commitment_binds_each_layers_place_in_its_block() {
    // The same two layers as one block and as two one-layer blocks compute different
    // functions (the shortcut reads another tensor): their commitments differ.
    let block = basic_block(2, 4, false, 4, 5);
    let w = |n: usize, b: usize| LayerWeights { weights: vec![1; n], bias: vec![0; b] };
    let layers: Vec<_> = block.stages.iter().map(|s| w(s.num_weights(), s.shape.num_biases())).collect();
    let as_block = model_commitment(F::from(SALT), block.updates().into_iter().zip(&layers));
    let apart: Vec<_> = block.stages.iter().map(|s| s.update_at(0, 1)).collect();
    let as_layers = model_commitment(F::from(SALT), apart.into_iter().zip(&layers));
    assert_ne!(as_block, as_layers);
    // and the projection's geometry is part of the digest
    let down = basic_block(2, 4, true, 0, 5);
    let mut moved = down.clone();
    let p = moved.stages[1].projection.as_mut().unwrap();
    (p.kernel, p.pads) = ([3, 3], [1; 4]);
    assert!(moved.check().is_ok());
    assert_ne!(down.digests()[1], moved.digests()[1]);
}

#[test]
fn blocks_that_do_not_fit_are_refused() {
    let mut block = basic_block(2, 4, true, 0, 5);
    block.stages[1].projection = None;
    block.stages[1].skip = 3;
    let e = block.check().unwrap_err().to_string();
    assert!(e.contains("block layer 1") && e.contains("residual"), "{e}");
    let mut block = basic_block(2, 4, true, 0, 5);
    block.stages[1].projection.as_mut().unwrap().stride = [1, 1];
    assert!(block.check().is_err(), "a projection to the wrong size");
    let too_many = BlockSpec::new(vec![basic_block(1, 3, false, 1, 4).stages[0]; 9]);
    assert!(too_many.check().is_err());
    let w = |s: &LayerSpec| LayerWeights { weights: vec![0; s.num_weights()], bias: vec![0; s.shape.num_biases()] };
    let ok = basic_block(1, 3, false, 1, 4);
    let one: Vec<_> = ok.stages[..1].iter().map(w).collect();
    assert!(LayerStep::multi(ok, 2, common::block_witness(&[0; 9], &one, SALT)).is_err(), "half a block in a step");
}
