//! Channel tiles: a convolution, or a two-layer residual block in two passes, proven one
//! group of output channels per step. Against the untiled step, and the wrong witnesses
//! they must reject.

use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerStep, LayerWeights, Links};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::tile::{GroupSpec, GroupStep, TileState};
use fold_ml_circuits::F;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

mod common;
use common::tiles::{constraints, run, untiled_block, witness, BLINDS};

/// A 3×3 convolution of 64 channels (576 weights per output channel: model-commitment
/// chunks of 4 channels, or 6 of 12) to `co` channels over `h×w`, stride 1 or 2, pooled
/// (none, max 2×2, global average), tiled `channels` output channels per tile, its input
/// committed whole, by rows or by groups of 16 channels.
fn spec(co: usize, (h, w): (usize, usize), stride: usize, pool: u8, zp: u8, input: u8, per: usize) -> GroupSpec {
    let conv = ConvShape { stride: [stride; 2], ..ConvShape::same(64, co, h, w, 3) };
    let (_, oh, ow) = conv.output_dims();
    let pool = match pool {
        1 if oh % 2 == 0 && ow % 2 == 0 => {
            Some(Pool { kind: PoolKind::Max, kernel: [2, 2], stride: [2, 2], pads: [0; 4] })
        }
        2 => Some(Pool::global(PoolKind::Average, conv.output_dims())),
        _ => None,
    };
    let rq = RequantSpec::new(6, 24).unwrap();
    let layer = LayerSpec { pool, zero_point: zp, ..LayerSpec::new(LinearShape::Conv(conv), rq) };
    let input = [Links::Whole, Links::Rows, Links::Channels(16)][usize::from(input % 3)];
    let chunk = layer.chunks().channels;
    GroupSpec { layer, second: None, input, channels: chunk * per }
}

/// A basic block of 3×3 convolutions on `c` channels over `h×w` (model-commitment chunks
/// of 8 channels at 32): a residual (`skip` 2) or, downsampling, a stride-2 first layer
/// from `c / 2` channels with a 1×1 projection; the second layer averaged globally or not.
fn block_spec((c, h, w): (usize, usize, usize), down: bool, gap: bool, zp: u8, input: u8) -> GroupSpec {
    let rq = RequantSpec::new(7, 24).unwrap();
    let (ci, stride, (ih, iw)) = if down { (c / 2, 2, (2 * h, 2 * w)) } else { (c, 1, (h, w)) };
    let conv1 = ConvShape { stride: [stride; 2], ..ConvShape::same(ci, c, ih, iw, 3) };
    let layer = LayerSpec { zero_point: zp, ..LayerSpec::new(LinearShape::Conv(conv1), rq) };
    let conv2 = ConvShape::same(c, c, h, w, 3);
    let second = LayerSpec {
        skip: if down { 0 } else { 2 },
        projection: down.then_some(ConvShape { stride: [2, 2], ..ConvShape::same(ci, c, ih, iw, 1) }),
        pool: gap.then(|| Pool::global(PoolKind::Average, conv2.output_dims())),
        ..LayerSpec::new(LinearShape::Conv(conv2), rq)
    };
    let input = [Links::Whole, Links::Rows, Links::Channels(8)][usize::from(input % 3)];
    let chunk = layer.chunks().channels.max(second.chunks().channels);
    GroupSpec { layer, second: Some(second), input, channels: chunk }
}

type Case = (GroupSpec, Vec<u8>, Vec<LayerWeights>);

/// Random inputs and weights for a spec.
fn filled(spec: GroupSpec) -> impl Strategy<Value = Case> {
    let layers: Vec<_> = std::iter::once(spec.layer)
        .chain(spec.second)
        .map(|l| {
            (
                proptest::collection::vec(-30i8..30, l.num_weights()),
                proptest::collection::vec(-300i32..300, l.shape.num_biases()),
            )
                .prop_map(|(weights, bias)| LayerWeights { weights, bias })
        })
        .collect();
    (Just(spec), proptest::collection::vec(0u8..=127, spec.layer.num_inputs()), layers)
}

/// A channel-tiled convolution, or (one time in two) a channel-tiled basic block.
fn case() -> impl Strategy<Value = Case> {
    let layer = (
        prop::sample::select(vec![8usize, 12, 16]),
        (1usize..4, 1usize..4),
        1usize..3,
        0u8..3,
        0u8..4,
        any::<u8>(),
        1usize..3,
    )
        .prop_map(|(co, (h, w), s, pool, zp, input, per)| spec(co, (2 * h, 2 * w), s, pool, zp, input, per));
    let block = (1usize..3, 1usize..3, any::<bool>(), any::<bool>(), 0u8..4, any::<u8>())
        .prop_map(|(h, w, down, gap, zp, input)| block_spec((32, h, w), down, gap, zp, input));
    prop_oneof![layer, block].prop_filter("a tiling", |spec| spec.check().is_ok()).prop_flat_map(filled)
}

