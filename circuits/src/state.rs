//! The IVC state carried from step to step, and why it is sufficient.
//!
//! `z = [layer, model, activations]`:
//! - `layer`: how many layers have been applied (`z0 = 0`, `zN = N`); each step adds one.
//! - `model`: the running model commitment. The first segment's `z0` holds the public
//!   constant [`crate::commit::model_start`] (the verifier sets it, not the statement); each
//!   layer replaces it with `H(tag(|w|, |b|), spec_digest, salt, model, pack8(w + 128), b)`
//!   of the weights it actually multiplied with (range-checked, so the packing is
//!   injective; a layer of more than 4,096 weights chains that hash over chunks of its
//!   output channels, [`crate::commit::Chunks`]), where `spec_digest` is a constant of the step circuit
//!   ([`crate::layer::LayerSpec::digest`]) and `salt` the model's secret salt. `zN` is
//!   therefore a commitment to every layer's spec and weights in order — the function,
//!   not just the weights — which the holder of the model file recomputes natively
//!   ([`crate::reference::model_commitment`]).
//! - `activations`: a commitment to the current activations under a blind: the hash chain
//!   over their rows of [`crate::commit::activation_commitment`] (one link for the whole
//!   tensor, or one per row next to a tiled layer, [`crate::commit::Layout`]). Each step
//!   opens it (its private input activations and blind must hash to `z_in`'s value, or the
//!   step is unsatisfiable) and commits to its outputs under a fresh blind. A tiled
//!   layer's steps carry five more slots inside the layer ([`crate::tile::TileState`]).
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
#[cfg(test)]
use ff::Field;

/// A field element as a `u64`, if it is one (a counter in the state).
pub fn small(x: &F) -> Option<u64> {
    let bytes = ff::PrimeField::to_repr(x);
    let (low, high) = bytes.as_ref().split_at(8);
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    Some(u64::from_le_bytes(low.try_into().expect("8 bytes")))
}

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
    /// The state before a model's first layer: no layer applied, the public model start,
    /// and the commitment to the input activations.
    pub fn initial(input_commitment: F) -> Self {
        Self { layer: 0, model: crate::commit::model_start(), activations: input_commitment }
    }

    /// The state from Nova's `z` vector; `None` unless it has [`ARITY`] elements and a layer
    /// count that fits 64 bits.
    pub fn from_z(z: &[F]) -> Option<Self> {
        let [layer, model, activations] = z else { return None };
        Some(Self { layer: small(layer)?, model: *model, activations: *activations })
    }

    /// The state as Nova's `z` vector.
    pub fn to_vec(&self) -> Vec<F> {
        vec![F::from(self.layer), self.model, self.activations]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_z_inverts_to_vec_and_rejects_malformed_states() {
        let s = StepState { layer: 513, model: F::from(7), activations: F::from(9) };
        assert_eq!(StepState::from_z(&s.to_vec()), Some(s));
        assert_eq!(StepState::from_z(&[F::ONE, F::ONE]), None);
        let huge = F::from(u64::MAX) + F::ONE;
        assert_eq!(StepState::from_z(&[huge, F::ONE, F::ONE]), None);
        assert_eq!(StepState::initial(F::from(3)).model, crate::commit::model_start());
    }
}
