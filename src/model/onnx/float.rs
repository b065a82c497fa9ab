//! A plain `f32` executor of the float IR, in fold-ml's layouts: the calibration pass of the
//! quantizer. It is checked against tract (the independent reference) in the tests; it is
//! never used to judge accuracy itself.

use super::graph::{FloatLayer, FloatLayers};
use crate::error::Error;
use fold_ml_circuits::gadgets::linear::LinearShape;
use fold_ml_circuits::gadgets::pool::PoolKind;

/// One layer's values on one input.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTrace {
    /// After the linear map, residual addition and ReLU, before pooling: what the
    /// quantized layer requantizes (and clamps), so what its scale must cover.
    pub activations: Vec<f32>,
    /// The layer's output (after pooling).
    pub output: Vec<f32>,
}

/// Runs one layer (lengths already checked by [`run`]).
fn run_layer(layer: &FloatLayer, x: &[f32]) -> LayerTrace {
    // The circuit's tap lists (checked against tract in the tests): which input each weight
    // reads, padding taps absent.
    let shape = layer.kind;
    let mut y: Vec<f32> = (0..shape.num_outputs())
        .map(|o| {
            let taps = shape.taps(o).into_iter().map(|(wi, ii)| layer.weights[wi] * x[ii]);
            layer.bias[shape.bias_of(o)] + taps.sum::<f32>()
        })
        .collect();
    if layer.residual {
        y.iter_mut().zip(x).for_each(|(v, a)| *v += a);
    }
    if layer.relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let output = match (layer.pool, layer.kind) {
        (Some(pool), LinearShape::Conv(c)) => pool
            .windows(c.output_dims())
            .iter()
            .map(|win| match pool.kind {
                PoolKind::Max => win.iter().map(|&i| y[i]).fold(f32::NEG_INFINITY, f32::max),
                PoolKind::Average => win.iter().map(|&i| y[i]).sum::<f32>() / win.len() as f32,
            })
            .collect(),
        _ => y.clone(),
    };
    LayerTrace { activations: y, output }
}

/// Runs the model on one input: every layer's trace, input to output. Fails on an input of
/// the wrong length or a model whose tensors do not fit its shapes.
pub fn run(model: &FloatLayers, input: &[f32]) -> Result<Vec<LayerTrace>, Error> {
    let bad = |what: String, reason: String| Error::bad_input(what, reason);
    if input.len() != model.num_inputs() {
        let reason =
            format!("has {} values; the model takes {} ({:?})", input.len(), model.num_inputs(), model.input_shape);
        return Err(bad("input".into(), reason));
    }
    let mut traces: Vec<LayerTrace> = Vec::with_capacity(model.layers.len());
    for (l, layer) in model.layers.iter().enumerate() {
        let x = traces.last().map_or(input, |t| &t.output);
        let shape = layer.kind;
        shape
            .check_lengths(x.len(), layer.weights.len(), layer.bias.len())
            .map_err(|e| bad(format!("float layer {l}"), e.to_string()))?;
        if layer.residual && shape.num_inputs() != shape.num_outputs() {
            return Err(bad(format!("float layer {l}"), "a residual layer needs as many outputs as inputs".into()));
        }
        if let LinearShape::Conv(c) = shape {
            c.check().map_err(|e| bad(format!("float layer {l}"), e))?;
        }
        match (layer.pool, shape) {
            (Some(p), LinearShape::Conv(c)) => {
                p.check(c.output_dims()).map_err(|e| bad(format!("float layer {l}"), e))?
            }
            (Some(_), LinearShape::Dense(_)) => {
                return Err(bad(format!("float layer {l}"), "a dense layer is pooled".into()))
            }
            (None, _) => {}
        }
        traces.push(run_layer(layer, x));
    }
    Ok(traces)
}

/// The model's outputs on one input.
pub fn outputs(model: &FloatLayers, input: &[f32]) -> Result<Vec<f32>, Error> {
    Ok(run(model, input)?.pop().map(|t| t.output).unwrap_or_default())
}
