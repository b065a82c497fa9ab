//! Grid tiles: a convolution proven one output row of one group of output channels per
//! step, its input read by bands of rows. Against the untiled step, and the wrong
//! witnesses they must reject.

use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerWeights, Links};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::tile::{TileSpec, TileState, TileStep};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

mod common;
use common::tiles::{constraints, run, start, tiles, untiled, witness};

/// A `k×k` convolution of 64 channels (576 weights per output channel at k = 3:
/// model-commitment chunks of 4 channels at 8 or 16 outputs, 6 at 12) to `co` channels
/// over `h×w`, stride 1 or 2, max-pooled 2×2 or not, tiled one output row of `per` chunks
/// of channels per tile; its input committed by rows, or by rows of groups of 16 or 32.
fn spec(
    co: usize,
    (h, w): (usize, usize),
    (k, stride): (usize, usize),
    pool: bool,
    zp: u8,
    input: u8,
    per: usize,
) -> TileSpec {
    let conv = ConvShape { stride: [stride; 2], ..ConvShape::same(64, co, h, w, k) };
    let (_, oh, ow) = conv.output_dims();
    let pool = (pool && oh % 2 == 0 && ow % 2 == 0).then_some(Pool {
        kind: PoolKind::Max,
        kernel: [2, 2],
        stride: [2, 2],
        pads: [0; 4],
    });
    let rq = RequantSpec::new(6, 24).unwrap();
    let layer = LayerSpec { pool, zero_point: zp, ..LayerSpec::new(LinearShape::Conv(conv), rq) };
    let input = [Links::Rows, Links::RowGroups(16), Links::RowGroups(32)][usize::from(input % 3)];
    TileSpec::grid(layer, layer.chunks().channels * per, input)
}

type Case = (TileSpec, Vec<u8>, Vec<LayerWeights>);

fn filled(spec: TileSpec) -> impl Strategy<Value = Case> {
    let l = spec.layer;
    let weights = (
        proptest::collection::vec(-30i8..30, l.num_weights()),
        proptest::collection::vec(-300i32..300, l.shape.num_biases()),
    )
        .prop_map(|(weights, bias)| vec![LayerWeights { weights, bias }]);
    (Just(spec), proptest::collection::vec(0u8..=127, l.num_inputs()), weights)
}

/// A grid-tiled convolution: 3×3 (halo rows between bands) or 1×1 (none), stride 1 or 2.
fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![8usize, 12, 16]),
        (2usize..6, 1usize..4),
        (prop::sample::select(vec![1usize, 3]), 1usize..3),
        any::<bool>(),
        0u8..4,
        any::<u8>(),
        1usize..3,
    )
        .prop_map(|(co, (h, w), ks, pool, zp, input, per)| spec(co, (h, w), ks, pool, zp, input, per))
        .prop_filter("a grid", |spec| spec.geometry().is_ok())
        .prop_flat_map(filled)
}

/// The run's satisfied flags and end state, from the test's boundary state.
fn go(spec: &TileSpec, input: &[u8], steps: &[TileStep]) -> (Vec<bool>, TileState) {
    run(steps, start(spec, input, (3, 1234)))
}

