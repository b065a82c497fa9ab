//! A shared pair averaged globally (ResNet's last block: an identity block, then a global
//! average pooling): its second pass carries the per-channel running sums in one packed
//! commitment, and the last tile's means are the block's output. Against the untiled block,
//! and the wrong witnesses they must reject.

use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerWeights, Links};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::tile::{PairSpec, PairStep, TileState};
use fold_ml_circuits::F;
use proptest::prelude::*;

mod common;
use common::tiles::{constraints, run, untiled_block, witness, BLINDS};

/// An identity block of two 3×3 convolutions of 32 channels (chunks of 8) over `h×w`,
/// averaged globally, its input committed in rows of groups of `8·per` channels.
fn spec((h, w): (usize, usize), zps: (u8, u8), shifts: (u32, u32), per: usize) -> PairSpec {
    let rq = |shift| RequantSpec::new(shift, 24).unwrap();
    let conv = ConvShape::same(32, 32, h, w, 3);
    let first = LayerSpec { zero_point: zps.0, ..LayerSpec::new(LinearShape::Conv(conv), rq(shifts.0)) };
    let pool = Some(Pool::global(PoolKind::Average, conv.output_dims()));
    let second =
        LayerSpec { skip: 3, pool, zero_point: zps.1, ..LayerSpec::new(LinearShape::Conv(conv), rq(shifts.1)) };
    PairSpec { first, second, channels: 8 * per, input: Links::RowGroups(8 * per) }
}

type Case = (PairSpec, Vec<u8>, Vec<LayerWeights>);

fn case() -> impl Strategy<Value = Case> {
    ((2usize..4, 1usize..4), (0u8..3, 0u8..3), (5u32..8, 5u32..8), 1usize..3)
        .prop_map(|(hw, zps, shifts, per)| spec(hw, zps, shifts, per))
        .prop_flat_map(|spec| {
            let block = spec.block();
            let layers = common::block_weights(&block);
            (Just(spec), proptest::collection::vec(0u8..=127, block.num_inputs()), layers)
        })
}

fn start(spec: &PairSpec, input: &[u8]) -> TileState {
    let layout = spec.block().input_layout();
    TileState::boundary(StepState {
        layer: 5,
        model: F::from(4321),
        activations: activation_commitment_native(input, layout, F::from(BLINDS.0)),
    })
}

fn tiles(spec: PairSpec, input: &[u8], layers: &[LayerWeights]) -> Vec<PairStep> {
    let w = witness(layers);
    (0..spec.tiles()).map(|t| PairStep::new(spec, t, input, &w).unwrap()).collect()
}

