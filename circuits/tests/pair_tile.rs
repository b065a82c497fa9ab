//! Pairs of grids: a residual basic block proven as a grid of its first convolution, then
//! a grid of its second with the residual, by one circuit. Against the untiled block, and
//! the wrong witnesses they must reject.

use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerWeights, Links};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::tile::{PairSpec, PairStep, TileState};
use fold_ml_circuits::F;
use proptest::prelude::*;

mod common;
use common::tiles::{constraints, pair_case, pair_start, pair_tiles, run, untiled_block, BLINDS};

/// A residual block of two `k×k` convolutions of `c` channels over `h×w` (stride 1, "same"
/// padding), or (`down`) ResNet's downsampling block on `c×2h×2w`: a stride-2 convolution
/// to `2c` channels, then one of `2c`, with a 1×1 stride-2 projection shortcut; tiled `per`
/// model-commitment chunks (of both layers) of channels per tile; its input committed by
/// rows, or by rows of groups of 8 channels.
fn spec(
    (c, k): (usize, usize),
    (h, w): (usize, usize),
    zps: (u8, u8),
    by_groups: bool,
    down: bool,
    per: usize,
) -> PairSpec {
    let rq = |shift| RequantSpec::new(shift, 24).unwrap();
    let (co, s) = if down { (2 * c, 2) } else { (c, 1) };
    let conv1 = ConvShape { stride: [s; 2], ..ConvShape::same(c, co, s * h, s * w, k) };
    let first = LayerSpec { zero_point: zps.0, ..LayerSpec::new(LinearShape::Conv(conv1), rq(6)) };
    let conv2 = LinearShape::Conv(ConvShape::same(co, co, h, w, k));
    let projection = down.then_some(ConvShape { stride: [2, 2], ..ConvShape::same(c, co, 2 * h, 2 * w, 1) });
    let skip = if down { 0 } else { 3 };
    let second = LayerSpec { skip, projection, zero_point: zps.1, ..LayerSpec::new(conv2, rq(7)) };
    let input = if by_groups { Links::RowGroups(8) } else { Links::Rows };
    let chunk = first.chunks().channels.max(second.chunks().channels);
    PairSpec { first, second, channels: chunk * per, input }
}

type Case = (PairSpec, Vec<u8>, Vec<LayerWeights>);

/// The block averaged globally after its second convolution (ResNet's last block: a pair
/// only when its passes share one tile, [`PairSpec::pooled`]).
fn averaged(spec: PairSpec) -> PairSpec {
    let LinearShape::Conv(c) = spec.second.shape else { return spec };
    let pool = Some(Pool::global(PoolKind::Average, c.output_dims()));
    PairSpec { second: LayerSpec { pool, ..spec.second }, ..spec }
}

/// 3×3 convolutions of 32 channels (chunks of 8), 5×5 of 16 (chunks of 8), or a
/// downsampling block 16 → 32 (chunks of 16 and 8), over 2 to 3 output rows (padding
/// reaches inner bands) of 1 or 2 columns, in groups of one or two chunks; some identity
/// blocks averaged globally.
fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![(32usize, 3usize, false), (16, 5, false), (16, 3, true)]),
        (2usize..4, 1usize..3),
        (0u8..3, 0u8..3),
        any::<bool>(),
        1usize..3,
        any::<bool>(),
    )
        .prop_map(|((c, k, down), hw, zps, by_groups, per, pooled)| {
            let spec = spec((c, k), hw, zps, by_groups, down, per);
            if pooled && spec.shares() {
                averaged(spec)
            } else {
                spec
            }
        })
        .prop_filter("a pair", |spec| spec.check().is_ok())
        .prop_flat_map(pair_case)
}

fn start(spec: &PairSpec, input: &[u8]) -> TileState {
    pair_start(spec, input, (3, 1234))
}

fn tiles(spec: PairSpec, input: &[u8], layers: &[LayerWeights]) -> Vec<PairStep> {
    pair_tiles(spec, input, layers)
}

