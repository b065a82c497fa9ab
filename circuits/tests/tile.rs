//! Tiled layers against the untiled step and the native reference, and the wrong witnesses
//! they must reject: a halo row from the wrong place, a skipped, repeated or foreign tile,
//! filled padding, a tampered input row and a wrong blind.

use ff::Field;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerStep, LayerWeights};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::spec::Links;
use fold_ml_circuits::tile::{TileSpec, TileState, TileStep, TileWitness};
use fold_ml_circuits::F;
use proptest::prelude::*;

mod common;
use common::tiles::run;

/// One layer's tile witness.
fn witness(w: &LayerWeights) -> TileWitness {
    common::tiles::witness(std::slice::from_ref(w))
}

/// Every tile of one layer, in order.
fn tiles(spec: TileSpec, input: &[u8], w: &LayerWeights) -> Vec<TileStep> {
    common::tiles::tiles(spec, input, std::slice::from_ref(w))
}

/// The same layer untiled, its tensors committed one row per link.
fn untiled(spec: &TileSpec, input: &[u8], w: &LayerWeights) -> LayerStep {
    common::tiles::untiled(spec, input, std::slice::from_ref(w))
}

fn start(spec: &TileSpec, input: &[u8]) -> TileState {
    common::tiles::start(spec, input, (3, 1234))
}

/// Convolutions of every small geometry, with a tiling that fits.
fn tiled_convs() -> impl Strategy<Value = TileSpec> {
    let conv = (1usize..3, 1usize..5, 3usize..11, 1usize..5, 1usize..4, 1usize..3, [0usize..3, 0..2, 0..3, 0..2])
        .prop_map(|(ci, co, h, w, k, s, pads)| ConvShape {
            channels_in: ci,
            channels_out: co,
            height: h,
            width: w,
            kernel: [k, k.min(w + pads[1] + pads[3])],
            stride: [s, 1],
            pads: pads.map(|p| p.min(k - 1)),
            groups: 1,
        })
        .prop_filter("a valid geometry", |c| c.check().is_ok());
    let pool = proptest::option::weighted(
        0.4,
        (any::<bool>(), 1usize..4, 1usize..3, [0usize..2, 0..2, 0..2, 0..2]).prop_map(|(max, k, s, pads)| Pool {
            kind: if max { PoolKind::Max } else { PoolKind::Average },
            kernel: [k, k],
            stride: [s, s],
            pads: pads.map(|p| p.min(k - 1)),
        }),
    );
    let shape = (conv, 1usize..6, 0u8..4, 2u32..6, pool);
    (shape, any::<bool>()).prop_filter_map("a tiling that fits", |((c, r, zp, shift, pool), grouped)| {
        let mut layer = LayerSpec::new(LinearShape::Conv(c), RequantSpec::new(shift, 20).unwrap());
        layer.zero_point = zp;
        layer.pool = pool.filter(|p| p.check(c.output_dims()).is_ok());
        // the output written in rows of groups of channels (the largest proper divisor), or rows
        let g = (1..c.channels_out).rev().find(|g| c.channels_out.is_multiple_of(*g));
        let output = g.filter(|_| grouped).map_or(Links::Rows, Links::RowGroups);
        let spec = TileSpec { output, ..TileSpec::new(layer, None, r) };
        spec.geometry().is_ok().then_some(spec)
    })
}

