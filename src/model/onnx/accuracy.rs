//! The float reference (tract, independent of fold-ml's own graph walk) and the accuracy of
//! a quantized network against it. Any failure is an error: a report is only ever made of
//! numbers that were actually computed.

use crate::error::{Error, OnnxError};
use crate::model::network::{argmax, Network};
use std::fmt;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// An ONNX model loaded into tract for float inference, batch 1.
pub struct TractModel {
    path: PathBuf,
    shape: Vec<usize>,
    plan: TypedRunnableModel<TypedModel>,
}

impl fmt::Debug for TractModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TractModel").field("path", &self.path).field("shape", &self.shape).finish()
    }
}

fn tract_err(path: &Path, e: impl fmt::Display) -> Error {
    Error::Onnx { path: path.into(), reason: OnnxError::Tract(e.to_string()) }
}

impl TractModel {
    /// Loads and optimizes `path` for inputs of `shape` (without the batch dimension).
    pub fn load(path: &Path, shape: &[usize]) -> Result<Self, Error> {
        let fact: Vec<usize> = std::iter::once(1).chain(shape.iter().copied()).collect();
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .and_then(|m| m.with_input_fact(0, f32::fact(&fact).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| tract_err(path, format!("{e:#}")))?;
        Ok(Self { path: path.into(), shape: shape.to_vec(), plan })
    }

    /// The model's outputs on one input (flattened).
    pub fn run(&self, input: &[f32]) -> Result<Vec<f32>, Error> {
        let fact: Vec<usize> = std::iter::once(1).chain(self.shape.iter().copied()).collect();
        let tensor = tract_ndarray::ArrayD::from_shape_vec(fact, input.to_vec()).map_err(|_| {
            Error::bad_input("input", format!("has {} values; the model takes {:?}", input.len(), self.shape))
        })?;
        let outputs =
            self.plan.run(tvec!(Tensor::from(tensor).into())).map_err(|e| tract_err(&self.path, format!("{e:#}")))?;
        let first = outputs.first().ok_or_else(|| tract_err(&self.path, "the model produced no output"))?;
        let view = first.to_array_view::<f32>().map_err(|e| tract_err(&self.path, format!("{e:#}")))?;
        Ok(view.iter().copied().collect())
    }
}

/// The float outputs of the ONNX model at `onnx` on one input, computed by tract.
pub fn tract_logits(onnx: &Path, input: &[f32]) -> Result<Vec<f32>, Error> {
    let shape = super::read_float_model(onnx)?.input_shape;
    TractModel::load(onnx, &shape)?.run(input)
}

/// How closely a quantized network follows its float model.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyReport {
    /// Inputs compared.
    pub inputs: usize,
    /// Fraction of inputs whose quantized prediction (argmax) equals the float one.
    pub top1_agreement: f64,
    /// Largest absolute difference between a dequantized output and the float output.
    pub max_logit_error: f32,
    /// Mean absolute difference over all outputs of all inputs.
    pub mean_logit_error: f32,
    /// Output scale of the network (one output step), for reading the errors.
    pub output_scale: f32,
}

impl fmt::Display for AccuracyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "top-1 agreement with the float model {:.2}% over {} inputs; logit error max {:.4} ({:.1} output steps), \
             mean {:.4}",
            100.0 * self.top1_agreement,
            self.inputs,
            self.max_logit_error,
            self.max_logit_error / self.output_scale,
            self.mean_logit_error
        )
    }
}

/// Runs `network` (quantized, natively: the integer maths the proof covers) and the float
/// ONNX model (tract) on every input, and compares them.
pub fn accuracy(network: &Network, onnx: &Path, inputs: &[Vec<f32>]) -> Result<AccuracyReport, Error> {
    if inputs.is_empty() {
        return Err(Error::bad_input("accuracy inputs", "none given"));
    }
    let tract = TractModel::load(onnx, &network.input.shape)?;
    let (mut agree, mut max_err, mut sum_err, mut count) = (0usize, 0.0f32, 0.0f64, 0usize);
    for (i, x) in inputs.iter().enumerate() {
        let reference = tract.run(x)?;
        if let Some(j) = reference.iter().position(|v| !v.is_finite()) {
            return Err(tract_err(onnx, format!("output {j} on input {i} is not a finite number")));
        }
        let q = network.quantize_input(x).map_err(|reason| Error::bad_input(format!("input {i}"), reason))?;
        let out = network.dequantize_output(&network.run_native(&q)?);
        if out.len() != reference.len() {
            return Err(Error::bad_input(
                onnx.display().to_string(),
                format!("the ONNX model gives {} outputs, the network {}", reference.len(), out.len()),
            ));
        }
        agree += usize::from(argmax(&out) == argmax(&reference));
        for (a, b) in out.iter().zip(&reference) {
            let e = (a - b).abs();
            max_err = max_err.max(e);
            sum_err += f64::from(e);
        }
        count += out.len();
    }
    Ok(AccuracyReport {
        inputs: inputs.len(),
        top1_agreement: agree as f64 / inputs.len() as f64,
        max_logit_error: max_err,
        mean_logit_error: (sum_err / count.max(1) as f64) as f32,
        output_scale: network.output.scale,
    })
}