fn go(spec: &PairSpec, input: &[u8], steps: &[PairStep]) -> (Vec<bool>, TileState) {
    run(steps, start(spec, input))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, rng_seed: proptest::test_runner::RngSeed::Fixed(43), ..ProptestConfig::default() })]

    /// Every tile is satisfied, the circuit's transition is the native one (checked by
    /// `run`), the tiles have the blank tile's shape, and after the last tile the state is
    /// the untiled block's: the same output commitment (one row of a group per link, or the
    /// means' one row), model commitment and layer count (two more).
    #[test]
    fn pair_tiles_prove_what_the_untiled_block_proves((spec, input, layers) in case()) {
        let steps = tiles(spec, &input, &layers);
        let (sat, end) = go(&spec, &input, &steps);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        let z0 = start(&spec, &input);
        prop_assert_eq!(end, TileState::boundary(untiled_block(spec.block(), &input, &layers).next_state(&z0.base)));
        let blank = constraints(&PairStep::blank(spec).unwrap());
        for s in [&steps[0], &steps[spec.pass_tiles()], &steps[steps.len() - 1]] {
            prop_assert_eq!(constraints(s), blank);
        }
    }

    /// A tile that computes on other rows (one value of its window changed: the block
    /// input's in the first pass, the middle tensor's in the second) is rejected: no tile
    /// before it is affected, and the run never ends satisfied.
    #[test]
    fn a_tile_reading_other_rows_is_rejected(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        i in any::<prop::sample::Index>(),
    ) {
        let mut steps = tiles(spec, &input, &layers);
        let t = t.index(steps.len());
        let mut rows = steps[t].pass_rows();
        let i = i.index(rows.len());
        rows[i] = (rows[i] + 1) % 128;
        steps[t] = steps[t].with_rows(rows).unwrap();
        let (sat, _) = go(&spec, &input, &steps);
        prop_assert!(sat[..t].iter().all(|&s| s), "{sat:?}");
        prop_assert!(!sat.iter().all(|&s| s), "tile {t}: {sat:?}");
    }

    /// A repeated or a skipped tile (either pass), or the passes' order swapped at their
    /// seam, does not end the block on the honest state.
    #[test]
    fn a_repeated_skipped_or_reordered_tile_is_not_the_block(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        how in 0u8..3,
    ) {
        let honest = tiles(spec, &input, &layers);
        let t = t.index(honest.len());
        let mut steps = honest.clone();
        match how {
            0 => steps.insert(t, honest[t].clone()),
            1 => drop(steps.remove(t)),
            _ => steps.swap(spec.pass_tiles() - 1, spec.pass_tiles()),
        }
        let (sat, end) = go(&spec, &input, &steps);
        let (_, expected) = go(&spec, &input, &honest);
        prop_assert!(!sat.iter().all(|&s| s) || end != expected, "{how} at {t}: {sat:?}");
    }
}

/// The second pass adds the residual of the block input the first pass read: a second
/// pass whose every tile reads its residual from another block input (one value changed,
/// chained consistently) is rejected whether it claims that input's commitment, keeps the
/// true one, or switches from the true one to the other at its last tile, and so is a run
/// whose second pass is another input's whole (its middle tensor too); the first pass stays
/// satisfied.
#[test]
fn the_second_pass_reads_the_block_input_the_first_pass_read() {
    // a residual, a residual whose passes share one tile, and a projection
    let shared = spec((32, 3), (2, 1), (1, 2), true, false, 1);
    assert!(shared.shares());
    for spec in [spec((32, 3), (2, 1), (1, 2), false, false, 2), shared, spec((16, 3), (2, 1), (1, 2), true, true, 1)] {
        second_pass_forgeries(spec);
    }
}

