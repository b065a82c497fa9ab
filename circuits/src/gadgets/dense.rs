//! Dense (matrix-vector) layer geometry: `out[o] = bias[o] + Σ_i W[o][i]·in[i]`.

use serde::{Deserialize, Serialize};

/// Shape of a dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseShape {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
}

impl DenseShape {
    /// Weights, row-major: index `o·inputs + i`.
    pub fn num_weights(&self) -> usize {
        self.inputs * self.outputs
    }
    /// The taps of output `o` as `(weight index, input index)`.
    pub fn taps(&self, o: usize) -> Vec<(usize, usize)> {
        (0..self.inputs).map(|i| (o * self.inputs + i, i)).collect()
    }
}
