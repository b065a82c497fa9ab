//! The layer step circuit against the native reference, and the wrong witnesses it must
//! reject: hand-off that does not open the previous state, weights that do not match the
//! committed ones, tampered outputs.

use ff::Field;
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::gadgets::{
    conv::ConvShape,
    dense::DenseShape,
    linear::{linear_hints, LinearShape},
    pool::{Pool, PoolKind},
};
use fold_ml_circuits::layer::{BlockSpec, LayerSpec, LayerStep, LayerWeights, LayerWitness, Links, StepWitness};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::reference::{model_commitment, NativeRun};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use proptest::prelude::*;

mod common;
use common::synth;

/// Small layer specs of every kind the geometry allows: same-size, strided, unpadded,
/// asymmetrically padded and grouped convolutions, dense layers, pooling with any window,
/// stride and padding, residual connections, input zero points.
fn small_specs() -> impl Strategy<Value = LayerSpec> {
    let same = (1usize..3, 1usize..3, 2usize..6, prop_oneof![Just(1usize), Just(3)])
        .prop_map(|(ci, co, s, k)| ConvShape::same(ci, co, s, s + 1, k));
    let general =
        ((1usize..3, 1usize..3), (2usize..7, 2usize..7), (1usize..4, 1usize..3), proptest::array::uniform4(0usize..3))
            .prop_filter_map("a valid geometry", |((groups, per), (h, w), (k, stride), p)| {
                let c = ConvShape {
                    channels_in: groups * per,
                    channels_out: groups,
                    height: h,
                    width: w,
                    kernel: [k, k],
                    stride: [stride, stride],
                    pads: p.map(|v| v % k),
                    groups,
                };
                c.check().is_ok().then_some(c)
            });
    let conv = prop_oneof![same, general].prop_map(LinearShape::Conv);
    let dense = (1usize..10, 1usize..10).prop_map(|(i, o)| LinearShape::Dense(DenseShape { inputs: i, outputs: o }));
    let kind = prop_oneof![Just(PoolKind::Max), Just(PoolKind::Average)];
    let pool = prop_oneof![
        Just(None),
        (kind.clone(), 1usize..3).prop_map(|(kind, size)| Some(Pool::square(kind, size))),
        (kind, 1usize..4, 1usize..3, 0usize..2).prop_map(|(kind, k, s, p)| Some(Pool {
            kind,
            kernel: [k, k],
            stride: [s, s],
            pads: [p % k; 4]
        })),
    ];
    let zero_point = prop_oneof![Just(0u8), 0u8..=127];
    (prop_oneof![conv, dense], 0u32..6, prop_oneof![Just(0u32), 1u32..40], pool, zero_point).prop_map(
        |(shape, shift, skip, pool, zero_point)| {
            let mut spec = LayerSpec::new(shape, RequantSpec::new(shift, 20).unwrap());
            // residual connections and pooling where the shape allows them
            spec.skip = if shape.num_inputs() == shape.num_outputs() { skip } else { 0 };
            spec.pool = match (pool, shape) {
                (Some(p), LinearShape::Conv(c)) if p.check(c.output_dims()).is_ok() => Some(p),
                _ => None,
            };
            spec.zero_point = zero_point;
            spec
        },
    )
}

type Case = (LayerSpec, Vec<u8>, LayerWeights, u64, u64);

fn witness_for(spec: LayerSpec) -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(0u8..=127, spec.shape.num_inputs()),
        proptest::collection::vec(any::<i8>(), spec.shape.num_weights()),
        proptest::collection::vec(-4000i32..4000, spec.shape.num_biases()),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(move |(input, weights, bias, b_in, b_out)| (spec, input, LayerWeights { weights, bias }, b_in, b_out))
}

fn state_for(spec: &LayerSpec, input: &[u8], blind: F) -> StepState {
    StepState {
        layer: 7,
        model: F::from(1234),
        activations: fold_ml_circuits::commit::activation_commitment_native(
            input,
            BlockSpec::layer(*spec).input_layout(),
            blind,
        ),
    }
}

const SALT: u64 = 77;

