//! Deterministic synthetic models: a Zator-shaped CNN body (C channels, H×W, k×k kernels,
//! stride 1, zero padding) of any depth, generated layer by layer from a seed so that a
//! prover can stream it without ever holding the whole model.
//!
//! The weights keep the network alive at any depth: each kernel is close to the identity
//! (centre tap `2^shift ± 4` on its own channel) plus small random mixing across space and
//! channels and a small random bias. Zator's published 510-layer trace had every activation
//! at zero from layer 4 on, so its output said nothing about its input; the liveness test
//! below checks that after 512 layers a healthy share of activations is non-zero and that
//! the output still depends on the input.

use crate::gadgets::conv::ConvShape;
use crate::gadgets::dense::DenseShape;
use crate::gadgets::linear::LinearShape;
use crate::layer::{LayerSpec, LayerWeights};
use crate::quant::{QuantError, RequantSpec};
use crate::F;
use ff::Field;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Right shift of every synthetic layer (the identity tap is `2^SHIFT`).
pub const SHIFT: u32 = 6;
const CENTRE_JITTER: i64 = 4;
const CROSS_CHANNEL: i64 = 12;
const SPATIAL: i64 = 5;
const BIAS: i64 = 48;
const DENSE_OFF_DIAGONAL: i64 = 3;

/// A synthetic conv-body model, defined by its shape, depth and seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticModel {
    spec: LayerSpec,
    layers: usize,
    seed: u64,
}

impl SyntheticModel {
    /// Zator's body shape: 2 channels, 28×28, 3×3 kernels.
    pub fn zator(layers: usize, seed: u64) -> Self {
        Self::conv(2, 28, 3, layers, seed).expect("the Zator shape is valid")
    }

    /// A body of `channels` channels, `size`×`size` images and `kernel`×`kernel` kernels.
    pub fn conv(channels: usize, size: usize, kernel: usize, layers: usize, seed: u64) -> Result<Self, QuantError> {
        let shape = ConvShape::same(channels, channels, size, size, kernel);
        // Largest possible |acc|: 127 · Σ|w| + |bias|, with Σ|w| bounded by the generator.
        let max_weight_sum = (1i64 << SHIFT)
            + CENTRE_JITTER
            + CROSS_CHANNEL * (channels as i64 - 1)
            + SPATIAL * (kernel * kernel - 1) as i64 * channels as i64;
        let bound = 127 * max_weight_sum + BIAS + (1 << SHIFT) / 2;
        let acc_bits = (64 - bound.leading_zeros()) + 1;
        let requant = RequantSpec::new(SHIFT, acc_bits.max(SHIFT + 8))?;
        Ok(Self { spec: LayerSpec::new(LinearShape::Conv(shape), requant), layers, seed })
    }

    /// A dense body: `layers` square `width×width` matrix-vector layers.
    pub fn dense(width: usize, layers: usize, seed: u64) -> Result<Self, QuantError> {
        let max_weight_sum = (1i64 << SHIFT) + CENTRE_JITTER + DENSE_OFF_DIAGONAL * (width as i64 - 1);
        let bound = 127 * max_weight_sum + BIAS + (1 << SHIFT) / 2;
        let acc_bits = (64 - bound.leading_zeros()) + 1;
        let requant = RequantSpec::new(SHIFT, acc_bits.max(SHIFT + 8))?;
        let shape = LinearShape::Dense(DenseShape { inputs: width, outputs: width });
        Ok(Self { spec: LayerSpec::new(shape, requant), layers, seed })
    }

    /// The layer spec shared by every layer.
    pub fn spec(&self) -> LayerSpec {
        self.spec
    }