fn tiles(spec: GroupSpec, input: &[u8], layers: &[LayerWeights]) -> Vec<GroupStep> {
    (0..spec.tiles()).map(|t| GroupStep::new(spec, t, input, &witness(layers)).unwrap()).collect()
}

/// The boundary state before the layer: 3 layers done, some model commitment, the input
/// committed as the spec says under the test blind.
fn start(spec: &GroupSpec, input: &[u8]) -> TileState {
    TileState::boundary(StepState {
        layer: 3,
        model: F::from(1234),
        activations: activation_commitment_native(input, spec.block().input_layout(), F::from(BLINDS.0)),
    })
}

fn untiled(spec: &GroupSpec, input: &[u8], layers: &[LayerWeights]) -> LayerStep {
    untiled_block(spec.block(), input, layers)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, rng_seed: proptest::test_runner::RngSeed::Fixed(31), ..ProptestConfig::default() })]

    /// Every tile is satisfied, the circuit's transition is the native one, every tile has
    /// the blank tile's shape, and after the last tile the state is the untiled step's:
    /// the same output commitment (groups of channels per link), model commitment (the
    /// canonical chunked update of the whole layer) and layer count.
    #[test]
    fn channel_tiles_prove_what_the_untiled_step_proves((spec, input, layers) in case()) {
        let steps = tiles(spec, &input, &layers);
        prop_assert!(steps.len() >= 2);
        let z0 = start(&spec, &input);
        let (sat, end) = run(&steps, z0);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        let whole = untiled(&spec, &input, &layers);
        prop_assert_eq!(end, TileState::boundary(whole.next_state(&z0.base)));
        let blank = constraints(&GroupStep::blank(spec).unwrap());
        for s in &steps {
            prop_assert_eq!(constraints(s), blank);
        }
    }

    /// A tile that computes on an input other than the committed one (one value changed,
    /// the tile's computation honest on it) is rejected at that tile.
    #[test]
    fn a_tile_reading_another_input_is_rejected(
        (spec, input, layers) in case(),
        t in any::<prop::sample::Index>(),
        i in any::<prop::sample::Index>(),
    ) {
        let mut steps = tiles(spec, &input, &layers);
        let t = t.index(steps.len());
        let mut forged = input.clone();
        let i = i.index(forged.len());
        forged[i] = (forged[i] + 1) % 128;
        steps[t] = GroupStep::new(spec, t, &forged, &witness(&layers)).unwrap();
        let (sat, _) = run(&steps, start(&spec, &input));
        let expected: Vec<bool> = (0..steps.len()).map(|j| j != t).collect();
        prop_assert_eq!(sat, expected);
    }

    /// The circuit cannot see which group a tile computes: a tile that computes another
    /// group (its weights, honestly), a repeated tile or a skipped one is satisfied, but
    /// the model commitment then absorbs other chunks than the layer's in its order, and
    /// the layer does not end where the verifier's boundary state says it must: the end
    /// state is not the honest one.
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
        match how {
            // tile t computes another group of its layer with that group's weights
            0 => {
                let (stage, group) = spec.locate(t);
                let groups = if stage == 0 { spec.first_tiles() } else { n - spec.first_tiles() };
                let weights = spec.group_weights(stage, &layers[stage], (group + 1) % groups);
                steps[t] = GroupStep::from_group(spec, t, input.clone(), weights, &witness(&layers)).unwrap();
            }
            1 => steps.insert(t, honest[t].clone()),
            _ => drop(steps.remove(t)),
        }
        let z0 = start(&spec, &input);
        let (_, end) = run(&steps, z0);
        let (_, expected) = run(&honest, z0);
        prop_assert_ne!(end, expected);
    }
}

/// A layer whose output channels are one model-commitment chunk (at most 4,096 weights)
/// cannot be channel-tiled, nor a group that splits a chunk or does not divide the
/// channels; a convolution with a shortcut or channel groups is refused.
#[test]
fn groups_are_whole_chunks_of_a_plain_convolution() {
    let ok = spec(16, (4, 4), 1, 0, 0, 0, 1);
    assert!(ok.second.is_none());
    assert_eq!((ok.channels, ok.tiles()), (4, 4));
    assert!(ok.check().is_ok());
    assert!(GroupSpec { channels: 2, ..ok }.check().is_err(), "half a chunk");
    assert!(GroupSpec { channels: 16, ..ok }.check().is_err(), "one group");
    assert!(GroupSpec { channels: 12, ..ok }.check().is_err(), "does not divide");
    let small = spec(4, (4, 4), 1, 0, 0, 0, 1);
    assert_eq!(small.layer.chunks().channels, 4, "2,304 weights: one chunk");
    assert!(small.check().is_err());
    let skip = GroupSpec { layer: LayerSpec { skip: 1, ..ok.layer }, ..ok };
    assert!(skip.check().is_err());
    // a block: both layers' chunks (the projection block's first layer has chunks of 16)
    let down = block_spec((32, 2, 2), true, false, 0, 0);
    assert_eq!((down.layer.chunks().channels, down.second.unwrap().chunks().channels), (16, 8));
    assert_eq!((down.channels, down.first_tiles(), down.tiles()), (16, 2, 4));
    assert!(GroupSpec { channels: 8, ..down }.check().is_err(), "half a chunk of the first layer");
    let pooled = GroupSpec { layer: LayerSpec { pool: Some(Pool::square(PoolKind::Max, 2)), ..down.layer }, ..down };
    assert!(pooled.check().is_err(), "a block pooled between its layers");
    let plain = block_spec((32, 2, 2), false, false, 0, 0);
    let projection = Some(ConvShape::same(32, 32, 2, 2, 1));
    let both = GroupSpec { second: plain.second.map(|l| LayerSpec { projection, ..l }), ..plain };
    assert!(both.block().check().is_ok(), "a valid block");
    assert!(both.check().is_err(), "a residual and a projection");
}