fn case() -> impl Strategy<Value = (TileSpec, Vec<u8>, LayerWeights)> {
    tiled_convs().prop_flat_map(|spec| {
        let n = spec.layer.num_inputs();
        (
            Just(spec),
            proptest::collection::vec(0u8..=127, n),
            proptest::collection::vec(any::<i8>(), spec.layer.num_weights()),
            proptest::collection::vec(-3000i32..3000, spec.layer.shape.num_biases()),
        )
            .prop_map(|(spec, input, weights, bias)| (spec, input, LayerWeights { weights, bias }))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, rng_seed: proptest::test_runner::RngSeed::Fixed(14), ..ProptestConfig::default() })]

    /// Over the tiles in order, every input row is absorbed exactly once and in order, and
    /// every row a tile reads is the input row it stands for, or padding.
    #[test]
    fn tiles_absorb_every_input_row_once_and_read_the_right_rows(spec in tiled_convs()) {
        let g = &spec.geometry().unwrap();
        let c = spec.conv().unwrap();
        let absorbed: Vec<usize> = (0..g.tiles)
            .flat_map(|t| (0..g.rows()).filter(move |&i| g.absorbs(t, i)).map(move |i| g.input_row(t, i).unwrap()))
            .collect();
        prop_assert_eq!(absorbed, (0..c.height).collect::<Vec<_>>());
        for t in 0..g.tiles {
            for j in 0..g.band {
                // band row j of tile t is padded input row t·advance + j - top
                let v = (t * g.advance + j) as i64 - g.top as i64;
                let want = (0..c.height as i64).contains(&v).then_some(v as usize);
                prop_assert_eq!(g.input_row(t, g.gap + j), want);
            }
            if t > 0 {
                for i in 0..g.halo {
                    prop_assert_eq!(g.input_row(t, i), g.input_row(t - 1, g.advance + i));
                }
            }
        }
    }

    /// Every tile is satisfied, the circuit's transition is the native one, and after the
    /// last tile the state is the untiled step's: same output, same commitments.
    #[test]
    fn tiles_prove_what_the_untiled_layer_proves((spec, input, w) in case()) {
        let whole = untiled(&spec, &input, &w);
        let steps = tiles(spec, &input, &w);
        let z0 = start(&spec, &input);
        let (sat, end) = run(&steps, z0);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        prop_assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
        // the output is committed as its layout says (rows, or rows of groups of channels)
        let blind = F::from(common::tiles::BLINDS.1);
        let layout = spec.block().output_layout();
        prop_assert_eq!(end.base.activations, activation_commitment_native(whole.output(), layout, blind));
        let [co, oh, ow] = spec.layer.output_dims();
        let mut out = vec![0u8; co * oh * ow];
        for s in &steps {
            for (k, &v) in s.output().iter().enumerate() {
                let (c, rest) = (k / (spec.rows * ow), k % (spec.rows * ow));
                out[(c * oh + s.tile() * spec.rows) * ow + rest] = v;
            }
        }
        prop_assert_eq!(out, whole.output().to_vec());
    }
}

/// A 2-channel 8×5 input, 3×3 stride-1 padded convolution, 2 output rows per tile: four
/// tiles, halos of two rows.
fn fixture() -> (TileSpec, Vec<u8>, LayerWeights) {
    let c = ConvShape::same(2, 2, 8, 5, 3);
    let layer = LayerSpec::new(LinearShape::Conv(c), RequantSpec::new(6, 20).unwrap());
    let input: Vec<u8> = (0..c.num_inputs()).map(|i| (i * 37 % 128) as u8).collect();
    let weights = (0..c.num_weights()).map(|i| (i as i64 * 29 % 200 - 100) as i8).collect();
    (TileSpec::new(layer, None, 2), input, LayerWeights { weights, bias: vec![100, -50] })
}

/// The honest rows of a tile, as a forger would start from them.
fn rows_of(spec: &TileSpec, tile: usize, input: &[u8], w: &LayerWeights) -> Vec<u8> {
    TileStep::new(*spec, tile, input, witness(w)).unwrap().rows().to_vec()
}

fn forged(spec: TileSpec, tile: usize, rows: Vec<u8>, w: &LayerWeights) -> TileStep {
    TileStep::from_rows(spec, tile, rows, witness(w)).unwrap()
}

#[test]
fn the_honest_fixture_is_satisfied() {
    let (spec, input, w) = fixture();
    let g = spec.geometry().unwrap();
    assert_eq!((g.tiles, g.halo, g.advance), (4, 2, 2));
    let (sat, end) = run(&tiles(spec, &input, &w), start(&spec, &input));
    assert_eq!(sat, vec![true; 4]);
    assert!(end.is_boundary());
}

#[test]
fn a_halo_row_from_the_wrong_place_is_rejected() {
    let (spec, input, w) = fixture();
    let mut steps = tiles(spec, &input, &w);
    let row_len = 10;
    // tile 2's first halo row replaced by input row 0 (a real row, just not this one)
    let mut rows = rows_of(&spec, 2, &input, &w);
    let row0 = rows_of(&spec, 0, &input, &w)[row_len..2 * row_len].to_vec(); // witness row 1 of tile 0 = input row 0
    rows[..row_len].copy_from_slice(&row0);
    steps[2] = forged(spec, 2, rows, &w);
    let (sat, _) = run(&steps, start(&spec, &input));
    assert_eq!(sat, vec![true, true, false, true], "the halo commitment rejects it");
}

