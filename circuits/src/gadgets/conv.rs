//! 2-D convolution geometry, as ONNX's `Conv` with dilation 1: a `kh×kw` kernel, strides
//! `(sh, sw)`, explicit zero padding (top, left, bottom, right: any, including none and
//! asymmetric), and `groups` (depthwise when `groups = C_in = C_out`). Tensors are
//! channel-major (`(c·H + y)·W + x`); weights are in ONNX's `[C_out, C_in/groups, kh, kw]`
//! order; output `(co, oy, ox)` reads input rows `oy·sh - top + ky` and columns
//! `ox·sw - left + kx` of the channels of its group.
//!
//! Padding cells are not witness cells at all: a tap that falls outside the image is left
//! out of the output's linear combination, so its contribution is the constant zero fixed
//! by the circuit's structure. No prover can assign it (Zator's padding was a free witness).
//! Strides and groups are the same kind of fact: which input cell a tap reads is a constant
//! of the circuit, never a witness.

use serde::{Deserialize, Serialize};

/// Largest size, stride, padding or channel count of any axis.
pub const MAX_DIMENSION: usize = 1 << 20;
/// Largest number of elements of any tensor of a layer (input, output or weights).
pub const MAX_TENSOR: u128 = 1 << 32;

/// Shape of a convolution layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvShape {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal strides.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right (ONNX's `pads` order: begins, then ends).
    pub pads: [usize; 4],
    /// Channel groups: input and output channels split into this many independent groups.
    pub groups: usize,
}

impl ConvShape {
    /// A same-size convolution: odd `k×k` kernel, stride 1, padding `(k-1)/2` on every side.
    pub fn same(channels_in: usize, channels_out: usize, height: usize, width: usize, k: usize) -> Self {
        let p = k.saturating_sub(1) / 2;
        Self { channels_in, channels_out, height, width, kernel: [k, k], stride: [1, 1], pads: [p; 4], groups: 1 }
    }

    /// Checks what the type cannot: non-zero sizes, channels divisible by the groups,
    /// kernels that fit the padded image, and padding thinner than the kernel (so every
    /// window reads at least one cell of the image).
    pub fn check(&self) -> Result<(), String> {
        let [kh, kw] = self.kernel;
        let [top, left, bottom, right] = self.pads;
        let sizes =
            [self.channels_in, self.channels_out, self.height, self.width, kh, kw, self.stride[0], self.stride[1]];
        if sizes.contains(&0) || self.groups == 0 {
            return Err(format!("a convolution needs non-zero sizes, strides and groups: {self:?}"));
        }
        if !self.channels_in.is_multiple_of(self.groups) || !self.channels_out.is_multiple_of(self.groups) {
            return Err(format!(
                "{} groups do not divide {} input and {} output channels",
                self.groups, self.channels_in, self.channels_out
            ));
        }
        if top >= kh || bottom >= kh || left >= kw || right >= kw {
            return Err(format!("padding {:?} is not thinner than the {kh}×{kw} kernel", self.pads));
        }
        if let Some(v) = [self.channels_in, self.channels_out, self.height, self.width, kh, kw, self.groups]
            .into_iter()
            .chain(self.stride)
            .find(|&v| v > MAX_DIMENSION)
        {
            return Err(format!("a dimension of {v} is larger than {MAX_DIMENSION}"));
        }
        // Padding is below the kernel and every size below 2^20 now: nothing below overflows.
        if self.height + top + bottom < kh || self.width + left + right < kw {
            return Err(format!("the {kh}×{kw} kernel does not fit the padded {}×{} image", self.height, self.width));
        }
        let (oh, ow) = self.out_size();
        let cells = |a: usize, b: usize, c: usize| (a as u128) * (b as u128) * (c as u128);
        let largest = [
            cells(self.channels_in, self.height, self.width),
            cells(self.channels_out, oh, ow),
            cells(self.channels_out, self.group_inputs(), kh * kw),
        ];
        if largest.iter().any(|&n| n > MAX_TENSOR) {
            return Err(format!("a tensor of this convolution has more than {MAX_TENSOR} elements"));
        }
        Ok(())
    }

    /// Output height and width (ONNX's floor mode: a window must fit the padded image).
    pub fn out_size(&self) -> (usize, usize) {
        let [top, left, bottom, right] = self.pads;
        let span = |n: usize, a: usize, b: usize, k: usize, s: usize| (n + a + b).saturating_sub(k) / s.max(1) + 1;
        (
            span(self.height, top, bottom, self.kernel[0], self.stride[0]),
            span(self.width, left, right, self.kernel[1], self.stride[1]),
        )
    }

    /// Output dimensions `(C_out, H_out, W_out)`.
    pub fn output_dims(&self) -> (usize, usize, usize) {
        let (h, w) = self.out_size();
        (self.channels_out, h, w)
    }

    /// Inputs, channel-major: index `(c·H + y)·W + x`.
    pub fn num_inputs(&self) -> usize {
        self.channels_in * self.height * self.width
    }

    /// Outputs, channel-major like the inputs.
    pub fn num_outputs(&self) -> usize {
        let (c, h, w) = self.output_dims();
        c * h * w
    }

    /// Input channels each output channel reads (`C_in / groups`).
    pub fn group_inputs(&self) -> usize {
        self.channels_in / self.groups.max(1)
    }

    /// Weights, index `((co·C_in/groups + ci)·kh + ky)·kw + kx`.
    pub fn num_weights(&self) -> usize {
        self.channels_out * self.fan_in()
    }

    /// Taps of an output whose window lies inside the image.
    pub fn fan_in(&self) -> usize {
        self.group_inputs() * self.kernel[0] * self.kernel[1]
    }

