//! Importing a GPT (token and position embeddings, pre-norm transformer blocks, a head on
//! the last position) from ONNX: the graph ([`graph`]), the float model for calibration
//! ([`float`]), the quantization into one block spec and per-block weights ([`quantize`]),
//! and the agreement of the quantized next token with tract's float model ([`agreement`]).

pub mod float;
pub mod graph;
pub mod quantize;

pub use graph::FloatGpt;
pub use quantize::{quantize, QuantGpt};

use crate::error::{Error, OnnxError};
use std::fmt;
use std::path::Path;
use tract_onnx::prelude::*;

/// Reads the GPT at `onnx`.
pub fn read_gpt(onnx: &Path) -> Result<FloatGpt, Error> {
    graph::parse(&super::read_proto(onnx)?).map_err(|reason| Error::Onnx { path: onnx.into(), reason })
}

/// How often the quantized model's next token is the float model's.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Windows compared.
    pub windows: usize,
    /// Fraction whose quantized argmax equals tract's.
    pub with_tract: f64,
    /// Fraction where fold-ml's own `f64` forward agrees with tract (a check of the reader).
    pub reader_with_tract: f64,
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "next-token agreement with the float model (tract) {:.1}% over {} windows (fold-ml's float reading of \
             the graph agrees with tract on {:.1}%)",
            100.0 * self.with_tract,
            self.windows,
            100.0 * self.reader_with_tract
        )
    }
}

fn argmax<T: PartialOrd + Copy>(x: &[T]) -> usize {
    (0..x.len()).fold(0, |b, i| if x[i] > x[b] { i } else { b })
}

/// Runs tract (float) and the quantized model on every window and compares their next token.
pub fn agreement(q: &QuantGpt, float: &FloatGpt, onnx: &Path, windows: &[Vec<usize>]) -> Result<Agreement, Error> {
    let tract_err = |e: String| Error::Onnx { path: onnx.into(), reason: OnnxError::Tract(e) };
    let t = float.tokens;
    let plan = tract_onnx::onnx()
        .model_for_path(onnx)
        .and_then(|m| m.with_input_fact(0, i64::fact([1, t]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| tract_err(format!("{e:#}")))?;
    if windows.is_empty() {
        return Err(Error::bad_input("agreement windows", "none given"));
    }
    let (mut same, mut reader) = (0usize, 0usize);
    for (i, w) in windows.iter().enumerate() {
        let ids: Vec<i64> = w.iter().map(|&v| v as i64).collect();
        let input = tract_ndarray::Array2::from_shape_vec((1, t), ids).map_err(|_| {
            Error::bad_input(format!("window {i}"), format!("has {} tokens, the model takes {t}", w.len()))
        })?;
        let out = plan.run(tvec!(Tensor::from(input).into())).map_err(|e| tract_err(format!("{e:#}")))?;
        let logits: Vec<f32> =
            out[0].to_array_view::<f32>().map_err(|e| tract_err(format!("{e:#}")))?.iter().copied().collect();
        let want = argmax(&logits);
        let got = argmax(&q.logits(w).map_err(|e| Error::bad_input(format!("window {i}"), e.to_string()))?);
        same += usize::from(got == want);
        reader += usize::from(argmax(&float::forward(float, w, |_, _| {}).0) == want);
    }
    let n = windows.len() as f64;
    Ok(Agreement { windows: windows.len(), with_tract: same as f64 / n, reader_with_tract: reader as f64 / n })
}

/// Token windows from a JSON file (`{"inputs": [[ids], ...]}` or one array of ids): every
/// value a token id, an integer in `0..65536`.
pub fn read_token_windows(path: &Path) -> Result<Vec<Vec<usize>>, Error> {
    let bad = |i: usize, v: f32| {
        Error::bad_input(path.display().to_string(), format!("window {i}: {v} is not a token id (0 to 65535)"))
    };
    let windows = super::read_inputs(path)?;
    windows
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            w.into_iter()
                .map(|v| match v.fract() == 0.0 && (0.0..65536.0).contains(&v) {
                    true => Ok(v as usize),
                    false => Err(bad(i, v)),
                })
                .collect()
        })
        .collect()
}