impl common::tiles::Tile for PairStep {
    fn next(&self, z: &TileState) -> TileState {
        self.next_state(z)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, rng_seed: proptest::test_runner::RngSeed::Fixed(47), ..ProptestConfig::default() })]

    /// One tile serves both passes; every tile is satisfied, the circuit's transition is
    /// the native one (checked by `run`), the tiles have the blank tile's shape, and after
    /// the last tile the state is the untiled block's: the same pooled output (one row of
    /// channel means), model commitment and layer count.
    #[test]
    fn pooled_pair_tiles_prove_what_the_untiled_block_proves((spec, input, layers) in case()) {
        prop_assert!(spec.shares() && spec.check().is_ok());
        let whole = untiled_block(spec.block(), &input, &layers);
        prop_assert_eq!(whole.output().len(), 32);
        let steps = tiles(spec, &input, &layers);
        let z0 = start(&spec, &input);
        let (sat, end) = run(&steps, z0);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        prop_assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
        let blank = constraints(&PairStep::blank(spec).unwrap());
        for s in [&steps[0], &steps[spec.pass_tiles()], &steps[steps.len() - 1]] {
            prop_assert_eq!(constraints(s), blank);
        }
    }

    /// A second-pass tile that claims other running sums than the previous tile committed
    /// (one channel's off by one either way; in the pass's first tile, anything but zeros)
    /// is rejected at that tile; the first pass ignores its sums.
    #[test]
    fn a_tile_with_other_running_sums_is_rejected(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        c in any::<prop::sample::Index>(),
        up in any::<bool>(),
    ) {
        let mut steps = tiles(spec, &input, &layers);
        let n = spec.pass_tiles();
        let t = n + t.index(n);
        let mut sums = steps[t].sums_before();
        prop_assert_eq!(sums.len(), 32);
        let c = c.index(sums.len());
        sums[c] = if up || sums[c] == 0 { sums[c] + 1 } else { sums[c] - 1 };
        steps[t] = steps[t].with_sums_before(sums).unwrap();
        let (sat, _) = run(&steps, start(&spec, &input));
        prop_assert!(sat[..t].iter().all(|&s| s) && !sat[t], "tile {t} with forged sums: {sat:?}");
    }

    /// A tile that computes on other rows, and a repeated or skipped tile, do not end the
    /// block on the honest state.
    #[test]
    fn other_rows_and_repeated_or_skipped_tiles_are_not_the_block(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        i in any::<prop::sample::Index>(),
        how in 0u8..3,
    ) {
        let honest = tiles(spec, &input, &layers);
        let t = t.index(honest.len());
        let mut steps = honest.clone();
        match how {
            0 => {
                let mut rows = steps[t].pass_rows();
                let i = i.index(rows.len());
                rows[i] = (rows[i] + 1) % 128;
                steps[t] = steps[t].with_rows(rows).unwrap();
            }
            1 => steps.insert(t, honest[t].clone()),
            _ => drop(steps.remove(t)),
        }
        let (sat, end) = run(&steps, start(&spec, &input));
        let (_, expected) = run(&honest, start(&spec, &input));
        prop_assert!(!sat.iter().all(|&s| s) || end != expected, "{how} at {t}: {sat:?}");
    }
}

/// The running sums are packed several per field element: a forger who moves a unit
/// between two packed neighbours (the packed value unchanged: one sum up by `2^bits`, the
/// next down by one) opens the commitment but leaves a sum past what its mean can bound,
/// and is rejected; so is a claim of zeros mid-pass.
#[test]
fn sums_that_pack_to_the_same_value_are_rejected() {
    let spec = spec((3, 2), (1, 2), (6, 7), 1);
    let block = spec.block();
    let layers: Vec<LayerWeights> = block
        .stages
        .iter()
        .map(|s| LayerWeights {
            weights: (0..s.num_weights()).map(|i| ((i * 7) % 41) as i8 - 20).collect(),
            bias: (0..s.shape.num_biases()).map(|i| i as i32 * 3 + 200).collect(),
        })
        .collect();
    let input: Vec<u8> = (0..block.num_inputs()).map(|i| ((i * 13) % 128) as u8).collect();
    let honest = tiles(spec, &input, &layers);
    let (sat, _) = run(&honest, start(&spec, &input));
    assert!(sat.iter().all(|&s| s));
    let n = spec.pass_tiles();
    let t = 2 * n - 1;
    let sums = honest[t].sums_before();
    assert!(sums[1] > 0, "{sums:?}");
    // 2^bits with 128·6 + 127·2 = 1022 < 2^10
    let mut carried = sums.clone();
    carried[0] += 1 << 10;
    carried[1] -= 1;
    let mut zeros = honest.clone();
    zeros[t] = honest[t].with_sums_before(vec![0; 32]).unwrap();
    let mut moved = honest.clone();
    moved[t] = honest[t].with_sums_before(carried).unwrap();
    for (what, steps) in [("moved", moved), ("zeros", zeros)] {
        let (sat, _) = run(&steps, start(&spec, &input));
        assert!(sat[..t].iter().all(|&s| s) && !sat[t], "{what}: {sat:?}");
    }
}