/// Tile `t` of the honest run, its witness rows replaced (its computation honest on them).
fn with_rows(spec: TileSpec, t: usize, rows: Vec<u8>, layers: &[LayerWeights]) -> TileStep {
    TileStep::from_rows(spec, t, rows, witness(layers)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, rng_seed: proptest::test_runner::RngSeed::Fixed(41), ..ProptestConfig::default() })]

    /// Every tile is satisfied, the circuit's transition is the native one (checked by
    /// `run`), every tile has the blank tile's shape, and after the last tile the state is
    /// the untiled step's: the same output commitment (one row of a group per link), model
    /// commitment and layer count.
    #[test]
    fn grid_tiles_prove_what_the_untiled_step_proves((spec, input, layers) in case()) {
        let steps = tiles(spec, &input, &layers);
        prop_assert_eq!(steps.len(), spec.geometry().unwrap().tiles * spec.groups());
        let (sat, end) = go(&spec, &input, &steps);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        let z0 = start(&spec, &input, (3, 1234));
        prop_assert_eq!(end, TileState::boundary(untiled(&spec, &input, &layers).next_state(&z0.base)));
        let blank = constraints(&TileStep::blank(spec).unwrap());
        for s in &steps {
            prop_assert_eq!(constraints(s), blank);
        }
    }

    /// A tile that computes on rows other than those it must read (one value changed) is
    /// rejected: at that tile when the value is one it shares with the tile before it (a
    /// later group of its band, or the rows a band shares with the one above), else when
    /// the next group of its band opens its window, or when the last tile checks the input
    /// chain. No tile before it is affected, and the run never ends satisfied.
    #[test]
    fn a_tile_reading_other_rows_is_rejected(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        i in any::<prop::sample::Index>(),
    ) {
        let mut steps = tiles(spec, &input, &layers);
        let t = t.index(steps.len());
        let mut rows = steps[t].rows().to_vec();
        let i = i.index(rows.len());
        rows[i] = (rows[i] + 1) % 128;
        steps[t] = with_rows(spec, t, rows, &layers);
        let (sat, _) = go(&spec, &input, &steps);
        prop_assert!(sat[..t].iter().all(|&s| s), "{sat:?}");
        prop_assert!(!sat.iter().all(|&s| s), "{sat:?}");
        let g = spec.geometry().unwrap();
        let row = i / (rows_len(&spec));
        let shared = t % spec.groups() != 0 || (t >= spec.groups() && row < g.halo);
        if shared {
            prop_assert!(!sat[t], "tile {t} row {row}: {sat:?}");
        }
    }

    /// The circuit cannot see which group a tile computes: a tile of the first band that
    /// computes another group (that group's weights, honestly), a repeated tile or a
    /// skipped one does not end the layer on the honest state; a later band's tile with
    /// another group's weights is rejected where its band ends.
    #[test]
    fn another_group_a_repeated_or_a_skipped_tile_is_not_the_layer(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        how in 0u8..3,
    ) {
        let honest = tiles(spec, &input, &layers);
        let n = honest.len();
        let t = t.index(n);
        let mut steps = honest.clone();
        let groups = spec.groups();
        match how {
            0 => {
                // the tile of the next group computes tile t's group... from tile t's index
                let other = t - t % groups + (t + 1) % groups;
                let mut w = layers.clone();
                let (g, c) = (spec.channels.unwrap(), spec.layer.num_weights() / spec.layer.shape.num_biases());
                let (a, b) = (t % groups, other % groups);
                for j in 0..g {
                    for k in 0..c {
                        w[0].weights.swap((a * g + j) * c + k, (b * g + j) * c + k);
                    }
                    w[0].bias.swap(a * g + j, b * g + j);
                }
                steps[t] = TileStep::new(spec, t, &input, witness(&w)).unwrap();
            }
            1 => steps.insert(t, honest[t].clone()),
            _ => drop(steps.remove(t)),
        }
        let (sat, end) = go(&spec, &input, &steps);
        let (_, expected) = go(&spec, &input, &honest);
        prop_assert!(!sat.iter().all(|&s| s) || end != expected);
        if how == 0 && t >= groups {
            let band_end = t - t % groups + groups - 1;
            prop_assert!(!sat[band_end], "tile {t}: {sat:?}");
        }
    }
}

fn rows_len(spec: &TileSpec) -> usize {
    let [c, _, w] = spec.input_dims();
    c * w
}