#[test]
fn skipped_repeated_and_foreign_tiles_are_rejected() {
    let (spec, input, w) = fixture();
    let honest = tiles(spec, &input, &w);
    let z0 = start(&spec, &input);
    // skipped: tile 2's rows proven in tile 1's place (the index comes from the state)
    let skipped = vec![
        honest[0].clone(),
        forged(spec, 1, rows_of(&spec, 2, &input, &w), &w),
        honest[2].clone(),
        honest[3].clone(),
    ];
    let (sat, _) = run(&skipped, z0);
    assert!(sat.iter().any(|&s| !s), "skipped tile accepted: {sat:?}");
    // repeated: tile 1 twice, then the rest; the layer would end one tile late
    let repeated = vec![honest[0].clone(), honest[1].clone(), honest[1].clone(), honest[3].clone()];
    let (sat, _) = run(&repeated, z0);
    assert!(sat.iter().any(|&s| !s), "repeated tile accepted: {sat:?}");
    // foreign: a tile of another layer of the same spec (other weights) in the middle
    let mut other = w.clone();
    other.weights[0] = other.weights[0].wrapping_add(1);
    let foreign = vec![
        honest[0].clone(),
        honest[1].clone(),
        TileStep::new(spec, 2, &input, witness(&other)).unwrap(),
        honest[3].clone(),
    ];
    let (sat, _) = run(&foreign, z0);
    // the model update pins the weights; the next tile then also misses the first's
    assert_eq!(sat, vec![true, true, false, false]);
}

#[test]
fn filled_padding_is_rejected() {
    let (spec, input, w) = fixture();
    let z0 = start(&spec, &input);
    for (tile, row) in [(0usize, 0usize), (3, 3)] {
        let g = spec.geometry().unwrap();
        assert!(g.input_row(tile, row).is_none(), "row {row} of tile {tile} is padding");
        let mut steps = tiles(spec, &input, &w);
        let mut rows = rows_of(&spec, tile, &input, &w);
        rows[row * 10 + 3] = 9;
        steps[tile] = forged(spec, tile, rows, &w);
        let (sat, _) = run(&steps, z0);
        assert!(!sat[tile], "padding filled in tile {tile}");
    }
}

#[test]
fn a_tampered_input_row_or_a_wrong_blind_is_rejected() {
    let (spec, input, w) = fixture();
    let z0 = start(&spec, &input);
    // input row 3 (absorbed by tile 1) changed consistently everywhere the prover holds it
    let mut tampered = input.clone();
    tampered[3 * 5 + 1] ^= 1;
    let steps = tiles(spec, &tampered, &w);
    let (sat, _) = run(&steps, z0);
    assert_eq!(sat, vec![true, true, true, false], "the last tile's chain check rejects it");
    // the right input under a wrong input blind
    let mut steps = tiles(spec, &input, &w);
    let mut wrong = witness(&w);
    wrong.blind_in = F::from(99);
    steps[0] = TileStep::new(spec, 0, &input, wrong).unwrap();
    let (sat, _) = run(&steps, z0);
    assert_eq!(sat, vec![true, true, true, false]);
    assert!(F::from(99) != F::ZERO);
}

