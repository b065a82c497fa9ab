//! Tiled two-layer blocks (ResNet basic blocks: a residual or a 1×1 stride-2 projection
//! shortcut) against the untiled block step, and the wrong witnesses they must reject.

use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{BlockSpec, LayerSpec, LayerWeights};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::spec::Links;
use fold_ml_circuits::step::tile_spec;
use fold_ml_circuits::tile::{TileSpec, TileState, TileStep, TileWitness};
use proptest::prelude::*;

mod common;
use common::tiles::{cases, run, tiles, untiled, witness, Case};

/// A ResNet basic block on a `c×h×w` input: `conv3x3(stride) → conv3x3 + shortcut`, the
/// shortcut a residual (`skip`) when `down` is false, else a 1×1 stride-2 projection to
/// `2c` channels; the second layer reads its input at zero point `zp2`.
fn basic_block(c: usize, (h, w): (usize, usize), down: bool, skip: u32, (zp, zp2): (u8, u8)) -> BlockSpec {
    let rq = RequantSpec::new(4, 22).unwrap();
    let (co, stride) = if down { (2 * c, 2) } else { (c, 1) };
    let conv1 = ConvShape { stride: [stride; 2], ..ConvShape::same(c, co, h, w, 3) };
    let (_, oh, ow) = conv1.output_dims();
    let conv2 = ConvShape::same(co, co, oh, ow, 3);
    let projection = down.then_some(ConvShape { stride: [2, 2], ..ConvShape::same(c, co, h, w, 1) });
    let second = LayerSpec {
        skip: if down { 0 } else { skip },
        projection,
        zero_point: zp2,
        ..LayerSpec::new(LinearShape::Conv(conv2), rq)
    };
    let first = LayerSpec { zero_point: zp, ..LayerSpec::new(LinearShape::Conv(conv1), rq) };
    BlockSpec::new(vec![first, second]).with_row_links([true, true])
}

/// Small blocks with every tiling of them the circuit accepts.
fn case() -> impl Strategy<Value = Case> {
    cases((1usize..3, 2usize..9, 1usize..4, any::<bool>(), 1u32..9, (0u8..4, 0u8..3), any::<bool>()).prop_map(
        |(c, h, w, down, skip, zps, grouped)| {
            let block = basic_block(c, (2 * h, w), down, skip, zps);
            // the output written in rows of half its channels, or rows
            let co = block.stages[1].shape.num_biases();
            match grouped && co > 1 {
                true => block.with_links([Links::Rows, Links::RowGroups(co / 2)]),
                false => block,
            }
        },
    ))
}

fn start(spec: &TileSpec, input: &[u8]) -> TileState {
    common::tiles::start(spec, input, (4, 4321))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(21), ..ProptestConfig::default() })]

    /// Every tile is satisfied, the circuit's transition is the native one, and after the
    /// last tile the state is the untiled block step's: same output, model commitment and
    /// layer count (two layers).
    #[test]
    fn block_tiles_prove_what_the_untiled_block_proves((spec, input, layers) in case()) {
        let whole = untiled(&spec, &input, &layers);
        let steps = tiles(spec, &input, &layers);
        let z0 = start(&spec, &input);
        let (sat, end) = run(&steps, z0);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        prop_assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
        prop_assert_eq!(end.base.layer, z0.base.layer + 2);
        // the output is committed as its layout says (rows, or rows of groups of channels)
        let blind = fold_ml_circuits::F::from(common::tiles::BLINDS.1);
        let layout = spec.block().output_layout();
        prop_assert_eq!(end.base.activations, activation_commitment_native(whole.output(), layout, blind));
    }

    /// A tile whose second layer's weights differ from the other tiles' (a tile of another
    /// block of the same shape) is rejected: the model commitment it derives differs.
    #[test]
    fn a_tile_with_other_second_layer_weights_is_rejected((spec, input, layers) in case(), t in any::<prop::sample::Index>()) {
        let mut other = layers.clone();
        other[1].bias[0] = other[1].bias[0].wrapping_add(1);
        let mut steps = tiles(spec, &input, &layers);
        let t = t.index(steps.len());
        steps[t] = TileStep::new(spec, t, &input, witness(&other)).unwrap();
        let (sat, end) = run(&steps, start(&spec, &input));
        let whole = untiled(&spec, &input, &layers);
        prop_assert!(!sat.iter().all(|&s| s) || end != TileState::boundary(whole.next_state(&start(&spec, &input).base)));
        if t > 0 {
            prop_assert!(!sat[t], "tile {t} with other weights was satisfied");
        }
    }
}

/// Deterministic weights for a block's layers.
fn weights_for(block: &BlockSpec) -> Vec<LayerWeights> {
    block
        .stages
        .iter()
        .enumerate()
        .map(|(l, s)| LayerWeights {
            weights: (0..s.num_weights()).map(|i| ((i * 7 + l * 3) % 23) as i8 - 11).collect(),
            bias: (0..s.shape.num_biases()).map(|i| (i as i32 * 37 + 11 * l as i32) % 200 - 100).collect(),
        })
        .collect()
}

/// Every tile of `spec` on `input` (deterministic weights) satisfied, ending on the
/// untiled block step's state; the weights and the start state.
fn proves_the_untiled_block(spec: TileSpec, input: &[u8]) -> (Vec<LayerWeights>, TileState) {
    let layers = weights_for(&spec.block());
    let z0 = start(&spec, input);
    let (sat, end) = run(&tiles(spec, input, &layers), z0);
    assert!(sat.iter().all(|&s| s), "{sat:?}");
    assert_eq!(end, TileState::boundary(untiled(&spec, input, &layers).next_state(&z0.base)));
    (layers, z0)
}

