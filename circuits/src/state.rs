//! The IVC state carried from step to step, and why it is sufficient.
//!
//! `z = [layer, model, activations]`:
//! - `layer`: how many layers have been applied (`z0 = 0`, `zN = N`); each step adds one.
//! - `model`: the running model commitment. `z0` holds `H(TAG_MODEL_IV, salt)`; each step
//!   replaces it with `H(TAG_MODEL_LAYER, model, pack8(w + 128), biases)` of the weights it
//!   actually multiplied with (range-checked, so the packing is injective). `zN` is
//!   therefore a commitment to every layer's weights in order, which the holder of the
//!   model file recomputes natively ([`crate::commit::model_update_native`]).
//! - `activations`: `H(TAG_ACTIVATIONS, blind, pack7(a))` of the current activations.
//!   Each step opens it (its private input activations and blind must hash to `z_in`'s
//!   value, or the step is unsatisfiable) and commits to its outputs under a fresh blind.
//!
//! Sufficiency: by induction over the steps, and collision resistance of Poseidon, a valid
//! IVC proof from `z0 = [0, iv, C_in]` to `zN = [N, M, C_out]` shows that there are
//! activations `a_0` opening `C_in`, weights committed by `M` from `iv`, and `a_N` opening
//! `C_out` with `a_N = layer_N(… layer_1(a_0))` under the quantized semantics of
//! [`crate::quant`]. The verifier checks `zN` against the public statement: `N`, the model
//! commitment, and `C_out = H(TAG_ACTIVATIONS, 0, pack7(output))` for the public output.
//! Blinds keep the input (and intermediate) commitments hiding; the last step uses blind 0
//! so the output can be published and checked.

use crate::F;

/// Number of field elements in the IVC state.
pub const ARITY: usize = 3;

/// The IVC state of [`crate::layer::LayerStep`], natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepState {
    /// Layers applied so far.
    pub layer: u64,
    /// Running model commitment.
    pub model: F,
    /// Commitment to the current activations.
    pub activations: F,
}

impl StepState {
    /// The state as Nova's `z` vector.
    pub fn to_vec(&self) -> Vec<F> {
        vec![F::from(self.layer), self.model, self.activations]
    }
}