    /// One bias per output channel.
    pub fn bias_of(&self, o: usize) -> usize {
        let (_, h, w) = self.output_dims();
        o / (h * w).max(1)
    }

    /// The non-padding taps of output `o` as `(weight index, input index)`.
    pub fn taps(&self, o: usize) -> Vec<(usize, usize)> {
        let (_, oh, ow) = self.output_dims();
        let (co, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
        let ([kh, kw], [sh, sw], [top, left, ..]) = (self.kernel, self.stride, self.pads);
        let (h, w, cig) = (self.height, self.width, self.group_inputs());
        let first_channel = co / (self.channels_out / self.groups) * cig;
        let mut taps = Vec::with_capacity(self.fan_in());
        for ci in 0..cig {
            for ky in 0..kh {
                let Some(iy) = (oy * sh + ky).checked_sub(top).filter(|&iy| iy < h) else {
                    continue;
                };
                for kx in 0..kw {
                    let Some(ix) = (ox * sw + kx).checked_sub(left).filter(|&ix| ix < w) else {
                        continue;
                    };
                    taps.push((((co * cig + ci) * kh + ky) * kw + kx, ((first_channel + ci) * h + iy) * w + ix));
                }
            }
        }
        taps
    }
}

/// Native convolution over an explicitly padded image of `x = a - zero_point` (every
/// padding cell holds `pad_value`; 0 is the only honest one), written independently of
/// [`ConvShape::taps`]:
/// the reference the tap lists are tested against, and what a prover who filled the
/// padding with something else would claim.
pub fn conv_accumulators_with_padding(
    shape: &ConvShape,
    zero_point: u8,
    input: &[u8],
    weights: &[i8],
    bias: &[i32],
    pad_value: i64,
) -> Vec<i64> {
    let (h, w) = (shape.height, shape.width);
    let ([kh, kw], [sh, sw], [top, left, bottom, right]) = (shape.kernel, shape.stride, shape.pads);
    let (ph, pw) = (h + top + bottom, w + left + right);
    // The padded image, channel by channel.
    let padded: Vec<Vec<i64>> = (0..shape.channels_in)
        .map(|c| {
            let mut img = vec![pad_value; ph * pw];
            for y in 0..h {
                for x in 0..w {
                    img[(y + top) * pw + x + left] = i64::from(input[(c * h + y) * w + x]) - i64::from(zero_point);
                }
            }
            img
        })
        .collect();
    let (c_out, oh, ow) = shape.output_dims();
    let per_group = c_out / shape.groups;
    let cig = shape.group_inputs();
    let mut out = Vec::with_capacity(shape.num_outputs());
    for co in 0..c_out {
        let group = co / per_group;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = i64::from(bias[co]);
                for ci in 0..cig {
                    let img = &padded[group * cig + ci];
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let wv = i64::from(weights[((co * cig + ci) * kh + ky) * kw + kx]);
                            acc += wv * img[(oy * sh + ky) * pw + ox * sw + kx];
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_onnx() {
        // LeNet-5's second conv: 6×14×14, 5×5, no padding → 16×10×10.
        let c = ConvShape { pads: [0; 4], ..ConvShape::same(6, 16, 14, 14, 5) };
        assert_eq!(c.output_dims(), (16, 10, 10));
        // ResNet's stride-2 3×3 with padding 1: 16×32×32 → 32×16×16.
        let c = ConvShape { stride: [2, 2], ..ConvShape::same(16, 32, 32, 32, 3) };
        assert_eq!(c.output_dims(), (32, 16, 16));
        // A 1×1 stride-2 projection shortcut: 16×32×32 → 32×16×16.
        let c = ConvShape { stride: [2, 2], ..ConvShape::same(16, 32, 32, 32, 1) };
        assert_eq!(c.output_dims(), (32, 16, 16));
        // Asymmetric padding (TensorFlow's SAME with stride 2 on an even image): 1 at the end.
        let c = ConvShape { stride: [2, 2], pads: [0, 0, 1, 1], ..ConvShape::same(3, 8, 8, 8, 3) };
        assert_eq!(c.output_dims(), (8, 4, 4));
        // Rectangular kernel and image.
        let c = ConvShape { kernel: [1, 7], pads: [0, 3, 0, 3], ..ConvShape::same(2, 2, 5, 9, 1) };
        assert_eq!(c.output_dims(), (2, 5, 9));
        assert_eq!(c.fan_in(), 14);
    }

    #[test]
    fn depthwise_outputs_read_only_their_channel() {
        let c = ConvShape { groups: 4, ..ConvShape::same(4, 4, 3, 3, 3) };
        assert!(c.check().is_ok());
        assert_eq!(c.num_weights(), 4 * 9);
        for o in 0..c.num_outputs() {
            let channel = o / 9;
            assert!(c.taps(o).iter().all(|&(wi, ii)| ii / 9 == channel && wi / 9 == channel), "output {o}");
        }
    }

    #[test]
    fn bad_shapes_are_refused() {
        let ok = ConvShape::same(4, 8, 6, 6, 3);
        assert!(ok.check().is_ok());
        for bad in [
            ConvShape { groups: 3, ..ok },
            ConvShape { groups: 0, ..ok },
            ConvShape { stride: [0, 1], ..ok },
            ConvShape { pads: [3, 0, 0, 0], ..ok },
            ConvShape { kernel: [9, 3], pads: [1, 1, 1, 1], ..ok },
            ConvShape { channels_in: 0, ..ok },
            ConvShape { height: usize::MAX, ..ok },
            ConvShape { channels_in: 1 << 20, channels_out: 1 << 20, ..ok },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