fn witness(input: Vec<u8>, layer_weights: LayerWeights, blind_in: F, blind_out: F) -> LayerWitness {
    LayerWitness { input, layer_weights, blind_in, blind_out, salt: F::from(SALT) }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]

    #[test]
    fn step_matches_native((spec, input, layer_weights, b_in, b_out) in small_specs().prop_flat_map(witness_for)) {
        let (b_in, b_out) = (F::from(b_in), F::from(b_out));
        let z_in = state_for(&spec, &input, b_in);
        let step = LayerStep::new(spec, witness(input.clone(), layer_weights.clone(), b_in, b_out)).unwrap();
        let expected = step.next_state(&z_in);
        let (sat, out) = synth(&step, &z_in, Some(&expected));
        prop_assert!(sat);
        prop_assert_eq!(out, expected.to_vec());
        // and the same as the stand-alone reference executor
        let mut run = NativeRun::start(BlockSpec::layer(spec), input, b_in, F::from(SALT)).unwrap();
        run.apply(&layer_weights, b_out).unwrap();
        prop_assert_eq!(run.activations(), step.output());
        prop_assert_eq!(run.state().activations, expected.activations);
    }

    #[test]
    fn hand_off_must_open_the_previous_state((spec, input, layer_weights, b_in, b_out) in small_specs().prop_flat_map(witness_for), pick in any::<prop::sample::Index>()) {
        let (b_in, b_out) = (F::from(b_in), F::from(b_out));
        let z_in = state_for(&spec, &input, b_in);
        // a different input activation than the one committed
        let mut forged = input.clone();
        let i = pick.index(forged.len());
        forged[i] = (forged[i] + 1) % 128;
        let step = LayerStep::new(spec, witness(forged, layer_weights.clone(), b_in, b_out)).unwrap();
        prop_assert!(!synth(&step, &z_in, None).0);
        // the right input under the wrong blind
        let step = LayerStep::new(spec, witness(input, layer_weights, b_in + F::ONE, b_out)).unwrap();
        prop_assert!(!synth(&step, &z_in, None).0);
    }

    #[test]
    fn weights_must_match_the_committed_ones((spec, input, layer_weights, b_in, b_out) in small_specs().prop_flat_map(witness_for), pick in any::<prop::sample::Index>()) {
        let (b_in, b_out) = (F::from(b_in), F::from(b_out));
        let z_in = state_for(&spec, &input, b_in);
        let honest = LayerStep::new(spec, witness(input.clone(), layer_weights.clone(), b_in, b_out)).unwrap();
        let expected = honest.next_state(&z_in);
        let mut forged = layer_weights.clone();
        let i = pick.index(forged.weights.len());
        forged.weights[i] = forged.weights[i].wrapping_add(1);
        let step = LayerStep::new(spec, witness(input, forged, b_in, b_out)).unwrap();
        prop_assert!(!synth(&step, &z_in, Some(&expected)).0);
    }

    #[test]
    fn tampered_output_rejected((spec, input, layer_weights, b_in, b_out) in small_specs().prop_flat_map(witness_for), pick in any::<prop::sample::Index>()) {
        let (b_in, b_out) = (F::from(b_in), F::from(b_out));
        let z_in = state_for(&spec, &input, b_in);
        let mut hints = linear_hints(&spec.linear(spec.zero_point), &input, &input, &layer_weights.weights, &layer_weights.bias).unwrap();
        let o = pick.index(hints.outputs.len());
        hints.outputs[o].y += F::ONE;
        let step = LayerStep::new_unchecked(spec, witness(input, layer_weights, b_in, b_out), hints);
        prop_assert!(!synth(&step, &z_in, None).0);
    }
}

#[test]
fn wrong_layer_counter_rejected() {
    let m = SyntheticModel::conv(1, 4, 3, 1, 0).unwrap();
    let input = m.default_input();
    let z_in = state_for(&m.spec(), &input, F::ZERO);
    let step = LayerStep::new(m.spec(), witness(input, m.layer(0), F::ZERO, F::ZERO)).unwrap();
    let mut expected = step.next_state(&z_in);
    assert!(synth(&step, &z_in, Some(&expected)).0);
    expected.layer += 1;
    assert!(!synth(&step, &z_in, Some(&expected)).0);
}