/// ResNet's stem on a small image: 7×7 stride-2 convolution padded by 3, then a 3×3
/// stride-2 max pooling padded by 1 — padding on both sides of both windows.
#[test]
fn a_strided_padded_convolution_with_padded_max_pooling_tiles() {
    let c = ConvShape { stride: [2, 2], ..ConvShape::same(2, 3, 32, 8, 7) };
    let mut layer = LayerSpec::new(LinearShape::Conv(c), RequantSpec::new(7, 22).unwrap());
    layer.pool = Some(Pool { kind: PoolKind::Max, kernel: [3, 3], stride: [2, 2], pads: [1; 4] });
    let input: Vec<u8> = (0..c.num_inputs()).map(|i| (i * 53 % 128) as u8).collect();
    let weights = (0..c.num_weights()).map(|i| (i as i64 * 13 % 90 - 40) as i8).collect();
    let w = LayerWeights { weights, bias: vec![300, -200, 100] };
    for rows in [1, 2, 4] {
        let spec = TileSpec::new(layer, None, rows);
        let g = spec.geometry().unwrap();
        assert_eq!(g.tiles, 8 / rows);
        // one pooled row per tile: the padding above the image reaches the second band too
        assert_eq!(g.pad_inner.iter().map(|p| p.band).collect::<Vec<_>>(), if rows == 1 { vec![1] } else { vec![] });
        let whole = untiled(&spec, &input, &w);
        assert!(whole.output().iter().any(|&v| v > 0), "a live output");
        let z0 = start(&spec, &input);
        let (sat, end) = run(&tiles(spec, &input, &w), z0);
        assert!(sat.iter().all(|&s| s), "{sat:?}");
        assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
    }
    // that band's padding row filled: rejected at that tile, whichever cell
    let spec = TileSpec::new(layer, None, 1);
    let g = spec.geometry().unwrap();
    let row = g.pad_inner[0].rows.iter().position(|&p| p).unwrap();
    assert!(g.input_row(1, row).is_none() && g.input_row(2, row).is_some());
    let z0 = start(&spec, &input);
    let row_len = 2 * 8;
    for cell in [0, row_len - 1] {
        let mut steps = tiles(spec, &input, &w);
        let mut rows = rows_of(&spec, 1, &input, &w);
        rows[row * row_len + cell] = 5;
        steps[1] = forged(spec, 1, rows, &w);
        let (sat, _) = run(&steps, z0);
        assert!(sat[0] && !sat[1], "{sat:?}");
    }
}

/// A 5×5 max pooling padded by 2 over one pooled row per tile: the pooling's padding rows
/// reach the second band and the one before the last, whose convolution rows there must
/// be masked (to 0, below every real cell) as the first and last bands' are.
#[test]
fn a_tall_padded_pooling_masks_inner_bands() {
    let c = ConvShape::same(1, 2, 6, 4, 3);
    let mut layer = LayerSpec::new(LinearShape::Conv(c), RequantSpec::new(5, 20).unwrap());
    layer.pool = Some(Pool { kind: PoolKind::Max, kernel: [5, 5], stride: [1, 1], pads: [2; 4] });
    let spec = TileSpec::new(layer, None, 1);
    let g = spec.geometry().unwrap();
    assert_eq!((g.tiles, g.mid_band), (6, 5));
    // the convolution's input rows reach padding in every band (it reads 7 rows of 6)
    assert_eq!(g.pad_inner.iter().map(|p| p.band).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let mid: Vec<(usize, Vec<bool>)> =
        g.pad_inner.iter().filter(|p| p.mid.contains(&true)).map(|p| (p.band, p.mid.clone())).collect();
    let (top, bottom) = (vec![true, false, false, false, false], vec![false, false, false, false, true]);
    assert_eq!(mid, vec![(1, top), (4, bottom)]);
    // kernel rows -, -, +: on a flat image every output row inside is at most 0, while a
    // row above the image (reading only input row 0, with the last kernel row) is positive:
    // left unmasked, it would be its pooling windows' maximum
    let input = vec![100u8; c.num_inputs()];
    let weights = (0..c.num_weights()).map(|i| if (i / 3) % 3 == 2 { 10 } else { -10 }).collect();
    let w = LayerWeights { weights, bias: vec![0, 3] };
    let whole = untiled(&spec, &input, &w);
    assert!(whole.output().iter().all(|&v| v == 0), "{:?}", whole.output());
    let z0 = start(&spec, &input);
    let (sat, end) = run(&tiles(spec, &input, &w), z0);
    assert!(sat.iter().all(|&s| s), "{sat:?}");
    assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
}

#[test]
fn the_model_commitment_does_not_depend_on_the_tiling() {
    let (spec, input, w) = fixture();
    let z0 = start(&spec, &input);
    let (_, two) = run(&tiles(spec, &input, &w), z0);
    let spec4 = TileSpec { rows: 4, ..spec };
    let (_, four) = run(&tiles(spec4, &input, &w), z0);
    assert_eq!(two, four, "tiles of 2 or 4 rows: the same state after the layer");
}