/// A band's first tile whose halo rows come from elsewhere (the rows of the band above
/// instead of those it shares) is rejected at that tile, and so is one that opens the
/// hand-off with another front.
#[test]
fn a_halo_row_from_the_wrong_place_is_rejected() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let (spec, input, layers) = filled(spec(8, (4, 3), (3, 1), false, 2, 0, 1)).new_tree(runner).unwrap().current();
    let g = spec.geometry().unwrap();
    assert_eq!((g.halo, spec.groups(), g.tiles), (2, 2, 4));
    let honest = tiles(spec, &input, &layers);
    let t = 2 * spec.groups(); // band 2's first group
    let mut steps = honest.clone();
    let mut rows = steps[t].rows().to_vec();
    let n = rows_len(&spec);
    let above = honest[t - spec.groups()].rows()[..n].to_vec(); // band 1's first row
    rows[n..2 * n].copy_from_slice(&above);
    steps[t] = with_rows(spec, t, rows, &layers);
    let (sat, _) = go(&spec, &input, &steps);
    let expected: Vec<bool> = (0..steps.len()).map(|j| j < t || j > t + 1).collect();
    assert_eq!(&sat[..=t + 1], &expected[..=t + 1], "{sat:?}");
    assert!(!sat.iter().all(|&s| s));
}

/// The grid's rules: one convolution, whole model-commitment chunks, at least two groups,
/// one output row per tile, no global average, an input read by rows.
#[test]
fn a_grid_is_whole_chunks_of_one_convolution_row_by_row() {
    let ok = spec(16, (4, 4), (3, 1), false, 0, 0, 1);
    assert_eq!((ok.channels, ok.groups(), ok.tiles()), (Some(4), 4, 16));
    assert!(ok.geometry().is_ok());
    let bad = |s: TileSpec, why: &str| assert!(s.geometry().is_err(), "{why}");
    bad(TileSpec { channels: Some(2), ..ok }, "half a chunk");
    bad(TileSpec { channels: Some(16), ..ok }, "one group");
    bad(TileSpec { channels: Some(12), ..ok }, "does not divide");
    bad(TileSpec { rows: 2, ..ok }, "two rows");
    bad(TileSpec { input: Links::Whole, ..ok }, "input whole");
    bad(TileSpec { input: Links::Channels(16), ..ok }, "input by groups of all rows");
    let gap = LayerSpec { pool: Some(Pool::global(PoolKind::Average, (16, 4, 4))), ..ok.layer };
    bad(TileSpec { layer: gap, ..ok }, "a global average");
    bad(TileSpec { second: Some(ok.layer), ..ok }, "two layers");
    assert_eq!(spec(4, (4, 4), (3, 1), false, 0, 0, 1).layer.chunks().channels, 4, "one chunk");
    bad(spec(4, (4, 4), (3, 1), false, 0, 0, 1), "one chunk: one group");
}

/// A row-tiled layer reads a tensor committed one row of a group per link (what a grid
/// writes) and proves what the untiled step proves.
#[test]
fn a_row_tiled_layer_reads_rows_of_groups() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let grid = spec(8, (4, 3), (3, 1), true, 1, 1, 1);
    let spec = TileSpec { channels: None, rows: 1, ..grid };
    assert_eq!(spec.input, Links::RowGroups(16));
    let (spec, input, layers) = filled(spec).new_tree(runner).unwrap().current();
    let (sat, end) = go(&spec, &input, &tiles(spec, &input, &layers));
    assert!(sat.iter().all(|&s| s), "{sat:?}");
    let z0 = start(&spec, &input, (3, 1234));
    assert_eq!(end, TileState::boundary(untiled(&spec, &input, &layers).next_state(&z0.base)));
}

/// Tiles that all compute, consistently, on an input other than the committed one (one
/// value changed) pass every hand-off, and the last tile rejects the input chain.
#[test]
fn tiles_reading_another_input_consistently_are_rejected_at_the_last_tile() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let (spec, input, layers) = filled(spec(8, (4, 3), (3, 1), true, 2, 2, 1)).new_tree(runner).unwrap().current();
    for i in [0, input.len() / 2, input.len() - 1] {
        let mut forged = input.clone();
        forged[i] = (forged[i] + 1) % 128;
        let steps = tiles(spec, &forged, &layers);
        let (sat, _) = go(&spec, &input, &steps);
        let expected: Vec<bool> = (0..steps.len()).map(|j| j + 1 < steps.len()).collect();
        assert_eq!(sat, expected, "value {i}");
    }
}

