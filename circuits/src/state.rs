//! The IVC state carried from step to step, and why it is sufficient.
//!
//! `z = [layer, model, activations]`:
//! - `layer`: how many layers have been applied (`z0 = 0`, `zN = N`); each step adds one.
//! - `model`: the running model commitment. The first segment's `z0` holds the public
//!   constant [`crate::commit::model_start`] (the verifier sets it, not the statement); each
//!   layer replaces it with `H(tag(|w|, |b|), spec_digest, salt, model, pack8(w + 128), b)`
//!   of the weights it actually multiplied with (range-checked, so the packing is
//!   injective), where `spec_digest` is a constant of the step circuit
//!   ([`crate::layer::LayerSpec::digest`]) and `salt` the model's secret salt. `zN` is
//!   therefore a commitment to every layer's spec and weights in order — the function,
//!   not just the weights — which the holder of the model file recomputes natively
//!   ([`crate::reference::model_commitment`]).
//! - `activations`: `H(TAG_ACTIVATIONS, blind, pack7(a))` of the current activations.
//!   Each step opens it (its private input activations and blind must hash to `z_in`'s
//!   value, or the step is unsatisfiable) and commits to its outputs under a fresh blind.
//!
//! Sufficiency: by induction over the steps, and collision resistance of Poseidon, a valid
//! IVC proof from `z0 = [0, start, C_in]` to `zN = [N, M, C_out]` shows that there are
//! activations `a_0` opening `C_in`, `N` layers whose specs and weights `M` commits to
//! from the fixed `start`, and `a_N` opening `C_out` with `a_N = layer_N(… layer_1(a_0))`
//! under the quantized semantics of [`crate::quant`]. Because `start` is a constant, a
//! proof of layers `k+1..N` only (starting from the prefix's running commitment) cannot
//! reach `M`: that would need a Poseidon collision. The verifier checks `zN` against the
//! public statement: `N`, the model commitment, and the output commitment (which a public
//! output opens together with its published blind).
//!
//! Hiding: every commitment takes a secret: activations a random blind per step (the
//! output's too, so a prefix proof's output stays hidden), the model's running value the
//! salt in every update, so no public value (the final model commitment, the running
//! commitments between segments) can be recomputed from candidate weights.

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
