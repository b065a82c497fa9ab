//! 2-D convolution geometry: k×k kernel, stride 1, zero padding `(k-1)/2`, C_in → C_out.
//!
//! Padding cells are not witness cells at all: a tap that falls outside the image is left
//! out of the output's linear combination, so its contribution is the constant zero fixed
//! by the circuit's structure. No prover can assign it (Zator's padding was a free witness).

use serde::{Deserialize, Serialize};

/// Shape of a same-size convolution layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvShape {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Kernel side (odd).
    pub kernel: usize,
}

impl ConvShape {
    /// Inputs, channel-major: index `(c·H + y)·W + x`.
    pub fn num_inputs(&self) -> usize {
        self.channels_in * self.height * self.width
    }
    /// Outputs, channel-major like the inputs.
    pub fn num_outputs(&self) -> usize {
        self.channels_out * self.height * self.width
    }
    /// Weights, index `((co·C_in + ci)·k + ky)·k + kx`.
    pub fn num_weights(&self) -> usize {
        self.channels_out * self.channels_in * self.kernel * self.kernel
    }
    /// One bias per output channel.
    pub fn bias_of(&self, o: usize) -> usize {
        o / (self.height * self.width)
    }
    /// The non-padding taps of output `o` as `(weight index, input index)`.
    pub fn taps(&self, o: usize) -> Vec<(usize, usize)> {
        let (h, w, k) = (self.height, self.width, self.kernel);
        let pad = (k - 1) / 2;
        let co = o / (h * w);
        let (y, x) = ((o / w) % h, o % w);
        let mut taps = Vec::with_capacity(self.channels_in * k * k);
        for ci in 0..self.channels_in {
            for ky in 0..k {
                let Some(iy) = (y + ky).checked_sub(pad).filter(|&iy| iy < h) else {
                    continue;
                };
                for kx in 0..k {
                    let Some(ix) = (x + kx).checked_sub(pad).filter(|&ix| ix < w) else {
                        continue;
                    };
                    taps.push((((co * self.channels_in + ci) * k + ky) * k + kx, (ci * h + iy) * w + ix));
                }
            }
        }
        taps
    }
}

/// Native convolution with an explicit padding value (0 is the only honest one); used by
/// tests to build what a prover who filled the padding with something else would claim.
pub fn conv_accumulators_with_padding(
    shape: &ConvShape,
    input: &[u8],
    weights: &[i8],
    bias: &[i32],
    pad_value: i64,
) -> Vec<i64> {
    let (h, w, k) = (shape.height, shape.width, shape.kernel);
    let pad = (k - 1) as isize / 2;
    (0..shape.num_outputs())
        .map(|o| {
            let co = o / (h * w);
            let (y, x) = ((o / w) % h, o % w);
            let mut acc = i64::from(bias[co]);
            for ci in 0..shape.channels_in {
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = y as isize + ky as isize - pad;
                        let ix = x as isize + kx as isize - pad;
                        let a = if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            pad_value
                        } else {
                            i64::from(input[(ci * h + iy as usize) * w + ix as usize])
                        };
                        acc += i64::from(weights[((co * shape.channels_in + ci) * k + ky) * k + kx]) * a;
                    }
                }
            }
            acc
        })
        .collect()
}
