//! Fused blocks: consecutive plain layers (no shortcut) in one block, as `import` writes a
//! small CNN (conv + pool → conv → dense) so that it is proven in one step. The fused step
//! must compute exactly what the layers compute one block each, and reject a tampered
//! activation between them (that tensor is no longer committed: only the block's
//! constraints hold it).

use ff::Field;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, dense::DenseShape, linear::linear_hints, linear::LinearShape};
use fold_ml_circuits::layer::{block_native, BlockSpec, LayerSpec, LayerStep};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::F;
use proptest::prelude::*;

mod common;

/// `conv3x3 c→2c + pool 2×2 → conv1x1 2c→c → dense`, on a `c×s×s` input (`s` even).
fn chain(c: usize, s: usize, kind: PoolKind, shifts: [u32; 3]) -> BlockSpec {
    let rq = |k: u32| RequantSpec::new(k, 24).unwrap();
    let pool = Pool { kind, kernel: [2, 2], stride: [2, 2], pads: [0; 4] };
    let conv1 = ConvShape::same(c, 2 * c, s, s, 3);
    let first = LayerSpec { pool: Some(pool), ..LayerSpec::new(LinearShape::Conv(conv1), rq(shifts[0])) };
    let h = s / 2;
    let conv2 = ConvShape::same(2 * c, c, h, h, 1);
    let dense = DenseShape { inputs: c * h * h, outputs: 3 };
    BlockSpec::new(vec![
        first,
        LayerSpec::new(LinearShape::Conv(conv2), rq(shifts[1])),
        LayerSpec::new(LinearShape::Dense(dense), rq(shifts[2])),
    ])
}

fn case() -> impl Strategy<Value = common::BlockCase> {
    let kind = prop_oneof![Just(PoolKind::Max), Just(PoolKind::Average)];
    let blocks = (1usize..3, 1usize..3, kind, [3u32..7, 3u32..7, 3u32..7]);
    common::block_cases(blocks.prop_map(|(c, h, kind, shifts)| chain(c, 2 * h, kind, shifts)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]

    #[test]
    fn a_fused_step_computes_what_its_layers_compute_apart((block, input, layers) in case()) {
        let apart = block.stages.iter().zip(&layers).try_fold(input.clone(), |x, (s, w)| {
            block_native(&BlockSpec::layer(*s), &x, std::slice::from_ref(w))
        });
        let fused = block_native(&block, &input, &layers);
        prop_assert_eq!(&fused, &apart);
        let step = LayerStep::multi(block.clone(), 3, common::block_witness(&input, &layers, 77)).unwrap();
        let z = common::state_before(&block, &input, 2);
        let next = step.next_state(&z);
        prop_assert_eq!(step.output(), &fused.unwrap()[..]);
        prop_assert_eq!(next.layer, z.layer + 3);
        prop_assert!(common::synth(&step, &z, Some(&next)).0);
    }

    #[test]
    fn a_tampered_tensor_between_fused_layers_is_rejected(
        (block, input, layers) in case(),
        pick in any::<prop::sample::Index>(),
        up in any::<bool>(),
    ) {
        // The second layer's output (between the fused conv and dense) moved by one: the
        // dense layer is then computed honestly from the forged tensor.
        let hint = |i: usize, x: &[u8]| linear_hints(&block.linear(i), x, &input, &layers[i].weights, &layers[i].bias).unwrap();
        let first = hint(0, &input);
        let mid = block_native(&BlockSpec::layer(block.stages[0]), &input, &layers[..1]).unwrap();
        let mut second = hint(1, &mid);
        let o = pick.index(second.outputs.len());
        second.outputs[o].y += if up { F::ONE } else { -F::ONE };
        let forged = second.ys();
        prop_assume!(forged.iter().all(|&v| v < 128));
        let third = hint(2, &forged);
        let z = common::state_before(&block, &input, 2);
        let step = LayerStep::block_unchecked(block, common::block_witness(&input, &layers, 77), vec![first, second, third]);
        prop_assert!(!common::synth(&step, &z, Some(&step.next_state(&z))).0);
    }
}
