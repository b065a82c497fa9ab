//! Multiplexed steps: a step is exactly its selected slot's step (next state, schedule), a
//! network of three differently shaped segments runs through one multiplexed circuit —
//! in the constraint system and folded by Nova — and the wrong witnesses the selectors
//! and the state gating exist for are rejected: no slot selected (a skipped step), a
//! non-boolean mix of two slots, the selected slot on a state other than the public one,
//! a whole-block slot in the middle of a tiled layer, and a plan other than the verifier's.

use ff::Field;
use fold_ml_circuits::commit::{activation_commitment_native, model_start};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{block_native, BlockSpec, LayerSpec, LayerStep, LayerWeights, StepWitness};
use fold_ml_circuits::mux::{schedule_of, MuxSlots, MuxState, MuxStep};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::spec::check_chain;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::{Step, Tiling};
use fold_ml_circuits::tile::{TileState, TileWitness};
use fold_ml_circuits::F;
use nova_snark::provider::{ipa_pc, PallasEngine, VestaEngine};
use nova_snark::spartan::snark::RelaxedR1CSSNARK;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use proptest::prelude::*;

mod common;
use common::synth_z;

const SALT: u64 = 77;
/// Blinds of the input, and of the outputs of the three blocks.
const BLINDS: [u64; 4] = [5, 6, 7, 8];

fn rq(shift: u32) -> RequantSpec {
    RequantSpec::new(shift, 24).unwrap()
}

/// conv 1→2 3×3 on 6×6 (row-tiled, 2 rows per tile) → conv 2→2 3×3 (whole) → dense 72→3.
fn blocks(shifts: [u32; 3]) -> [BlockSpec; 3] {
    let conv1 = LayerSpec::new(LinearShape::Conv(ConvShape::same(1, 2, 6, 6, 3)), rq(shifts[0]));
    let conv2 = LayerSpec::new(LinearShape::Conv(ConvShape::same(2, 2, 6, 6, 3)), rq(shifts[1]));
    // a dense layer over the 2×6×6 tensor, as a convolution with a 6×6 kernel
    let dense = ConvShape { kernel: [6, 6], pads: [0; 4], ..ConvShape::same(2, 3, 6, 6, 1) };
    let dense = LayerSpec::new(LinearShape::Conv(dense), rq(shifts[2]));
    [
        BlockSpec::layer(conv1).with_row_links([true, true]),
        BlockSpec::layer(conv2).with_row_links([true, false]),
        BlockSpec::layer(dense),
    ]
}

const TILING: Tiling = Tiling::Rows(2);

fn slots(b: &[BlockSpec; 3]) -> MuxSlots {
    MuxSlots::new(&[(b[0].clone(), 1, Some(TILING)), (b[1].clone(), 1, None), (b[2].clone(), 1, None)]).unwrap()
}

fn whole(block: &BlockSpec, input: Vec<u8>, w: &LayerWeights, blinds: (u64, u64)) -> Step {
    let witness = StepWitness {
        input,
        layers: vec![w.clone()],
        blind_in: F::from(blinds.0),
        blind_out: F::from(blinds.1),
        salt: F::from(SALT),
    };
    Step::Layer(LayerStep::multi(block.clone(), 1, witness).unwrap())
}

/// The network's steps, unmultiplexed (slot index, step), and the start state.
fn steps(b: &[BlockSpec; 3], input: &[u8], w: &[LayerWeights]) -> (Vec<(usize, Step)>, StepState) {
    let tw = TileWitness {
        layer_weights: w[0].clone(),
        second_weights: None,
        blind_in: F::from(BLINDS[0]),
        blind_out: F::from(BLINDS[1]),
        salt: F::from(SALT),
        cache: Default::default(),
    };
    let mut out = Vec::new();
    for t in 0..TILING.tiles(&b[0]) {
        out.push((0, Step::tile(&b[0], TILING, t, input, &tw).unwrap()));
    }
    let a1 = block_native(&b[0], input, &w[..1]).unwrap();
    let a2 = block_native(&b[1], &a1, &w[1..2]).unwrap();
    out.push((1, whole(&b[1], a1, &w[1], (BLINDS[1], BLINDS[2]))));
    out.push((2, whole(&b[2], a2, &w[2], (BLINDS[2], BLINDS[3]))));
    let start = StepState {
        layer: 0,
        model: model_start(),
        activations: activation_commitment_native(input, b[0].input_layout(), F::from(BLINDS[0])),
    };
    (out, start)
}