#[test]
fn synthetic_stack_chains_to_the_model_commitment() {
    // Chain real steps through the circuit and compare the final state with the reference
    // executor and with the model commitment a model holder computes.
    let m = SyntheticModel::conv(2, 6, 3, 5, 9).unwrap();
    let blinds: Vec<F> = (0..=5u64).map(|i| if i == 5 { F::ZERO } else { F::from(1000 + i) }).collect();
    let mut run = NativeRun::start(BlockSpec::layer(m.spec()), m.default_input(), blinds[0], m.salt()).unwrap();
    let mut z = run.state();
    let mut acts = m.default_input();
    for (i, p) in m.iter().enumerate() {
        let w = LayerWitness { salt: m.salt(), ..witness(acts, p.clone(), blinds[i], blinds[i + 1]) };
        let step = LayerStep::new(m.spec(), w).unwrap();
        let next = step.next_state(&z);
        let (sat, out) = synth(&step, &z, Some(&next));
        assert!(sat, "layer {i}");
        assert_eq!(out, next.to_vec());
        run.apply(&p, blinds[i + 1]).unwrap();
        assert_eq!(run.state(), next);
        acts = step.output().to_vec();
        z = next;
    }
    assert_eq!(model_commitment(m.salt(), m.iter().map(|p| (m.spec().update_at(0, 1), p))), z.model);
    assert_eq!(z.layer, 5);
}

#[test]
fn the_model_commitment_binds_the_architecture() {
    // The same weights under another shift, residual multiplier, pooling or image size
    // compute another function: each must change the commitment, natively and in the
    // circuit (a step claiming the other spec's state is unsatisfiable).
    let m = SyntheticModel::conv(2, 6, 3, 1, 9).unwrap();
    let (spec, layer_weights) = (m.spec(), m.layer(0));
    let input = m.default_input();
    let mut variants = vec![spec];
    let mut shifted = spec;
    shifted.requant = RequantSpec::new(spec.requant.shift() + 1, spec.requant.acc_bits()).unwrap();
    variants.push(shifted);
    let mut residual = spec;
    residual.skip = 1;
    variants.push(residual);
    let mut pooled = spec;
    pooled.pool = Some(Pool::square(PoolKind::Max, 2));
    variants.push(pooled);
    let mut averaged = spec;
    averaged.pool = Some(Pool::square(PoolKind::Average, 2));
    variants.push(averaged);
    let digests: Vec<F> = variants.iter().map(|s| s.digest_at(0, 1)).collect();
    for i in 0..digests.len() {
        for j in i + 1..digests.len() {
            assert_ne!(digests[i], digests[j], "specs {i} and {j}");
        }
    }
    let commitments: Vec<F> =
        variants.iter().map(|s| model_commitment(m.salt(), [(s.update_at(0, 1), layer_weights.clone())])).collect();
    assert!(commitments.windows(2).all(|w| w[0] != w[1]));
    // Same weights, another image size (the `--size 28` / `--size 14` pair in small).
    let wide = SyntheticModel::conv(2, 7, 3, 1, 9).unwrap();
    assert_eq!(wide.layer(0), layer_weights);
    assert_ne!(model_commitment(m.salt(), [(wide.spec().update_at(0, 1), layer_weights.clone())]), commitments[0]);

    let z_in =
        StepState { layer: 0, model: fold_ml_circuits::commit::model_start(), ..state_for(&m.spec(), &input, F::ONE) };
    let step = LayerStep::new(spec, witness(input, layer_weights, F::ONE, F::from(2))).unwrap();
    let honest = step.next_state(&z_in);
    assert!(synth(&step, &z_in, Some(&honest)).0);
    let claimed = StepState {
        model: fold_ml_circuits::commit::model_update_native(
            z_in.model,
            &shifted.update_at(0, 1),
            F::from(SALT),
            &m.layer(0).weights,
            &m.layer(0).bias,
        ),
        ..honest
    };
    assert!(!synth(&step, &z_in, Some(&claimed)).0, "a step cannot absorb another spec than its own");
}

/// Pinned sizes: a change that grows a step is a red test, not a surprise.
#[test]
fn pinned_constraint_counts() {
    let zator = StepCost::of(&SyntheticModel::zator(1, 0).spec());
    let dense = |w: usize| {
        StepCost::of(&LayerSpec::new(
            LinearShape::Dense(DenseShape { inputs: w, outputs: w }),
            RequantSpec::new(8, 24).unwrap(),
        ))
    };
    assert_eq!((zator.constraints, zator.variables, zator.macs), (48_556, 48_334, 26_896));
    // packed products: 7 positions of a channel share each weight (one per MAC unpacked)
    assert_eq!(zator.products, 3_936);
    assert!(zator.products as f64 / zator.macs as f64 <= 0.2);
    assert_eq!(dense(16).constraints, 5_287);
    assert_eq!(dense(32).constraints, 13_376);
    assert_eq!(dense(64).constraints, 45_206);
    // requantize+ReLU+clamp: accumulator bits + 3 per output
    assert_eq!(zator.requant, 2 * 28 * 28 * (16 + 3));
}

