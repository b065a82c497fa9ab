//! Tiled layers and blocks that end in a global average pooling (the last block of a
//! ResNet): the per-channel sums run through the tiles, the last tile's means are the
//! output. Against the untiled step, and the wrong witnesses they must reject.

use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{BlockSpec, LayerSpec, LayerWeights};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::step::tile_spec;
use fold_ml_circuits::tile::{tiled_height, TileSpec, TileState};
use proptest::prelude::*;

mod common;
use common::tiles::{cases, run, tiles, untiled, Case};

/// A `c×h×w` conv 3×3 (stride 1, or 2 with a projection) followed, in a two-layer block,
/// by a conv 3×3 with its shortcut; the last layer's output averaged globally.
fn pooled_block(c: usize, (h, w): (usize, usize), two: bool, down: bool, zp: u8) -> BlockSpec {
    let rq = RequantSpec::new(4, 22).unwrap();
    let global = |c: ConvShape| Some(Pool::global(PoolKind::Average, c.output_dims()));
    let (co, stride) = if down { (2 * c, 2) } else { (c, 1) };
    let conv1 = ConvShape { stride: [stride; 2], ..ConvShape::same(c, co, h, w, 3) };
    let first = LayerSpec { zero_point: zp, ..LayerSpec::new(LinearShape::Conv(conv1), rq) };
    if !two {
        return BlockSpec::new(vec![LayerSpec { pool: global(conv1), ..first }]).with_row_links([true, true]);
    }
    let (_, oh, ow) = conv1.output_dims();
    let conv2 = ConvShape::same(co, co, oh, ow, 3);
    let projection = down.then_some(ConvShape { stride: [2, 2], ..ConvShape::same(c, co, h, w, 1) });
    let second = LayerSpec {
        skip: if down { 0 } else { 2 },
        projection,
        pool: global(conv2),
        ..LayerSpec::new(LinearShape::Conv(conv2), rq)
    };
    BlockSpec::new(vec![first, second]).with_row_links([true, true])
}

fn case() -> impl Strategy<Value = Case> {
    cases(
        (1usize..3, 2usize..6, 1usize..4, any::<bool>(), any::<bool>(), 0u8..4)
            .prop_map(|(c, h, w, two, down, zp)| pooled_block(c, (2 * h, w), two, two && down, zp)),
    )
}

fn start(spec: &TileSpec, input: &[u8]) -> TileState {
    common::tiles::start(spec, input, (2, 99))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(23), ..ProptestConfig::default() })]

    /// Every tile is satisfied, the circuit's transition is the native one, and after the
    /// last tile the state is the untiled step's: the same pooled output (one row of
    /// channel means), model commitment and layer count.
    #[test]
    fn pooled_tiles_prove_what_the_untiled_step_proves((spec, input, layers) in case()) {
        let whole = untiled(&spec, &input, &layers);
        prop_assert_eq!(whole.output().len(), spec.output_dims()[0]);
        let steps = tiles(spec, &input, &layers);
        let z0 = start(&spec, &input);
        let (sat, end) = run(&steps, z0);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        prop_assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
    }

    /// A tile that claims other running sums than the previous tile committed (one
    /// channel's sum off by one either way) is rejected at that tile; the first tile, which
    /// starts from zero sums, is rejected for any non-zero claim.
    #[test]
    fn a_tile_with_other_running_sums_is_rejected(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        c in any::<prop::sample::Index>(),
        up in any::<bool>(),
    ) {
        let mut steps = tiles(spec, &input, &layers);
        let t = t.index(steps.len());
        let mut sums = steps[t].sums_before().to_vec();
        prop_assert_eq!(sums.len(), spec.output_dims()[0]);
        let c = c.index(sums.len());
        sums[c] = if up || sums[c] == 0 { sums[c] + 1 } else { sums[c] - 1 };
        steps[t] = steps[t].with_sums_before(sums);
        let (sat, _) = run(&steps, start(&spec, &input));
        prop_assert!(!sat[t], "tile {t} with forged sums was satisfied");
    }
}

/// A skipped middle tile and a repeated tile leave sums (and chains) that do not open.
#[test]
fn skipped_or_repeated_pooled_tiles_are_rejected() {
    let spec = tile_spec(&pooled_block(2, (8, 3), true, false, 1), 2).unwrap();
    let block = spec.block();
    let input: Vec<u8> = (0..block.num_inputs()).map(|i| (i * 29 % 128) as u8).collect();
    let layers: Vec<LayerWeights> = block
        .stages
        .iter()
        .map(|s| LayerWeights {
            weights: (0..s.num_weights()).map(|i| (i % 13) as i8 - 6).collect(),
            bias: vec![40; s.shape.num_biases()],
        })
        .collect();
    let steps = tiles(spec, &input, &layers);
    assert_eq!(steps.len(), 4);
    let (sat, _) = run(&steps, start(&spec, &input));
    assert!(sat.iter().all(|&s| s));
    // tile 1 skipped: tile 2 runs at index 1
    let skipped = vec![steps[0].clone(), steps[2].clone(), steps[3].clone()];
    let (sat, _) = run(&skipped, start(&spec, &input));
    assert!(!sat.iter().all(|&s| s), "a skipped tile was accepted");
    // tile 1 repeated
    let repeated = vec![steps[0].clone(), steps[1].clone(), steps[1].clone(), steps[2].clone(), steps[3].clone()];
    let (sat, _) = run(&repeated, start(&spec, &input));
    assert!(!sat.iter().all(|&s| s), "a repeated tile was accepted");
    // global max pooling is not accumulated over tiles: refused when planned
    let mut max = pooled_block(2, (8, 3), true, false, 1);
    max.stages[1].pool.as_mut().unwrap().kind = PoolKind::Max;
    assert!(tile_spec(&max, 2).is_err());
}

/// The tiles cut the rows before the pooling: the tiled height is the convolution's.
#[test]
fn the_tiles_cut_the_rows_before_the_pooling() {
    let block = pooled_block(1, (8, 2), false, false, 0);
    assert_eq!(block.stages[0].output_dims(), [1, 1, 1]);
    assert_eq!(tiled_height(&block), 8);
    let spec = tile_spec(&block, 4).unwrap();
    assert_eq!((spec.geometry().unwrap().tiles, spec.tiled_dims()), (2, [1, 8, 2]));
}