/// The state after `step` of slot `slot`, as its own segment computes it.
fn unmultiplexed(step: &Step, z: &TileState) -> TileState {
    match step {
        Step::Layer(s) => TileState::boundary(s.next_state(&z.base)),
        tiled => tiled.tile_transition(z).unwrap().2,
    }
}

fn weights(b: &[BlockSpec; 3]) -> impl Strategy<Value = Vec<LayerWeights>> {
    let per_block: Vec<_> = b.iter().map(|b| common::block_weights(b).remove(0)).collect();
    per_block
}

fn case() -> impl Strategy<Value = ([u32; 3], Vec<u8>, Vec<LayerWeights>)> {
    [3u32..7, 3u32..7, 3u32..7].prop_flat_map(|shifts| {
        let b = blocks(shifts);
        (Just(shifts), proptest::collection::vec(0u8..=127, 36), weights(&b))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]

    #[test]
    fn each_multiplexed_step_is_its_slots_step((shifts, input, w) in case()) {
        let b = blocks(shifts);
        check_chain(b.iter().map(|b| (b, 1, 1))).unwrap();
        let slots = slots(&b);
        let (steps, start) = steps(&b, &input, &w);
        let mut z = MuxState::boundary(start, F::ZERO);
        let mut plain = TileState::boundary(start);
        for (slot, step) in &steps {
            let mux = MuxStep::new(&slots, *slot, step.clone()).unwrap();
            let (ok, values) = synth_z(&mux, &z.to_vec(), None);
            prop_assert!(ok, "slot {slot}");
            let next = mux.next_state(&z);
            prop_assert_eq!(MuxState::from_z(&values), Some(next));
            plain = unmultiplexed(step, &plain);
            prop_assert_eq!(next.tile, plain);
            z = next;
        }
        let plan: Vec<usize> = steps.iter().map(|(j, _)| *j).collect();
        prop_assert_eq!(z.schedule, schedule_of(plan.iter().copied()));
        prop_assert!(z.tile.is_boundary());
        prop_assert_eq!(z.tile.base.layer, 3);
        let output = block_native(&b[2], &block_native(&b[1], &block_native(&b[0], &input, &w[..1]).unwrap(), &w[1..2]).unwrap(), &w[2..]).unwrap();
        prop_assert_eq!(z.tile.base.activations, activation_commitment_native(&output, b[2].output_layout(), F::from(BLINDS[3])));
        let updates = b.iter().flat_map(BlockSpec::updates).zip(&w);
        prop_assert_eq!(z.tile.base.model, fold_ml_circuits::reference::model_commitment(F::from(SALT), updates));
    }
}

/// A fixed case: the blocks, their slots, the steps, the start state, the weights and the
/// input.
#[allow(clippy::type_complexity)]
fn fixed() -> ([BlockSpec; 3], MuxSlots, Vec<(usize, Step)>, StepState, Vec<LayerWeights>, Vec<u8>) {
    let b = blocks([4, 5, 6]);
    let w: Vec<LayerWeights> = b
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let s = &b.stages[0];
            let weights = (0..s.num_weights()).map(|k| ((k * 7 + i * 3) % 19) as i8 - 9).collect();
            let bias = (0..s.shape.num_biases()).map(|k| (k as i32 * 11) % 40 - 20).collect();
            LayerWeights { weights, bias }
        })
        .collect();
    let input: Vec<u8> = (0..36).map(|k| (k * 5 % 128) as u8).collect();
    let slots = slots(&b);
    let (steps, start) = steps(&b, &input, &w);
    (b, slots, steps, start, w, input)
}

#[test]
fn no_slot_selected_is_rejected() {
    // Every slot on its own blank: every slot's constraints hold, the next state would be
    // all zeros — a skipped step — and only "one slot selected" refuses it.
    let (_, slots, steps, start, ..) = fixed();
    let z = MuxState::boundary(start, F::ZERO);
    let honest = MuxStep::new(&slots, 0, steps[0].1.clone()).unwrap();
    assert!(synth_z(&honest, &z.to_vec(), None).0);
    let blanks = MuxStep::unchecked(&slots, vec![F::ZERO; 3], vec![None; 3], blank_inputs(&slots));
    assert!(!synth_z(&blanks, &z.to_vec(), None).0);
}

/// The states the slots' blanks open (what an unselected slot runs on).
fn blank_inputs(slots: &MuxSlots) -> Vec<Option<Vec<F>>> {
    (0..slots.len()).map(|j| Some(slots.opens(j).to_vec())).collect()
}