fn multi_case() -> impl Strategy<Value = (LayerSpec, usize, Vec<u8>, Vec<LayerWeights>, u64, u64)> {
    (small_specs().prop_filter("stackable", |s| s.num_inputs() == s.num_outputs()), 2usize..4).prop_flat_map(
        |(spec, k)| {
            let layer = (
                proptest::collection::vec(-40i8..40, spec.shape.num_weights()),
                proptest::collection::vec(-2000i32..2000, spec.shape.num_biases()),
            )
                .prop_map(|(weights, bias)| LayerWeights { weights, bias });
            (
                Just(spec),
                Just(k),
                proptest::collection::vec(0u8..=127, spec.shape.num_inputs()),
                proptest::collection::vec(layer, 1..=k),
                any::<u64>(),
                any::<u64>(),
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, rng_seed: proptest::test_runner::RngSeed::Fixed(12), ..ProptestConfig::default() })]

    /// k layers per step, some slots disabled: the same state as applying the layers one
    /// by one, and the disabled slots change nothing.
    #[test]
    fn multi_layer_step_matches_native((spec, k, input, layers, b_in, b_out) in multi_case()) {
        let (b_in, b_out) = (F::from(b_in), F::from(b_out));
        let z_in = state_for(&spec, &input, b_in);
        let w = StepWitness { input: input.clone(), layers: layers.clone(), blind_in: b_in, blind_out: b_out, salt: F::from(SALT) };
        let step = LayerStep::multi(BlockSpec::layer(spec), k, w).unwrap();
        let expected = step.next_state(&z_in);
        let (sat, out) = synth(&step, &z_in, Some(&expected));
        prop_assert!(sat);
        prop_assert_eq!(&out, &expected.to_vec());
        // the reference executor, one layer at a time
        let mut run = NativeRun::start(BlockSpec::layer(spec), input, b_in, F::from(SALT)).unwrap();
        for p in &layers {
            run.apply(p, b_out).unwrap();
        }
        prop_assert_eq!(run.activations(), step.output());
        prop_assert_eq!(run.state().activations, expected.activations);
        prop_assert_eq!(expected.layer, z_in.layer + layers.len() as u64);
        let model = layers.iter().fold(z_in.model, |acc, p| {
            fold_ml_circuits::commit::model_update_native(acc, &spec.update_at(0, 1), F::from(SALT), &p.weights, &p.bias)
        });
        prop_assert_eq!(expected.model, model);
        // claiming one more (or one fewer) layer is unsatisfiable
        let mut wrong = expected;
        wrong.layer += 1;
        prop_assert!(!synth(&step, &z_in, Some(&wrong)).0);
    }
}

#[test]
fn multi_layer_step_pinned_counts() {
    // Layers after the first in a step skip the input range checks and the two
    // commitments, and pay one selection per activation.
    let conv = SyntheticModel::zator(1, 0).spec();
    let one = StepCost::of_step(&BlockSpec::layer(conv), 1);
    let two = StepCost::of_step(&BlockSpec::layer(conv), 2);
    assert_eq!(two.constraints, 84_594);
    assert!(two.constraints < 2 * one.constraints);
    let dense16 =
        LayerSpec::new(LinearShape::Dense(DenseShape { inputs: 16, outputs: 16 }), RequantSpec::new(8, 24).unwrap());
    assert_eq!(StepCost::of_step(&BlockSpec::layer(dense16), 8).constraints, 37_578);
}