fn second_pass_forgeries(spec: PairSpec) {
    let block = spec.block();
    let layers: Vec<LayerWeights> = block
        .stages
        .iter()
        .map(|s| LayerWeights {
            weights: (0..s.num_weights()).map(|i| ((i * 7) % 41) as i8 - 20).collect(),
            bias: (0..s.shape.num_biases()).map(|i| i as i32 * 3 - 40).collect(),
        })
        .collect();
    let input: Vec<u8> = (0..block.num_inputs()).map(|i| ((i * 13) % 128) as u8).collect();
    let mut other = input.clone();
    other[37] ^= 1;
    let honest = tiles(spec, &input, &layers);
    let n = spec.pass_tiles();
    let (sat, _) = go(&spec, &input, &honest);
    assert!(sat.iter().all(|&s| s));
    let blind = F::from(BLINDS.0);
    let residual = |keep: bool| -> Vec<PairStep> {
        let forged = honest[n..].iter().map(|s| s.with_block_input(&other, blind, keep).unwrap());
        honest[..n].iter().cloned().chain(forged).collect()
    };
    // the true commitment where the middle tensor's chain starts, the other at the end
    let mut switched = residual(true);
    let last = switched.len() - 1;
    switched[last] = honest[last].with_block_input(&other, blind, false).unwrap();
    let whole: Vec<PairStep> = honest[..n].iter().chain(&tiles(spec, &other, &layers)[n..]).cloned().collect();
    let forgeries = [
        ("its commitment", residual(false)),
        ("the true one", residual(true)),
        ("switched", switched),
        ("whole", whole),
    ];
    for (what, steps) in forgeries {
        let (sat, _) = go(&spec, &input, &steps);
        assert!(sat[..n].iter().all(|&s| s) && !sat.iter().all(|&s| s), "{what}: {sat:?}");
    }
}

/// ResNet's identity blocks (input committed in rows of the pair's groups) are proven by one
/// tile that serves both passes, about half the two-pass circuit, which a downsampling block
/// and a block whose input is committed in other links keep; the shared tile proves what
/// the untiled block proves (the proptests above draw both kinds).
#[test]
fn identity_blocks_share_one_tile_for_both_passes() {
    let shared = spec((32, 3), (4, 4), (1, 2), true, false, 1);
    let two_pass = spec((32, 3), (4, 4), (1, 2), false, false, 1);
    assert!(shared.shares());
    assert!(!two_pass.shares() && !spec((16, 3), (2, 2), (0, 0), true, true, 1).shares());
    let (a, b) = (constraints(&PairStep::blank(shared).unwrap()), constraints(&PairStep::blank(two_pass).unwrap()));
    assert!(10 * a < 6 * b, "shared {a}, two passes {b}");
}

/// A shared tile's second pass computed with the first layer's weights (every second-pass
/// tile, consistently) is satisfied tile by tile but absorbs other weights under the second
/// layer's digest: the block ends on another model commitment.
#[test]
fn a_shared_second_pass_with_the_first_layers_weights_is_another_model() {
    let spec = spec((32, 3), (2, 2), (1, 2), true, false, 1);
    assert!(spec.shares());
    let block = spec.block();
    let layers: Vec<LayerWeights> = block
        .stages
        .iter()
        .enumerate()
        .map(|(k, s)| LayerWeights {
            weights: (0..s.num_weights()).map(|i| ((i * (7 + 4 * k)) % 41) as i8 - 20).collect(),
            bias: (0..s.shape.num_biases()).map(|i| i as i32 * 3 - 40).collect(),
        })
        .collect();
    let input: Vec<u8> = (0..block.num_inputs()).map(|i| ((i * 13) % 128) as u8).collect();
    let honest = tiles(spec, &input, &layers);
    let swapped = tiles(spec, &input, &[layers[0].clone(), layers[0].clone()]);
    let n = spec.pass_tiles();
    let forged: Vec<PairStep> = honest[..n].iter().chain(&swapped[n..]).cloned().collect();
    let (sat, end) = go(&spec, &input, &forged);
    let (_, expected) = go(&spec, &input, &honest);
    assert!(layers[0] != layers[1]);
    assert!(!sat.iter().all(|&s| s) || end.base.model != expected.base.model, "{sat:?}");
}