#[test]
fn a_non_boolean_mix_of_two_slots_is_rejected() {
    // Two slots of the same shape but different shifts both open the dense layer's input:
    // selectors (2, -1) sum to one and make the slot code 2·1 - 1·2 = 0; only the bit
    // constraints refuse the mix.
    let b = blocks([4, 5, 6]);
    let other = blocks([4, 5, 3]);
    let slots = MuxSlots::new(&[(b[2].clone(), 1, None), (other[2].clone(), 1, None)]).unwrap();
    let input: Vec<u8> = (0..72).map(|k| (k * 3 % 128) as u8).collect();
    let w = LayerWeights { weights: (0..216).map(|k| (k % 13) as i8 - 6).collect(), bias: vec![3, -4, 5] };
    let steps = [whole(&b[2], input.clone(), &w, (7, 8)), whole(&other[2], input.clone(), &w, (7, 8))];
    let base = StepState {
        layer: 2,
        model: F::from(99),
        activations: activation_commitment_native(&input, b[2].input_layout(), F::from(7)),
    };
    let z = MuxState::boundary(base, F::from(1234));
    for (j, s) in steps.iter().enumerate() {
        assert!(synth_z(&MuxStep::new(&slots, j, s.clone()).unwrap(), &z.to_vec(), None).0);
    }
    let mix = MuxStep::unchecked(
        &slots,
        vec![F::from(2), -F::ONE],
        steps.iter().cloned().map(Some).collect(),
        vec![None, None],
    );
    assert!(!synth_z(&mix, &z.to_vec(), None).0);
}

#[test]
fn the_selected_slot_runs_on_the_public_state_only() {
    // The dense step opens its input under the honest state; fed a private copy with
    // another layer count (its own constraints still hold), the gating refuses it.
    let (_, slots, steps, start, ..) = fixed();
    let mut z = MuxState::boundary(start, F::ZERO);
    for (j, s) in &steps[..steps.len() - 1] {
        z = MuxStep::new(&slots, *j, s.clone()).unwrap().next_state(&z);
    }
    let (j, last) = steps.last().unwrap().clone();
    assert!(synth_z(&MuxStep::new(&slots, j, last.clone()).unwrap(), &z.to_vec(), None).0);
    let mut own = z.tile.base;
    own.layer += 5;
    let mut inputs = blank_inputs(&slots);
    inputs[j] = Some(own.to_vec());
    let mut selectors = vec![F::ZERO; 3];
    selectors[j] = F::ONE;
    let mut steps_of = vec![None; 3];
    steps_of[j] = Some(last);
    let forged = MuxStep::unchecked(&slots, selectors, steps_of, inputs);
    let (ok, values) = synth_z(&forged, &z.to_vec(), None);
    assert!(!ok);
    assert_eq!(values[0], F::from(own.layer + 1), "the forged step would have advanced from its own state");
}

#[test]
fn a_whole_block_slot_cannot_run_inside_a_tiled_layer() {
    // Slot 1 here is the first convolution whole: it opens the same input commitment as
    // the tiled slot 0, which the state keeps until slot 0's last tile. After tile 0 the
    // tile slots are non-zero; the whole-block step is valid on the base state alone,
    // and only "z_k zero if selected" refuses it.
    let (b, _, steps, start, w, input) = fixed();
    let whole_first = b[0].clone().with_row_links([true, false]);
    let slots = MuxSlots::new(&[(b[0].clone(), 1, Some(TILING)), (whole_first.clone(), 1, None)]).unwrap();
    let z0 = MuxState::boundary(start, F::ZERO);
    let z1 = MuxStep::new(&slots, 0, steps[0].1.clone()).unwrap().next_state(&z0);
    assert!(!z1.tile.is_boundary());
    let step = whole(&whole_first, input, &w[0], (BLINDS[0], 9));
    let Step::Layer(layer) = &step else { unreachable!() };
    assert!(common::synth(layer, &z1.tile.base, None).0, "the whole block alone accepts the base state");
    let mux = MuxStep::new(&slots, 1, step).unwrap();
    assert!(synth_z(&mux, &z0.to_vec(), None).0, "and the multiplexed one between layers");
    assert!(!synth_z(&mux, &z1.to_vec(), None).0);
}

type E1 = PallasEngine;
type E2 = VestaEngine;
type S1 = RelaxedR1CSSNARK<E1, ipa_pc::EvaluationEngine<E1>>;
type S2 = RelaxedR1CSSNARK<E2, ipa_pc::EvaluationEngine<E2>>;