#[test]
fn chains_of_segments_are_checked_in_one_place() {
    use fold_ml_circuits::layer::check_chain;
    let rq = RequantSpec::new(8, 24).unwrap();
    let dense = |i: usize, o: usize| {
        BlockSpec::layer(LayerSpec::new(LinearShape::Dense(DenseShape { inputs: i, outputs: o }), rq))
    };
    let (a, b, c) = (dense(4, 4), dense(4, 2), dense(3, 3));
    assert!(check_chain([(&a, 3, 1), (&b, 1, 1)]).is_ok());
    assert!(check_chain(std::iter::empty()).is_err(), "no segment");
    assert!(check_chain([(&a, 0, 1)]).is_err(), "no layer");
    assert!(check_chain([(&b, 2, 1)]).is_err(), "stacked layers of different sizes");
    assert!(check_chain([(&b, 1, 2)]).is_err(), "stacked in a step");
    let err = check_chain([(&a, 1, 1), (&c, 1, 1)]).unwrap_err().to_string();
    assert!(err.contains("segment 1") && err.contains("[3, 1, 1]"), "{err}");
    // the same tensor, committed one row per link on one side only
    let rows = BlockSpec::layer(a.stages[0]).with_row_links([true, false]);
    assert!(check_chain([(&a, 1, 1), (&rows, 1, 1)]).is_ok(), "one row: one link either way");
    let conv = |links| {
        let c = fold_ml_circuits::gadgets::conv::ConvShape::same(1, 1, 4, 4, 3);
        BlockSpec::layer(LayerSpec::new(LinearShape::Conv(c), rq)).with_row_links(links)
    };
    let err = check_chain([(&conv([false; 2]), 1, 1), (&conv([true; 2]), 1, 1)]).unwrap_err().to_string();
    assert!(err.contains("link_rows"), "a tensor committed whole read by rows: {err}");
    // A two-layer block: whole blocks only, one block per step.
    let block = BlockSpec::new(vec![a.stages[0], a.stages[0]]);
    assert!(check_chain([(&block, 4, 2)]).is_ok());
    assert!(check_chain([(&block, 3, 2)]).is_err(), "half a block");
    assert!(check_chain([(&block, 4, 4)]).is_err(), "two blocks in a step");
}

/// The packing targets on a conv with 144 multiply-accumulates per output: at most 0.2
/// product constraints and 0.5 constraints in all per MAC (1.2 unpacked).
#[test]
fn packed_conv_costs_under_half_a_constraint_per_mac() {
    let shape = LinearShape::Conv(fold_ml_circuits::gadgets::conv::ConvShape::same(16, 16, 16, 16, 3));
    let cost = StepCost::of(&LayerSpec::new(shape, RequantSpec::new(8, 24).unwrap()));
    assert_eq!((cost.constraints, cost.macs, cost.products), (255_859, 541_696, 86_768));
    assert!(cost.products as f64 / cost.macs as f64 <= 0.2);
    assert!(cost.per_mac() <= 0.5);
}

/// Every kind of link, its groups of one channel (which divide any number of channels).
fn every_links() -> impl Strategy<Value = Links> {
    prop_oneof![Just(Links::Whole), Just(Links::Rows), Just(Links::Channels(1)), Just(Links::RowGroups(1))]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(13), ..ProptestConfig::default() })]

    /// The planner sizes a step it will not synthesize from [`StepCost::rough`]: it is an
    /// upper estimate however the input and output are linked (a reader of the rows of
    /// groups of channels a pair writes hashes one short link per row of a group).
    #[test]
    fn the_rough_estimate_bounds_the_step_for_every_link((spec, links) in (small_specs(), [every_links(), every_links()])) {
        let block = BlockSpec::layer(spec).with_links(links);
        prop_assume!(block.input_layout().check().is_ok() && block.output_layout().check().is_ok());
        let exact = StepCost::of_step(&block, 1).constraints;
        prop_assert!(StepCost::rough(&block) >= exact, "{links:?}: rough {} < {exact}", StepCost::rough(&block));
    }
}

/// The rough estimate counts the links' hashes: read as rows of single channels, a
/// 64-channel input of 7 rows costs 448 hashes more than read whole, and the estimate
/// grows by about what the step does.
#[test]
fn the_rough_estimate_counts_the_input_links() {
    let head = ConvShape { kernel: [7, 7], pads: [0; 4], ..ConvShape::same(64, 3, 7, 7, 1) };
    let block = BlockSpec::layer(LayerSpec::new(LinearShape::Conv(head), RequantSpec::new(8, 23).unwrap()));
    let size = |links: Links| {
        let b = block.clone().with_links([links, Links::Whole]);
        (StepCost::rough(&b), StepCost::of_step(&b, 1).constraints)
    };
    let ((rough_whole, whole), (rough_groups, groups)) = (size(Links::Whole), size(Links::RowGroups(1)));
    assert!(groups > whole + 448 * 200, "{groups} vs {whole}");
    let (grew, grew_exact) = (rough_groups - rough_whole, groups - whole);
    assert!(grew >= grew_exact && grew <= grew_exact + grew_exact / 10, "{grew} vs {grew_exact}");
}