/// A residual block on 2×8×3, tiled 2 rows per tile, and a projection block on 2×16×3
/// (stride 2, 8 output rows), tiled 2 rows: their geometry, and both proven tile by tile
/// to the untiled block step's state.
#[test]
fn residual_and_projection_blocks_tile() {
    let residual = tile_spec(&basic_block(2, (8, 3), false, 3, (1, 0)), 2).unwrap();
    let g = residual.geometry().unwrap();
    // output rows r of a tile read conv1 rows r-1..r+2, which read input rows r-2..r+3
    assert_eq!((g.tiles, g.band, g.mid_band, g.shortcut_row, g.shortcut_len), (4, 6, 4, 2, 2));
    let projection = tile_spec(&basic_block(2, (16, 3), true, 0, (0, 0)), 2).unwrap();
    let g = projection.geometry().unwrap();
    // the projection reads input rows 2r (r = 0, 1): 3 rows from the first output row's
    assert_eq!((g.tiles, g.advance, g.shortcut_len), (4, 4, 3));
    for spec in [residual, projection] {
        let input: Vec<u8> = (0..spec.block().num_inputs()).map(|i| (i * 13 % 128) as u8).collect();
        proves_the_untiled_block(spec, &input);
    }
    // a residual needs a total stride of 1; three-layer blocks are not tiled
    let mut strided = basic_block(2, (8, 3), false, 3, (1, 0));
    let LinearShape::Conv(c) = &mut strided.stages[0].shape else { unreachable!() };
    c.stride = [2, 2];
    assert!(tile_spec(&strided, 2).is_err());
    let b = basic_block(2, (8, 3), false, 3, (1, 0));
    let three = BlockSpec::new(vec![b.stages[0], b.stages[0], b.stages[0]]).with_row_links([true, true]);
    assert!(tile_spec(&three, 2).is_err());
}

/// The second layer's padding rows are its zero point, not the first layer's output: a
/// tile whose first-layer rows outside the image held anything else would compute other
/// outputs; here the circuit's masking is checked against the untiled step at a non-zero
/// zero point, tile by tile, on a fixture where the first layer's padding rows are not 0.
#[test]
fn the_second_layers_padding_is_its_zero_point() {
    let spec = tile_spec(&basic_block(1, (6, 2), false, 2, (3, 5)), 2).unwrap();
    let input: Vec<u8> = (0..12).map(|i| 40 + 5 * i as u8).collect();
    let layers = vec![
        LayerWeights { weights: vec![3, -2, 1, 4, 2, -1, 1, 1, 2], bias: vec![200] },
        LayerWeights { weights: vec![1, 2, -1, 3, 1, 2, -2, 1, 1], bias: vec![-50] },
    ];
    let steps = tiles(spec, &input, &layers);
    let (sat, end) = run(&steps, start(&spec, &input));
    assert!(sat.iter().all(|&s| s), "{sat:?}");
    let whole = untiled(&spec, &input, &layers);
    assert_eq!(end, TileState::boundary(whole.next_state(&start(&spec, &input).base)));
    // the same layers with the padding read as zeros (a wrong zero point) give another output
    let mut zero_pad = spec;
    zero_pad.second.as_mut().unwrap().zero_point = 0;
    let other = untiled(&zero_pad, &input, &layers);
    assert_ne!(other.output(), whole.output(), "the fixture must be sensitive to the padding value");
}

/// The tile's weights must be the block's: a one-layer witness for a two-layer tile is an
/// error, not a tile that skips its second layer.
#[test]
fn a_two_layer_tile_needs_both_layers() {
    let spec = tile_spec(&basic_block(1, (6, 2), false, 2, (0, 0)), 2).unwrap();
    let input = vec![1u8; 12];
    let w = LayerWeights { weights: vec![1; 9], bias: vec![0] };
    let one = TileWitness { second_weights: None, ..witness(&[w.clone(), w]) };
    assert!(TileStep::new(spec, 0, &input, one).is_err());
}

/// One output row per tile of a residual block: its first convolution computes three rows
/// around it from five input rows, so the padding above and below the image reaches the
/// second band and the one before the last. Proven tile by tile to the untiled block's
/// state; a padding cell of those bands filled is rejected at its tile.
#[test]
fn one_row_block_tiles_reach_padding_in_inner_bands() {
    let spec = tile_spec(&basic_block(2, (8, 3), false, 3, (1, 0)), 1).unwrap();
    let g = spec.geometry().unwrap();
    assert_eq!((g.tiles, g.band, g.halo, g.mid_band), (8, 5, 4, 3));
    assert_eq!(g.pad_inner.iter().map(|p| p.band).collect::<Vec<_>>(), vec![1, 6]);
    let input: Vec<u8> = (0..spec.block().num_inputs()).map(|i| (i * 29 % 128) as u8).collect();
    let (layers, z0) = proves_the_untiled_block(spec, &input);
    let row_len = 2 * 3;
    for pad in &g.pad_inner {
        let row = pad.rows.iter().position(|&p| p).unwrap();
        assert!(g.input_row(pad.band, row).is_none());
        let mut steps = tiles(spec, &input, &layers);
        let mut rows = TileStep::new(spec, pad.band, &input, witness(&layers)).unwrap().rows().to_vec();
        rows[row * row_len + 1] ^= 3;
        steps[pad.band] = TileStep::from_rows(spec, pad.band, rows, witness(&layers)).unwrap();
        let (sat, _) = run(&steps, z0);
        assert!(sat[..pad.band].iter().all(|&s| s) && !sat[pad.band], "band {}: {sat:?}", pad.band);
    }
}
