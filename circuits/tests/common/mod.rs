//! Helpers shared by the step circuit tests.

#![allow(dead_code)]

pub mod tiles;

use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::layer::{BlockSpec, LayerStep, LayerWeights, StepWitness};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use nova_snark::frontend::{num::AllocatedNum, test_cs::TestConstraintSystem, ConstraintSystem};
use nova_snark::traits::circuit::StepCircuit;
use proptest::prelude::*;

/// Random weights (int8 in [-30, 30)) and biases (in [-300, 300)) for every layer of a block.
pub fn block_weights(block: &BlockSpec) -> Vec<BoxedStrategy<LayerWeights>> {
    block
        .stages
        .iter()
        .map(|s| {
            (
                proptest::collection::vec(-30i8..30, s.num_weights()),
                proptest::collection::vec(-300i32..300, s.shape.num_biases()),
            )
                .prop_map(|(weights, bias)| LayerWeights { weights, bias })
                .boxed()
        })
        .collect()
}

/// A block, an input to it and weights for its layers.
pub type BlockCase = (BlockSpec, Vec<u8>, Vec<LayerWeights>);

/// Each of `blocks` with a random input (in [0, 127]) and random weights.
pub fn block_cases(blocks: impl Strategy<Value = BlockSpec>) -> impl Strategy<Value = BlockCase> {
    blocks.prop_flat_map(|b| {
        let layers = block_weights(&b);
        (Just(b.clone()), proptest::collection::vec(0u8..=127, b.num_inputs()), layers)
    })
}

/// A block step's witness: `input`, `layers`, input and output blinded by 3 and 5, the
/// model commitment salted with `salt`.
pub fn block_witness(input: &[u8], layers: &[LayerWeights], salt: u64) -> StepWitness {
    StepWitness {
        input: input.to_vec(),
        layers: layers.to_vec(),
        blind_in: F::from(3),
        blind_out: F::from(5),
        salt: F::from(salt),
    }
}

/// The public state before a block step at layer `layer` that reads `input` (blinded by 3,
/// as [`block_witness`] blinds it), with model commitment 99.
pub fn state_before(block: &BlockSpec, input: &[u8], layer: u64) -> StepState {
    let activations = activation_commitment_native(input, block.input_layout(), F::from(3));
    StepState { layer, model: F::from(99), activations }
}

/// Synthesizes `step` from public `z_in`; if `expected` is given, the outputs are bound to
/// it as a verifier binds `z_out` to the statement. Returns (satisfied, z_out values).
pub fn synth(step: &LayerStep, z_in: &StepState, expected: Option<&StepState>) -> (bool, Vec<F>) {
    synth_z(step, &z_in.to_vec(), expected.map(StepState::to_vec).as_deref())
}

/// [`synth`] of any step circuit, from Nova's state vector.
pub fn synth_z<C: StepCircuit<F>>(step: &C, z_in: &[F], expected: Option<&[F]>) -> (bool, Vec<F>) {
    let mut cs = TestConstraintSystem::<F>::new();
    let z: Vec<_> = z_in
        .iter()
        .copied()
        .enumerate()
        .map(|(i, v)| AllocatedNum::alloc_input(cs.namespace(|| format!("z{i}")), || Ok(v)).unwrap())
        .collect();
    let out = step.synthesize(&mut cs, &z).unwrap();
    if let Some(e) = expected {
        for (i, (o, &v)) in out.iter().zip(e).enumerate() {
            cs.enforce(
                || format!("z_out{i} public"),
                |lc| lc + o.get_variable(),
                |lc| lc + TestConstraintSystem::<F>::one(),
                |lc| lc + (v, TestConstraintSystem::<F>::one()),
            );
        }
    }
    (cs.is_satisfied(), out.iter().map(|o| o.get_value().unwrap()).collect())
}
