//! The layer step circuit: one quantized layer per Nova IVC step.
//!
//! Per step (see [`crate::state`] for the state): the private input activations are
//! range-checked to 7 bits and must open `z_in.activations`; the private weights are
//! range-checked to int8 and absorbed into the running model commitment; the layer is
//! computed at one constraint per multiply-accumulate and requantized through a full bit
//! decomposition; the outputs are committed under a fresh private blind. Nothing the
//! prover supplies is left unconstrained.

use crate::commit::{activation_commitment, activation_commitment_native, model_update, model_update_native};
use crate::gadgets::bits::{add_constant, alloc_uint, lc};
use crate::gadgets::linear::{linear_hints, linear_requant, LinearShape, OutputHint};
use crate::quant::{
    bits_le, check_activations, int_to_field, QuantError, RequantParams, ACT_BITS, WEIGHT_BITS, WEIGHT_OFFSET,
};
use crate::state::{StepState, ARITY};
use crate::F;
use ff::{Field, PrimeField};
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The public shape of a layer: its geometry and requantization. All layers folded with
/// one set of public parameters share one spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerSpec {
    /// Geometry.
    pub shape: LinearShape,
    /// Requantization.
    pub requant: RequantParams,
}

/// One layer's private parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerParams {
    /// int8 weights, in the shape's layout.
    pub weights: Vec<i8>,
    /// int32 biases, one per output channel.
    pub bias: Vec<i32>,
}

/// Everything private a step consumes.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWitness {
    /// Input activations (the previous step's outputs).
    pub input: Vec<u8>,
    /// The layer's weights and biases.
    pub params: LayerParams,
    /// Blind of the input commitment (must match the previous step's output blind).
    pub blind_in: F,
    /// Blind of the output commitment (0 for the last layer, whose output is public).
    pub blind_out: F,
}

#[derive(Debug)]
struct Inner {
    spec: LayerSpec,
    witness: LayerWitness,
    hints: Vec<OutputHint>,
    output: Vec<u8>,
}

/// A layer step circuit with its witness (cheap to clone).
#[derive(Clone, Debug)]
pub struct LayerStep(Arc<Inner>);

impl LayerStep {
    /// Validates the witness against the spec and computes the layer natively.
    pub fn new(spec: LayerSpec, witness: LayerWitness) -> Result<Self, QuantError> {
        let hints =
            linear_hints(&spec.shape, spec.requant, &witness.input, &witness.params.weights, &witness.params.bias)?;
        Ok(Self::new_unchecked(spec, witness, hints))
    }

    /// Builds a step from explicit output hints without checking them (wrong-witness tests).
    pub fn new_unchecked(spec: LayerSpec, witness: LayerWitness, hints: Vec<OutputHint>) -> Self {
        let output = hints.iter().map(|h| h.requant.y.to_repr().as_ref()[0]).collect();
        Self(Arc::new(Inner { spec, witness, hints, output }))
    }

    /// An all-zero step of the given spec, for parameter setup.
    pub fn blank(spec: LayerSpec) -> Self {
        let witness = LayerWitness {
            input: vec![0; spec.shape.num_inputs()],
            params: LayerParams { weights: vec![0; spec.shape.num_weights()], bias: vec![0; spec.shape.num_biases()] },
            blind_in: F::ZERO,
            blind_out: F::ZERO,
        };
        // All-zero tensors of the right lengths always requantize.
        Self::new(spec, witness).expect("a zero layer is valid for every spec")
    }

    /// The spec.
    pub fn spec(&self) -> &LayerSpec {
        &self.0.spec
    }

    /// The layer's output activations (computed natively).
    pub fn output(&self) -> &[u8] {
        &self.0.output
    }

    /// The state after this step, computed natively from the state before it.
    pub fn next_state(&self, z: &StepState) -> StepState {
        let w = &self.0.witness;
        StepState {
            layer: z.layer + 1,
            model: model_update_native(z.model, &w.params.weights, &w.params.bias),
            activations: activation_commitment_native(&self.0.output, w.blind_out),
        }
    }
}

/// Checks a witness's input commitment natively (what the circuit enforces).
pub fn opens(input: &[u8], blind: F, commitment: F) -> Result<bool, QuantError> {
    check_activations(input)?;
    Ok(activation_commitment_native(input, blind) == commitment)
}

impl StepCircuit<F> for LayerStep {
    fn arity(&self) -> usize {
        ARITY
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [layer, model, acts] = z else {
            return Err(SynthesisError::Unsatisfiable(format!("state arity {} != 3", z.len())));
        };
        let Inner { spec, witness, hints, .. } = &*self.0;

        // layer counter
        let next_layer = AllocatedNum::alloc(cs.namespace(|| "layer+1"), || {
            layer.get_value().map(|v| v + F::ONE).ok_or(SynthesisError::AssignmentMissing)
        })?;
        cs.enforce(
            || "layer counter",
            |lc| lc + layer.get_variable() + CS::one(),
            |lc| lc + CS::one(),
            |lc| lc + next_layer.get_variable(),
        );

        // input activations: 7-bit range checks, then they must open z_in.activations
        let input: Vec<Num<F>> = witness
            .input
            .iter()
            .enumerate()
            .map(|(i, &a)| alloc_uint(&mut cs.namespace(|| format!("in{i}")), &bits_le(a.into(), ACT_BITS)))
            .collect::<Result<_, _>>()?;
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(witness.blind_in))?;
        let opened = activation_commitment(&mut cs.namespace(|| "open input"), &input, &blind_in)?;
        cs.enforce(
            || "input opens z_in.activations",
            |lc| lc + opened.get_variable(),
            |lc| lc + CS::one(),
            |lc| lc + acts.get_variable(),
        );

        // weights: int8 range checks (w + 128 in 8 bits); biases as field elements
        let weights_unsigned: Vec<Num<F>> = witness
            .params
            .weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let u = (i64::from(w) + WEIGHT_OFFSET) as u64;
                alloc_uint(&mut cs.namespace(|| format!("w{i}")), &bits_le(u, WEIGHT_BITS))
            })
            .collect::<Result<_, _>>()?;
        let bias: Vec<AllocatedNum<F>> = witness
            .params
            .bias
            .iter()
            .enumerate()
            .map(|(i, &b)| AllocatedNum::alloc(cs.namespace(|| format!("bias{i}")), || Ok(int_to_field(b.into()))))
            .collect::<Result<_, _>>()?;
        let next_model = model_update(&mut cs.namespace(|| "model commitment"), model, &weights_unsigned, &bias)?;

        // the layer itself
        let offset = -F::from(WEIGHT_OFFSET as u64);
        let weights_lc: Vec<_> = weights_unsigned.into_iter().map(|u| lc(&add_constant::<CS>(u, offset))).collect();
        let input_lc: Vec<_> = input.iter().map(lc).collect();
        let bias_lc: Vec<_> = bias.iter().map(|b| Num::from(b.clone()).lc(F::ONE)).collect();
        let outputs = linear_requant(
            &mut cs.namespace(|| "layer"),
            &spec.shape,
            spec.requant,
            &input_lc,
            &weights_lc,
            &bias_lc,
            hints,
        )?;

        // commit to the outputs under a fresh blind
        let blind_out = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(witness.blind_out))?;
        let outputs: Vec<Num<F>> = outputs.into_iter().map(Num::from).collect();
        let next_acts = activation_commitment(&mut cs.namespace(|| "commit output"), &outputs, &blind_out)?;

        Ok(vec![next_layer, next_model, next_acts])
    }
}
