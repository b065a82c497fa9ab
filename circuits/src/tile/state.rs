//! The IVC state of a tiled layer's steps.

use crate::state::StepState;
use crate::F;
use ff::Field;

/// Number of field elements in a tiled layer's IVC state.
pub const TILE_ARITY: usize = 8;

/// `z = [layer, model, activations, tile, prev_model, in_chain, halo, out_chain]`: the
/// untiled state ([`StepState`]) and five slots that live only inside a layer. Between
/// layers (a segment's first and last state) they are all zero ([`Self::boundary`]).
///
/// - `tile`: the next tile's index (0 at a layer's start).
/// - `prev_model`: the model commitment before the layer (every tile re-derives `model`
///   from it with its own weights, which pins them to the first tile's).
/// - `in_chain`: the input chain over the input rows absorbed so far.
/// - `halo`: a commitment to the input rows the next tile shares with this one.
/// - `out_chain`: the output chain over the output rows produced so far.
/// - `activations`: the layer's input commitment until its last tile, which checks
///   `in_chain` against it and replaces it with `out_chain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileState {
    /// Layers applied, model commitment, activation commitment.
    pub base: StepState,
    /// The next tile of the current layer.
    pub tile: u64,
    /// Model commitment before the current layer (0 between layers).
    pub prev_model: F,
    /// Input chain so far (0 between layers).
    pub in_chain: F,
    /// Commitment to the rows the next tile shares (0 between layers).
    pub halo: F,
    /// Output chain so far (0 between layers).
    pub out_chain: F,
}

impl TileState {
    /// The state between layers.
    pub fn boundary(base: StepState) -> Self {
        Self { base, tile: 0, prev_model: F::ZERO, in_chain: F::ZERO, halo: F::ZERO, out_chain: F::ZERO }
    }

    /// Whether this is a state between layers.
    pub fn is_boundary(&self) -> bool {
        *self == Self::boundary(self.base)
    }

    /// The state as Nova's `z` vector.
    pub fn to_vec(&self) -> Vec<F> {
        let mut z = self.base.to_vec();
        z.extend([F::from(self.tile), self.prev_model, self.in_chain, self.halo, self.out_chain]);
        z
    }

    /// The state from Nova's `z` vector; `None` unless it has [`TILE_ARITY`] elements and
    /// counters that fit 64 bits.
    pub fn from_z(z: &[F]) -> Option<Self> {
        let [layer, model, acts, tile, prev_model, in_chain, halo, out_chain] = z else { return None };
        let base = StepState::from_z(&[*layer, *model, *acts])?;
        let tile = crate::state::small(tile)?;
        Some(Self { base, tile, prev_model: *prev_model, in_chain: *in_chain, halo: *halo, out_chain: *out_chain })
    }
}
