//! A shared pair averaged globally (ResNet's last block: an identity block, then a global
//! average pooling): its second pass carries the per-channel running sums in one packed
//! commitment, and the last tile's means are the block's output. The wrong running sums
//! they must reject (`pair_tile.rs` draws such pairs too: tiles = the untiled block, other
//! rows, repeated, skipped and swapped tiles rejected).

use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerWeights, Links};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::tile::{PairSpec, PairStep, TileState};
use proptest::prelude::*;

mod common;
use common::tiles::{constraints, pair_case, pair_start, pair_tiles as tiles, run};

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
        .prop_flat_map(pair_case)
}

fn start(spec: &PairSpec, input: &[u8]) -> TileState {
    pair_start(spec, input, (5, 4321))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, rng_seed: proptest::test_runner::RngSeed::Fixed(47), ..ProptestConfig::default() })]

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

/// The running sums cost a product, an average (~20 constraints) per channel and three
/// short hashes over the shared tile of the same block unpooled; a pooled block whose
/// passes cannot share one tile is refused.
#[test]
fn running_sums_cost_a_few_constraints_per_channel() {
    let pooled = spec((3, 2), (1, 2), (6, 7), 1);
    let plain = PairSpec { second: LayerSpec { pool: None, ..pooled.second }, ..pooled };
    assert!(pooled.shares() && plain.shares() && pooled.pooled() && !plain.pooled());
    let (a, b) = (constraints(&PairStep::blank(pooled).unwrap()), constraints(&PairStep::blank(plain).unwrap()));
    assert!(a > b && a - b <= 32 * 25 + 3 * 300, "pooled {a}, unpooled {b}");
    let by_rows = PairSpec { input: Links::Rows, ..pooled };
    assert!(!by_rows.shares() && by_rows.check().is_err(), "a pooled pair in two passes");
}
