//! Channel tiles: a convolution proven one group of output channels per step. Against the
//! untiled step, and the wrong witnesses they must reject.

use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{LayerSpec, LayerStep, LayerWeights, Links, StepWitness};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::tile::{GroupSpec, GroupStep, TileState, TileWitness};
use fold_ml_circuits::F;
use nova_snark::frontend::{num::AllocatedNum, shape_cs::ShapeCS, ConstraintSystem};
use nova_snark::provider::PallasEngine;
use nova_snark::traits::circuit::StepCircuit;
use proptest::prelude::*;

mod common;
use common::synth_z;
use common::tiles::{BLINDS, SALT};

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
    GroupSpec { layer, input, channels: chunk * per }
}

type Case = (GroupSpec, Vec<u8>, LayerWeights);

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![8usize, 12, 16]),
        1usize..4,
        1usize..4,
        1usize..3,
        0u8..3,
        0u8..4,
        any::<u8>(),
        1usize..3,
    )
        .prop_filter_map("a tiling", |(co, h, w, s, pool, zp, input, per)| {
            let spec = spec(co, (2 * h, 2 * w), s, pool, zp, input, per);
            spec.check().ok().map(|_| spec)
        })
        .prop_flat_map(|spec| {
            let layer = spec.layer;
            let weights = (
                proptest::collection::vec(-30i8..30, layer.num_weights()),
                proptest::collection::vec(-300i32..300, layer.shape.num_biases()),
            )
                .prop_map(|(weights, bias)| LayerWeights { weights, bias });
            (Just(spec), proptest::collection::vec(0u8..=127, layer.num_inputs()), weights)
        })
}

fn witness(layer: &LayerWeights) -> TileWitness {
    TileWitness {
        layer_weights: layer.clone(),
        second_weights: None,
        blind_in: F::from(BLINDS.0),
        blind_out: F::from(BLINDS.1),
        salt: F::from(SALT),
    }
}

fn tiles(spec: GroupSpec, input: &[u8], layer: &LayerWeights) -> Vec<GroupStep> {
    (0..spec.tiles()).map(|t| GroupStep::new(spec, t, input, &witness(layer)).unwrap()).collect()
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

/// Runs tiles in order through the circuit, each from the state the previous one output
/// (checking it against the native transition): whether each was satisfied, and the end.
fn run(steps: &[GroupStep], z0: TileState) -> (Vec<bool>, TileState) {
    let mut z = z0;
    let mut sat = Vec::new();
    for s in steps {
        let (ok, values) = synth_z(s, &z.to_vec(), None);
        let next = TileState::from_z(&values).unwrap();
        assert_eq!(next, s.next_state(&z), "circuit and native transition differ");
        sat.push(ok);
        z = next;
    }
    (sat, z)
}

fn untiled(spec: &GroupSpec, input: &[u8], layer: &LayerWeights) -> LayerStep {
    let w = StepWitness {
        input: input.to_vec(),
        layers: vec![layer.clone()],
        blind_in: F::from(BLINDS.0),
        blind_out: F::from(BLINDS.1),
        salt: F::from(SALT),
    };
    LayerStep::multi(spec.block(), 1, w).unwrap()
}

fn constraints<C: StepCircuit<F>>(step: &C) -> usize {
    let mut cs = ShapeCS::<PallasEngine>::new();
    let z: Vec<AllocatedNum<F>> = (0..step.arity())
        .map(|i| AllocatedNum::alloc(cs.namespace(|| format!("z{i}")), || Ok(F::from(0))).unwrap())
        .collect();
    step.synthesize(&mut cs, &z).unwrap();
    cs.num_constraints()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, rng_seed: proptest::test_runner::RngSeed::Fixed(31), ..ProptestConfig::default() })]

    /// Every tile is satisfied, the circuit's transition is the native one, every tile has
    /// the blank tile's shape, and after the last tile the state is the untiled step's:
    /// the same output commitment (groups of channels per link), model commitment (the
    /// canonical chunked update of the whole layer) and layer count.
    #[test]
    fn channel_tiles_prove_what_the_untiled_step_proves((spec, input, layer) in case()) {
        let steps = tiles(spec, &input, &layer);
        prop_assert!(steps.len() >= 2);
        let z0 = start(&spec, &input);
        let (sat, end) = run(&steps, z0);
        prop_assert!(sat.iter().all(|&s| s), "{sat:?}");
        let whole = untiled(&spec, &input, &layer);
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
        (spec, input, layer) in case(),
        t in any::<prop::sample::Index>(),
        i in any::<prop::sample::Index>(),
    ) {
        let mut steps = tiles(spec, &input, &layer);
        let t = t.index(steps.len());
        let mut forged = input.clone();
        let i = i.index(forged.len());
        forged[i] = (forged[i] + 1) % 128;
        steps[t] = GroupStep::new(spec, t, &forged, &witness(&layer)).unwrap();
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
        (spec, input, layer) in case(),
        t in any::<prop::sample::Index>(),
        how in 0u8..3,
    ) {
        let honest = tiles(spec, &input, &layer);
        let n = honest.len();
        let t = t.index(n);
        let mut steps = honest.clone();
        match how {
            // tile t computes group t + 1 (mod n) with that group's weights
            0 => {
                let g = (t + 1) % n;
                let own = spec.layer.num_weights() / n;
                let weights = LayerWeights {
                    weights: layer.weights[g * own..(g + 1) * own].to_vec(),
                    bias: layer.bias[g * spec.channels..(g + 1) * spec.channels].to_vec(),
                };
                steps[t] = GroupStep::from_group(spec, t, input.clone(), weights, &witness(&layer)).unwrap();
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
}