/// A tile of a block's second pass that reads another middle tensor than the first pass
/// chained (one value changed, its computation honest on it) is rejected at that tile; a
/// first-pass tile does not read it.
#[test]
fn a_second_pass_reading_another_middle_tensor_is_rejected() {
    let spec = block_spec((32, 2, 2), false, false, 1, 2);
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let (spec, input, layers) = filled(spec).new_tree(runner).unwrap().current();
    let honest = tiles(spec, &input, &layers);
    for t in [0, spec.first_tiles(), spec.tiles() - 1] {
        let mut steps = honest.clone();
        let mut mid = steps[t].middle().to_vec();
        mid[5] = (mid[5] + 1) % 128;
        steps[t] = steps[t].with_middle(mid).unwrap();
        let (sat, _) = run(&steps, start(&spec, &input));
        let expected: Vec<bool> = (0..steps.len()).map(|j| j != t || t < spec.first_tiles()).collect();
        assert_eq!(sat, expected, "tile {t}");
    }
}

/// Each kind of block (residual or projection, averaged globally or not) through both
/// passes: what the untiled block step proves.
#[test]
fn every_kind_of_block_proves_what_the_untiled_block_proves() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    for (down, gap) in [(false, false), (false, true), (true, false), (true, true)] {
        let spec = block_spec((32, 2, 2), down, gap, 3, u8::from(down) + 2 * u8::from(gap));
        spec.check().unwrap();
        let (spec, input, layers) = filled(spec).new_tree(runner).unwrap().current();
        let z0 = start(&spec, &input);
        let (sat, end) = run(&tiles(spec, &input, &layers), z0);
        assert!(sat.iter().all(|&s| s), "down {down}, gap {gap}: {sat:?}");
        assert_eq!(end, TileState::boundary(untiled(&spec, &input, &layers).next_state(&z0.base)), "{down} {gap}");
    }
}

/// A dense layer alone (1024 → 16: model-commitment chunks of 4 units) is cut into groups
/// of output units: the tiles prove what the untiled step proves, a tile computing on
/// another input is rejected there; a dense layer in a block is refused.
#[test]
fn a_dense_layer_is_tiled_by_groups_of_units() {
    use fold_ml_circuits::gadgets::dense::DenseShape;
    let rq = RequantSpec::new(8, 24).unwrap();
    let layer = LayerSpec::new(LinearShape::Dense(DenseShape { inputs: 1024, outputs: 16 }), rq);
    assert_eq!(layer.chunks().channels, 4);
    let spec = GroupSpec { layer, second: None, input: Links::Whole, channels: 8 };
    spec.check().unwrap();
    assert!(GroupSpec { channels: 2, ..spec }.check().is_err(), "half a chunk");
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let (spec, input, layers) = filled(spec).new_tree(runner).unwrap().current();
    let steps = tiles(spec, &input, &layers);
    assert_eq!(steps.len(), 2);
    let z0 = start(&spec, &input);
    let (sat, end) = run(&steps, z0);
    assert!(sat.iter().all(|&s| s), "{sat:?}");
    assert_eq!(end, TileState::boundary(untiled(&spec, &input, &layers).next_state(&z0.base)));
    let mut forged = input.clone();
    forged[700] = (forged[700] + 1) % 128;
    let mut steps = steps;
    steps[1] = GroupStep::new(spec, 1, &forged, &witness(&layers)).unwrap();
    assert_eq!(run(&steps, z0).0, [true, false]);
    let second = LayerSpec::new(LinearShape::Dense(DenseShape { inputs: 16, outputs: 16 }), rq);
    let block = GroupSpec { second: Some(second), ..spec };
    assert!(block.block().check().is_ok(), "a valid block");
    assert!(block.check().is_err(), "dense layers in a block");
}