    /// Depth.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&stream.to_le_bytes());
        seed[16..].copy_from_slice(b"foldml-synthetic");
        ChaCha8Rng::from_seed(seed)
    }

    /// The model's commitment salt.
    pub fn salt(&self) -> F {
        F::random(self.rng(u64::MAX))
    }

    /// Layer `i`'s weights and biases (independent of every other layer: streamable).
    pub fn layer(&self, i: usize) -> LayerWeights {
        let mut rng = self.rng(i as u64);
        let mut uniform = |r: i64| (rng.next_u32() as i64 % (2 * r + 1)) - r;
        let c = match self.spec.shape {
            LinearShape::Conv(c) => c,
            LinearShape::Dense(d) => {
                let mut weights = Vec::with_capacity(d.num_weights());
                for o in 0..d.outputs {
                    for j in 0..d.inputs {
                        let w =
                            if o == j { (1 << SHIFT) + uniform(CENTRE_JITTER) } else { uniform(DENSE_OFF_DIAGONAL) };
                        weights.push(w as i8);
                    }
                }
                let bias = (0..d.outputs).map(|_| ((1 << SHIFT) / 2 + uniform(BIAS)) as i32).collect();
                return LayerWeights { weights, bias };
            }
        };
        let k = c.kernel[0];
        let centre = k / 2;
        let mut weights = Vec::with_capacity(c.num_weights());
        for co in 0..c.channels_out {
            for ci in 0..c.channels_in {
                for ky in 0..k {
                    for kx in 0..k {
                        let w = match (ky == centre && kx == centre, co == ci) {
                            (true, true) => (1 << SHIFT) + uniform(CENTRE_JITTER),
                            (true, false) => uniform(CROSS_CHANNEL),
                            _ => uniform(SPATIAL),
                        };
                        weights.push(w as i8);
                    }
                }
            }
        }
        let bias = (0..c.channels_out).map(|_| ((1 << SHIFT) / 2 + uniform(BIAS)) as i32).collect();
        LayerWeights { weights, bias }
    }

    /// All layers in order (generated lazily).
    pub fn iter(&self) -> impl Iterator<Item = LayerWeights> + '_ {
        (0..self.layers).map(|i| self.layer(i))
    }

    /// The built-in input: a hand-drawn-like "7" on the `size`×`size` grid, spread over
    /// the channels by [`Self::input_from_image`].
    pub fn default_input(&self) -> Vec<u8> {
        let (h, w) = self.image_size();
        self.input_from_image(&digit_seven(h, w))
    }

    /// Height and width of a one-channel image for this model (a dense model of width `W`
    /// reads the first `W` pixels of a `⌈√W⌉×⌈√W⌉` image).
    pub fn image_size(&self) -> (usize, usize) {
        match self.spec.shape {
            LinearShape::Conv(c) => (c.height, c.width),
            LinearShape::Dense(d) => {
                let side = (1..).find(|s| s * s >= d.inputs).unwrap_or(1);
                (side, side)
            }
        }
    }

    /// Pixel count of a one-channel image for this model.
    pub fn image_len(&self) -> usize {
        let (h, w) = self.image_size();
        h * w
    }

    /// Spreads a one-channel `H×W` image over the input channels: channel `ch` is the image
    /// rolled down by `3·ch` rows, so that the channels differ.
    pub fn input_from_image(&self, img: &[u8]) -> Vec<u8> {
        let c = match self.spec.shape {
            LinearShape::Conv(c) => c,
            LinearShape::Dense(d) => return img.iter().copied().take(d.inputs).collect(),
        };
        let mut out = Vec::with_capacity(c.num_inputs());
        for ch in 0..c.channels_in {
            for y in 0..c.height {
                let src = (y + c.height - (3 * ch) % c.height) % c.height;
                out.extend_from_slice(&img[src * c.width..(src + 1) * c.width]);
            }
        }
        out
    }
}

