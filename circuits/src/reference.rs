//! Native reference executor for a stack of layers: the same integer maths and the same
//! commitments as the circuits, with no constraint system. The prover uses it to produce
//! each step's witness and the public statement; tests hold the circuits to it.

use crate::commit::{activation_commitment_native, model_start, model_update_native};
use crate::layer::{layer_native, LayerSpec, LayerWeights};
use crate::quant::{check_activations, QuantError};
use crate::state::StepState;
use crate::F;

/// A native run in progress: current activations and IVC state.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeRun {
    spec: LayerSpec,
    salt: F,
    activations: Vec<u8>,
    state: StepState,
}

impl NativeRun {
    /// Starts from `input` committed under `blind`, with the model's `salt`.
    pub fn start(spec: LayerSpec, input: Vec<u8>, blind: F, salt: F) -> Result<Self, QuantError> {
        spec.shape.check_lengths(input.len(), spec.shape.num_weights(), spec.shape.num_biases())?;
        check_activations(&input)?;
        let state = StepState::initial(activation_commitment_native(&input, blind));
        Ok(Self { spec, salt, activations: input, state })
    }

    /// Applies one layer; its output is committed under `blind_out`.
    pub fn apply(&mut self, layer_weights: &LayerWeights, blind_out: F) -> Result<(), QuantError> {
        let out = layer_native(&self.spec, &self.activations, layer_weights)?;
        self.state = StepState {
            layer: self.state.layer + 1,
            model: model_update_native(
                self.state.model,
                self.spec.digest(),
                self.salt,
                &layer_weights.weights,
                &layer_weights.bias,
            ),
            activations: activation_commitment_native(&out, blind_out),
        };
        self.activations = out;
        Ok(())
    }

    /// Current activations.
    pub fn activations(&self) -> &[u8] {
        &self.activations
    }

    /// Current IVC state.
    pub fn state(&self) -> StepState {
        self.state
    }
}

/// Output activations of a whole stack (no commitments).
pub fn run_native<'a>(
    spec: &LayerSpec,
    input: &[u8],
    layers: impl IntoIterator<Item = &'a LayerWeights>,
) -> Result<Vec<u8>, QuantError> {
    check_activations(input)?;
    layers.into_iter().try_fold(input.to_vec(), |a, p| layer_native(spec, &a, p))
}

/// The model commitment of a whole model: the running commitment after absorbing every
/// layer (its spec and its parameters, in order) under the model's `salt`, starting from
/// the public [`model_start`].
pub fn model_commitment<P: std::borrow::Borrow<LayerWeights>>(
    salt: F,
    layers: impl IntoIterator<Item = (LayerSpec, P)>,
) -> F {
    layers.into_iter().fold(model_start(), |acc, (spec, p)| {
        model_update_native(acc, spec.digest(), salt, &p.borrow().weights, &p.borrow().bias)
    })
}