/// A tile of a later band computing with other weights for its group (one weight or one
/// bias changed, or another group's) is rejected where its band's chain ends, and no tile
/// before: every band computes with the first band's weights.
#[test]
fn a_later_band_with_other_weights_is_rejected_where_the_band_ends() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let (spec, input, layers) = filled(spec(12, (4, 2), (3, 1), false, 1, 0, 1)).new_tree(runner).unwrap().current();
    let groups = spec.groups();
    assert_eq!(groups, 2);
    let honest = tiles(spec, &input, &layers);
    for (t, how) in [(2, 0), (3, 1), (5, 2), (7, 0)] {
        let mut w = layers.clone();
        let per = spec.layer.num_weights() / spec.layer.shape.num_biases() * spec.channels.unwrap();
        let g = t % groups;
        match how {
            0 => w[0].weights[g * per + 7] = w[0].weights[g * per + 7].wrapping_add(1),
            1 => w[0].bias[g * spec.channels.unwrap()] += 1,
            _ => {
                let other = (g + 1) % groups;
                for k in 0..per {
                    w[0].weights.swap(g * per + k, other * per + k);
                }
            }
        }
        let mut steps = honest.clone();
        steps[t] = TileStep::new(spec, t, &input, witness(&w)).unwrap();
        let (sat, _) = go(&spec, &input, &steps);
        // (the next band's first tile, which reopens the hand-off with the model slot's
        // chain, rejects it too)
        let band_end = t - g + groups - 1;
        assert!(sat[..band_end].iter().all(|&s| s) && !sat[band_end], "tile {t}, change {how}: {sat:?}");
    }
}

/// Own links are where the bands are the input's rows and a row has one link per group: a
/// 3×3 or 1×1 "same" convolution of stride 1 reading rows of as many groups as it has.
/// Other reads (rows of every channel, of more groups, stride 2, a pooled band) keep a
/// band's first group absorbing whole rows.
#[test]
fn each_tile_absorbs_its_own_link_where_bands_are_rows_of_one_link_per_group() {
    let own = |s: TileSpec| s.geometry().unwrap().own_links;
    // 8 outputs in chunks of 4: two groups; rows of groups of 32 of the 64 inputs: two links
    assert!(own(spec(8, (4, 3), (3, 1), false, 0, 2, 1)));
    assert!(own(spec(128, (4, 3), (1, 1), false, 0, 2, 1)));
    assert!(!own(spec(8, (4, 3), (3, 1), false, 0, 0, 1)), "rows of every channel");
    assert!(!own(spec(8, (4, 3), (3, 1), false, 0, 1, 1)), "four links, two groups");
    assert!(!own(spec(8, (4, 4), (3, 2), false, 0, 2, 1)), "stride 2");
    assert!(!own(spec(8, (4, 4), (3, 1), true, 0, 2, 1)), "two input rows per band");
}

/// With own links, a band whose tiles all read (and absorb) another value in their row —
/// consistently, so every opening within the band holds — is rejected at its first tile
/// (that row is one of the two it shares with the band above), or, in the first band, at
/// the next band's first tile, which reads it as a halo row.
#[test]
fn a_band_absorbing_another_row_than_its_neighbours_read_is_rejected() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let (spec, input, layers) = filled(spec(8, (4, 3), (3, 1), false, 1, 2, 1)).new_tree(runner).unwrap().current();
    let g = spec.geometry().unwrap();
    assert!(g.own_links && g.top == 1);
    let (groups, n) = (spec.groups(), rows_len(&spec));
    let honest = tiles(spec, &input, &layers);
    for band in 0..g.tiles {
        for j in [0, n / 2 + 1, n - 1] {
            let mut steps = honest.clone();
            for (t, step) in steps.iter_mut().enumerate().skip(band * groups).take(groups) {
                let mut rows = step.rows().to_vec();
                rows[n + j] = (rows[n + j] + 1) % 128; // witness row 1: input row `band`
                *step = with_rows(spec, t, rows, &layers);
            }
            let (sat, _) = go(&spec, &input, &steps);
            let fails = band.max(1) * groups;
            let expected: Vec<bool> = (0..=fails).map(|t| t < fails).collect();
            assert_eq!(&sat[..=fails], &expected[..], "band {band}, value {j}");
        }
    }
}