/// A "7": a top bar and a diagonal stroke, anti-aliased, values in `[0, 127]`.
pub fn digit_seven(h: usize, w: usize) -> Vec<u8> {
    let (hf, wf) = (h as f64, w as f64);
    let seg = |px: f64, py: f64, (ax, ay): (f64, f64), (bx, by): (f64, f64)| {
        let (dx, dy) = (bx - ax, by - ay);
        let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        ((px - ax - t * dx).powi(2) + (py - ay - t * dy).powi(2)).sqrt()
    };
    let bar = ((0.22 * wf, 0.2 * hf), (0.78 * wf, 0.2 * hf));
    let stem = ((0.78 * wf, 0.2 * hf), (0.4 * wf, 0.85 * hf));
    let thick = 0.06 * hf.min(wf) + 0.5;
    (0..h * w)
        .map(|i| {
            let (px, py) = ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
            let d = seg(px, py, bar.0, bar.1).min(seg(px, py, stem.0, stem.1));
            (127.0 * (1.0 - (d - thick).max(0.0)).clamp(0.0, 1.0)).round() as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::linear::linear_accumulators;
    use crate::layer::BlockSpec;
    use crate::reference::run_native;

    #[test]
    fn zator_shape_and_width() {
        let m = SyntheticModel::zator(4, 0);
        assert_eq!(m.spec().shape.num_inputs(), 2 * 28 * 28);
        assert_eq!(m.spec().shape.num_weights(), 36);
        assert_eq!(m.spec().requant.acc_bits(), 16);
        assert_eq!(m.layer(3), SyntheticModel::zator(9, 0).layer(3), "layers are independent of depth");
        assert_ne!(m.layer(3), m.layer(2));
        assert_ne!(m.layer(3), SyntheticModel::zator(4, 1).layer(3));
    }

    #[test]
    fn accumulators_never_exceed_the_declared_width() {
        // Worst case input (all 127) against real generated layers.
        for (ch, k) in [(1, 1), (2, 3), (3, 5), (4, 3)] {
            let m = SyntheticModel::conv(ch, 8, k, 16, 3).unwrap();
            let half = 1i64 << (m.spec().requant.acc_bits() - 1);
            for p in m.iter() {
                for fill in [0u8, 127] {
                    let input = vec![fill; m.spec().shape.num_inputs()];
                    for acc in linear_accumulators(&m.spec().linear(0), &input, &input, &p.weights, &p.bias) {
                        assert!((-half..half).contains(&acc));
                    }
                }
            }
        }
    }

    #[test]
    fn dense_model_stays_alive_and_in_range() {
        for w in [16, 32, 64] {
            let m = SyntheticModel::dense(w, 256, 1).unwrap();
            let layers: Vec<_> = m.iter().collect();
            let input = m.default_input();
            assert_eq!(input.len(), w);
            let out = run_native(&BlockSpec::layer(m.spec()), &input, &layers).expect("accumulators in range");
            let nonzero = out.iter().filter(|&&a| a > 0).count();
            assert!(nonzero * 4 >= w, "W={w}: only {nonzero} non-zero outputs");
            let blank = vec![0u8; w];
            assert_ne!(
                run_native(&BlockSpec::layer(m.spec()), &blank, &layers).unwrap(),
                out,
                "W={w}: output ignores the input"
            );
        }
    }

    #[test]
    fn liveness_after_512_layers() {
        let m = SyntheticModel::zator(512, 0);
        let input = m.default_input();
        let nonzero_input = input.iter().filter(|&&a| a > 0).count();
        assert!(nonzero_input > 50 && nonzero_input < input.len() / 2, "input {nonzero_input}");
        let layers: Vec<_> = m.iter().collect();
        let out = run_native(&BlockSpec::layer(m.spec()), &input, &layers).unwrap();
        let nonzero = out.iter().filter(|&&a| a > 0).count() as f64 / out.len() as f64;
        let unsaturated = out.iter().filter(|&&a| a > 0 && a < 127).count() as f64 / out.len() as f64;
        assert!(nonzero > 0.25, "only {nonzero:.3} of the outputs are non-zero");
        assert!(unsaturated > 0.10, "only {unsaturated:.3} of the outputs are strictly inside (0, 127)");
        // the output depends on the input: change one pixel, or the whole image
        let mut other = input.clone();
        other[14 * 28 + 14] = 127 - other[14 * 28 + 14];
        assert_ne!(run_native(&BlockSpec::layer(m.spec()), &other, &layers).unwrap(), out);
        let blank = vec![0u8; input.len()];
        let differing = run_native(&BlockSpec::layer(m.spec()), &blank, &layers)
            .unwrap()
            .iter()
            .zip(&out)
            .filter(|(a, b)| a != b)
            .count();
        assert!(differing > out.len() / 20, "only {differing} outputs differ for a blank input");
    }
}
