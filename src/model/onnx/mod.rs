//! Importing a float ONNX model: graph walk ([`graph`]), float calibration pass ([`float`]),
//! quantization into a [`Network`] ([`quantize`]) and its accuracy against tract
//! ([`accuracy`]).
//!
//! The import fails fast: the whole graph is checked (every unsupported operator named with
//! its node and position) before any calibration work. It never falls back to an
//! approximation it did not report.

pub mod accuracy;
pub mod float;
pub mod gpt;
pub mod graph;
mod proto;
pub mod quantize;
mod runs;

pub use accuracy::{accuracy, tract_logits, AccuracyReport, TractModel};
pub use graph::{FloatLayer, FloatLayers};
pub use quantize::{ImportReport, LayerReport};

use crate::error::{Error, OnnxError};
use crate::model::network::Network;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::read_file;
use std::path::Path;
use tract_onnx::prelude::Framework;

/// Reads an ONNX file and parses it into the float IR (cheap: no inference).
pub fn read_float_model(onnx: &Path) -> Result<FloatLayers, Error> {
    graph::parse(&read_proto(onnx)?).map_err(|reason| Error::Onnx { path: onnx.into(), reason })
}

/// Decodes the ONNX protobuf at `onnx`.
pub(crate) fn read_proto(onnx: &Path) -> Result<tract_onnx::pb::ModelProto, Error> {
    let bytes = read_file(onnx)?;
    tract_onnx::onnx()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| Error::Onnx { path: onnx.into(), reason: OnnxError::Decode(format!("{e:#}")) })
}

/// Imports the ONNX model at `onnx`: parses it, calibrates on `calibration` (real inputs in
/// the model's layout; signed ones get a zero point) and quantizes it. The salt of the model commitment is
/// random unless given (for reproducible tests).
pub fn import(onnx: &Path, calibration: &[Vec<f32>], salt: Option<F>) -> Result<(Network, ImportReport), Error> {
    let model = read_float_model(onnx)?;
    let salt = salt.unwrap_or_else(|| <F as ff::Field>::random(rand_core::OsRng));
    quantize::quantize(&model, onnx, calibration, salt)
}

/// Reads real-valued inputs from a JSON file: either `{"inputs": [[...], ...], ...}` (other
/// fields ignored) or one flat array of numbers (a single input).
pub fn read_inputs(path: &Path) -> Result<Vec<Vec<f32>>, Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Inputs {
        Many { inputs: Vec<Vec<f64>> },
        One(Vec<f64>),
    }
    let bad = |reason: String| Error::bad_input(path.display().to_string(), reason);
    let bytes = read_file(path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let inputs = match serde_json::from_value::<Inputs>(value) {
        Ok(Inputs::Many { inputs }) => inputs,
        Ok(Inputs::One(one)) => vec![one],
        Err(_) => return Err(bad("expected {\"inputs\": [[numbers], ...]} or a flat array of numbers".into())),
    };
    if inputs.is_empty() {
        return Err(bad("holds no input".into()));
    }
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            x.into_iter()
                .enumerate()
                .map(|(j, v)| {
                    let f = v as f32;
                    if f.is_finite() {
                        Ok(f)
                    } else {
                        Err(bad(format!("input {i}, value {j}: {v} is not a finite 32-bit float")))
                    }
                })
                .collect()
        })
        .collect()
}
