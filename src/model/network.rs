//! The fold-ml model file: a quantized network as a sequence of *segments*, each a run of
//! layers sharing one [`LayerSpec`] (so one step circuit and one set of public parameters).
//! Written by `fold-ml import`, read by `fold-ml prove --model`. It holds the weights and
//! the commitment salt: it is as secret as the model itself.
//!
//! Scales: an input `x` is quantized to `clamp(round(x / input.scale), 0, 127)`; the
//! output activations `q` stand for `(q - output.zero_point) · output.scale` (the logits);
//! the predicted class is the first index of the largest output.

use crate::artifact::{self, Kind};
use crate::error::Error;
use fold_ml_circuits::layer::{BlockSpec, LayerWeights};
use fold_ml_circuits::quant::{QuantError, ACT_MAX};
use fold_ml_circuits::reference::run_native;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::write_atomic_with;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Model file format version.
pub const NETWORK_VERSION: u16 = 5;

/// The zero point of signed hidden activations and logits (the outputs of a layer without
/// a ReLU).
pub const SIGNED_ZERO_POINT: u8 = 64;

/// How real inputs map to input activations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputQuant {
    /// The input tensor's shape without the batch dimension (`[C, H, W]` or `[N]`).
    pub shape: Vec<usize>,
    /// Real value of one activation step.
    pub scale: f32,
    /// The activation that stands for 0 (0 for non-negative inputs; a signed input, e.g. a
    /// normalized image, is shifted by its calibrated zero point).
    pub zero_point: u8,
}

/// How output activations map back to real outputs (logits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputQuant {
    /// Real value of one activation step.
    pub scale: f32,
    /// The activation that stands for 0 (64 for signed logits, 0 after a ReLU).
    pub zero_point: u8,
}

/// A run of blocks of one spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The spec every block of the segment shares (a plain layer is a block of one).
    pub spec: BlockSpec,
    /// The layers, in order (whole blocks).
    pub layers: Vec<LayerWeights>,
    /// Where the layers came from (ONNX node names), for messages.
    pub origin: Vec<String>,
}

/// A quantized network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// [`NETWORK_VERSION`].
    pub version: u16,
    /// A name for messages and default job directories.
    pub name: String,
    /// Input quantization.
    pub input: InputQuant,
    /// Output dequantization.
    pub output: OutputQuant,
    /// Salt of the model commitment (secret).
    #[serde(with = "crate::field::hex_serde")]
    pub salt: F,
    /// The segments, input to output.
    pub segments: Vec<Segment>,
}

pub use fold_ml_verify::statement::argmax;

impl Network {
    /// Total depth.
    pub fn num_layers(&self) -> usize {
        self.segments.iter().map(|s| s.layers.len()).sum()
    }

    /// Input activations.
    pub fn num_inputs(&self) -> usize {
        self.segments.first().map_or(0, |s| s.spec.num_inputs())
    }

    /// Output activations.
    pub fn num_outputs(&self) -> usize {
        self.segments.last().map_or(0, |s| s.spec.num_outputs())
    }

    /// Checks the structure: non-empty segments whose sizes chain, stackable runs, and
    /// tensors of the right lengths.
    pub fn check(&self) -> Result<(), String> {
        if self.version != NETWORK_VERSION {
            return Err(format!("model format version {} is not the supported {NETWORK_VERSION}", self.version));
        }
        if self.segments.is_empty() {
            return Err("the model has no segment".into());
        }
        if self.input.shape.iter().product::<usize>() != self.num_inputs() {
            return Err(format!("input shape {:?} does not match the first layer's input size", self.input.shape));
        }
        if !(self.input.scale > 0.0 && self.input.scale.is_finite() && self.output.scale > 0.0) {
            return Err("scales must be positive".into());
        }
        fold_ml_circuits::layer::check_chain(
            self.segments.iter().map(|s| (&s.spec, s.layers.len(), s.spec.num_stages())),
        )
        .map_err(|e| e.to_string())?;
        // The first layer reads the model input with the input's zero point.
        let first = &self.segments[0];
        if first.spec.zero_point() != self.input.zero_point {
            return Err(format!(
                "the input's zero point {} is not the first layer's {}",
                self.input.zero_point,
                first.spec.zero_point()
            ));
        }
        for (j, seg) in self.segments.iter().enumerate() {
            let stages = &seg.spec.stages;
            // The first layer reads the input's zero point; later layers read 0 (after a ReLU)
            // or 64 (the signed output of a layer without one).
            let odd = (0..seg.layers.len())
                .any(|i| (j, i) != (0, 0) && ![0, SIGNED_ZERO_POINT].contains(&stages[i % stages.len()].zero_point));
            if odd {
                return Err(format!(
                    "segment {j}: a hidden layer's zero point must be 0 or {SIGNED_ZERO_POINT} (a signed tensor)"
                ));
            }
            for (i, l) in seg.layers.iter().enumerate() {
                let spec = &stages[i % stages.len()];
                let expected = [spec.num_weights(), spec.shape.num_biases()];
                if [l.weights.len(), l.bias.len()] != expected {
                    return Err(format!(
                        "segment {j} layer {i}: {} weights and {} biases, the spec has {} and {}",
                        l.weights.len(),
                        l.bias.len(),
                        expected[0],
                        expected[1]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Quantizes a real input (in the ONNX model's layout) to input activations.
    pub fn quantize_input(&self, x: &[f32]) -> Result<Vec<u8>, String> {
        if x.len() != self.num_inputs() {
            return Err(format!(
                "has {} values; the model takes {} ({:?})",
                x.len(),
                self.num_inputs(),
                self.input.shape
            ));
        }
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                if !v.is_finite() {
                    return Err(format!("value {i} is not a finite number"));
                }
                let q = (v / self.input.scale).round() + f32::from(self.input.zero_point);
                Ok(q.clamp(0.0, f32::from(ACT_MAX)) as u8)
            })
            .collect()
    }

    /// Runs the quantized network natively (the exact integer maths the proof covers).
    pub fn run_native(&self, input: &[u8]) -> Result<Vec<u8>, QuantError> {
        self.segments.iter().try_fold(input.to_vec(), |a, s| run_native(&s.spec, &a, &s.layers))
    }

    /// The real outputs that output activations stand for.
    pub fn dequantize_output(&self, q: &[u8]) -> Vec<f32> {
        q.iter().map(|&v| (f32::from(v) - f32::from(self.output.zero_point)) * self.output.scale).collect()
    }

    /// Checksum of the model's encoding: what a job records to recognize its model.
    pub fn digest(&self) -> [u8; 32] {
        artifact::checksum(&artifact::encode(Kind::Model, &[0; 32], self).unwrap_or_default())
    }

    /// Writes the model file (owner-only: it holds the weights and the salt).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        write_atomic_with(path, true, |out| artifact::write_to(Kind::Model, &[0; 32], self, out))?;
        Ok(())
    }

    /// Reads and checks a model file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let net: Self = artifact::read_from(Kind::Model, &[0; 32], path)?;
        net.check().map_err(|reason| Error::bad_input(path.display().to_string(), reason))?;
        Ok(net)
    }
}
