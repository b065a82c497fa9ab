//! Tiles of a block (one or two layers) as the tile tests build and run them: the witness,
//! every tile in order, the untiled step they must match, and an IVC-style run.

use super::synth_z;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::layer::{BlockSpec, LayerStep, LayerWeights, StepWitness};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::tile_spec;
use fold_ml_circuits::tile::{GroupStep, PairSpec, PairStep, TileSpec, TileState, TileStep, TileWitness};
use fold_ml_circuits::F;
use nova_snark::traits::circuit::StepCircuit;
use proptest::prelude::*;

/// The model salt of the tile tests.
pub const SALT: u64 = 77;
/// The blinds of the tiled block's input and output commitments.
pub const BLINDS: (u64, u64) = (5, 6);

/// The tile witness of a block's layers (one, or two).
pub fn witness(layers: &[LayerWeights]) -> TileWitness {
    TileWitness {
        layer_weights: layers[0].clone(),
        second_weights: layers.get(1).cloned(),
        blind_in: F::from(BLINDS.0),
        blind_out: F::from(BLINDS.1),
        salt: F::from(SALT),
        cache: Default::default(),
    }
}

/// Every tile of the block, in order.
pub fn tiles(spec: TileSpec, input: &[u8], layers: &[LayerWeights]) -> Vec<TileStep> {
    (0..spec.tiles()).map(|t| TileStep::new(spec, t, input, witness(layers)).unwrap()).collect()
}

/// The same block untiled, its tensors committed one row per link.
pub fn untiled(spec: &TileSpec, input: &[u8], layers: &[LayerWeights]) -> LayerStep {
    untiled_block(spec.block(), input, layers)
}

/// `block` as one untiled step, under the test blinds and salt.
pub fn untiled_block(block: BlockSpec, input: &[u8], layers: &[LayerWeights]) -> LayerStep {
    let stages = block.num_stages();
    let w = StepWitness {
        input: input.to_vec(),
        layers: layers.to_vec(),
        blind_in: F::from(BLINDS.0),
        blind_out: F::from(BLINDS.1),
        salt: F::from(SALT),
    };
    LayerStep::multi(block, stages, w).unwrap()
}

/// A tile step of either kind, with its native transition.
pub trait Tile: StepCircuit<F> {
    /// The state after the tile, computed natively.
    fn next(&self, z: &TileState) -> TileState;
}

impl Tile for TileStep {
    fn next(&self, z: &TileState) -> TileState {
        self.next_state(z)
    }
}

impl Tile for PairStep {
    fn next(&self, z: &TileState) -> TileState {
        self.next_state(z)
    }
}

/// Every tile of a pair of grids (both passes), in order.
pub fn pair_tiles(spec: PairSpec, input: &[u8], layers: &[LayerWeights]) -> Vec<PairStep> {
    let w = witness(layers);
    (0..spec.tiles()).map(|t| PairStep::new(spec, t, input, &w).unwrap()).collect()
}

/// A pair with a random block input and random weights of both layers.
pub fn pair_case(spec: PairSpec) -> impl Strategy<Value = (PairSpec, Vec<u8>, Vec<LayerWeights>)> {
    let block = spec.block();
    let layers = super::block_weights(&block);
    (Just(spec), proptest::collection::vec(0u8..=127, block.num_inputs()), layers)
}

/// The boundary state before a pair: `layer` layers and the model commitment `model` so
/// far, the block input committed as the pair reads it under the test blind.
pub fn pair_start(spec: &PairSpec, input: &[u8], (layer, model): (u64, u64)) -> TileState {
    let layout = spec.block().input_layout();
    TileState::boundary(StepState {
        layer,
        model: F::from(model),
        activations: activation_commitment_native(input, layout, F::from(BLINDS.0)),
    })
}

impl Tile for GroupStep {
    fn next(&self, z: &TileState) -> TileState {
        self.next_state(z)
    }
}

/// Runs tiles in order through the circuit (each from the state the previous one output,
/// as IVC does): whether each was satisfied, and the final state.
pub fn run<T: Tile>(steps: &[T], z0: TileState) -> (Vec<bool>, TileState) {
    let mut z = z0;
    let mut sat = Vec::new();
    for s in steps {
        let (ok, values) = synth_z(s, &z.to_vec(), None);
        let next = TileState::from_z(&values).unwrap();
        assert_eq!(next, s.next(&z), "circuit and native transition differ");
        sat.push(ok);
        z = next;
    }
    (sat, z)
}

/// The boundary state before a tiled block: `layer` layers and the model commitment
/// `model` so far, the input committed as the spec reads it under the test blind.
pub fn start(spec: &TileSpec, input: &[u8], (layer, model): (u64, u64)) -> TileState {
    let layout = spec.block().input_layout();
    TileState::boundary(StepState {
        layer,
        model: F::from(model),
        activations: activation_commitment_native(input, layout, F::from(BLINDS.0)),
    })
}

/// A tiled block, its input and its layers' weights.
pub type Case = (TileSpec, Vec<u8>, Vec<LayerWeights>);

/// The blocks `blocks` draws, each with a tiling of 1 to 5 rows the circuit accepts, random
/// inputs and weights.
pub fn cases(blocks: impl Strategy<Value = BlockSpec>) -> impl Strategy<Value = Case> {
    (blocks, 1usize..6).prop_filter_map("a tiling that fits", |(b, r)| tile_spec(&b, r).ok()).prop_flat_map(|spec| {
        let block = spec.block();
        let layers = super::block_weights(&block);
        (Just(spec), proptest::collection::vec(0u8..=127, block.num_inputs()), layers)
    })
}

/// The constraints of a step synthesized on blank inputs (its shape).
pub fn constraints<C: StepCircuit<F>>(step: &C) -> usize {
    use nova_snark::frontend::{num::AllocatedNum, shape_cs::ShapeCS, ConstraintSystem};
    let mut cs = ShapeCS::<nova_snark::provider::PallasEngine>::new();
    let z: Vec<AllocatedNum<F>> = (0..step.arity())
        .map(|i| AllocatedNum::alloc(cs.namespace(|| format!("z{i}")), || Ok(F::from(0))).unwrap())
        .collect();
    step.synthesize(&mut cs, &z).unwrap();
    cs.num_constraints()
}