#[test]
fn a_network_of_three_shapes_folds_as_one_ivc_bound_to_its_plan() {
    let (_, slots, steps, start, ..) = fixed();
    let blank = Step::Mux(Box::new(MuxStep::blank(&slots)));
    let pp = nova_snark::nova::PublicParams::<E1, E2, Step>::setup(&blank, &*S1::ck_floor(), &*S2::ck_floor()).unwrap();
    let z0 = MuxState::boundary(start, F::ZERO);
    let mut z = z0;
    let mut snark = None;
    for (j, s) in &steps {
        let mux = MuxStep::new(&slots, *j, s.clone()).unwrap();
        z = mux.next_state(&z);
        let step = Step::Mux(Box::new(mux));
        let rs = snark.get_or_insert_with(|| nova_snark::nova::RecursiveSNARK::new(&pp, &step, &z0.to_vec()).unwrap());
        rs.prove_step(&pp, &step).unwrap();
    }
    let rs = snark.unwrap();
    let zn = rs.verify(&pp, steps.len(), &z0.to_vec()).unwrap();
    assert_eq!(zn, z.to_vec());
    let plan: Vec<usize> = steps.iter().map(|(j, _)| *j).collect();
    assert_eq!(z.schedule, schedule_of(plan.iter().copied()));
    // Another plan of the same length (the dense slot before the whole conv) is another
    // schedule: a verifier that expects it rejects this proof.
    let mut swapped = plan.clone();
    let n = swapped.len();
    swapped.swap(n - 1, n - 2);
    assert_ne!(schedule_of(swapped), z.schedule);
}

/// A basic block of 3×3 convolutions on `c` channels over `h×w` with a residual.
fn basic_block(c: usize, (h, w): (usize, usize)) -> [LayerSpec; 2] {
    let conv1 = ConvShape::same(c, c, h, w, 3);
    let first = LayerSpec::new(LinearShape::Conv(conv1), rq(7));
    let second = LayerSpec { skip: 2, ..LayerSpec::new(LinearShape::Conv(conv1), rq(7)) };
    [first, second]
}

/// Whether the blank multiplexed step of `shape` (slot 0) beside a whole dense layer
/// (slot 1) is satisfied with either selected: each slot's blank opens the state it
/// claims to, selected on the public state or unselected on its own.
fn blanks_satisfy(shape: (BlockSpec, usize, Option<Tiling>)) -> [bool; 2] {
    let other = blocks([4, 5, 6])[2].clone();
    let slots = MuxSlots::new(&[shape, (other, 1, None)]).unwrap();
    let z = |j: usize| {
        let mut z = slots.opens(j).to_vec();
        z.resize(fold_ml_circuits::tile::TILE_ARITY, F::ZERO);
        z.push(F::from(42));
        z
    };
    let first = synth_z(&MuxStep::blank(&slots), &z(0), None).0;
    let inputs = vec![Some(slots.opens(0).to_vec()), None];
    let second = MuxStep::unchecked(&slots, vec![F::ZERO, F::ONE], vec![None, None], inputs);
    [first, synth_z(&second, &z(1), None).0]
}

#[test]
fn every_kind_of_slot_has_a_satisfiable_blank() {
    use fold_ml_circuits::spec::Links;
    use fold_ml_circuits::step::{group_spec, pair_spec};
    let [first, second] = basic_block(32, (2, 2));
    let chunk = first.chunks().channels.max(second.chunks().channels);
    let group = BlockSpec::new(vec![first, second]).with_links([Links::Rows, Links::Channels(chunk)]);
    group_spec(&group, chunk).unwrap();
    assert_eq!(blanks_satisfy((group, 2, Some(Tiling::Channels(chunk)))), [true; 2], "channel groups");
    let pair = BlockSpec::new(vec![first, second]).with_links([Links::Rows, Links::RowGroups(chunk)]);
    pair_spec(&pair, chunk).unwrap();
    assert_eq!(blanks_satisfy((pair, 2, Some(Tiling::Pair(chunk)))), [true; 2], "pairs of grids");
    let grid = BlockSpec::layer(first).with_links([Links::Rows, Links::RowGroups(chunk)]);
    assert_eq!(blanks_satisfy((grid, 1, Some(Tiling::Grid(chunk)))), [true; 2], "grids");
    let [first, second] = basic_block(16, (4, 4));
    let rows = BlockSpec::new(vec![first, second]).with_row_links([true, true]);
    assert_eq!(blanks_satisfy((rows, 2, Some(Tiling::Rows(1)))), [true; 2], "row bands of a block");
    let whole = BlockSpec::new(vec![first, second]);
    assert_eq!(blanks_satisfy((whole, 2, None)), [true; 2], "a whole block");
}
