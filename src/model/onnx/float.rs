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

/// Runs one layer on its input `x` and its block's input `xb` (lengths already checked by
/// [`run`]).
fn run_layer(layer: &FloatLayer, x: &[f32], xb: &[f32]) -> LayerTrace {
    // The circuit's tap lists (checked against tract in the tests): which input each weight
    // reads, padding taps absent.
    let shape = layer.kind;
    let mut y: Vec<f32> = (0..shape.num_outputs())
        .map(|o| {
            let taps = shape.taps(o).into_iter().map(|(wi, ii)| layer.weights[wi] * x[ii]);
            layer.bias[shape.bias_of(o)] + taps.sum::<f32>()
        })
        .collect();
    match layer.shortcut.as_ref().map(|s| &s.projection) {
        Some(None) => y.iter_mut().zip(xb).for_each(|(v, a)| *v += a),
        Some(Some(p)) => {
            for (o, v) in y.iter_mut().enumerate() {
                *v += p.shape.taps(o).into_iter().map(|(wi, ii)| p.weights[wi] * xb[ii]).sum::<f32>();
            }
        }
        None => {}
    }
    if layer.relu {
        let cap = layer.cap.unwrap_or(f32::INFINITY);
        y.iter_mut().for_each(|v| *v = v.clamp(0.0, cap));
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
        let input_of = |l: usize| if l == 0 { input } else { &traces[l - 1].output[..] };
        let x = input_of(l);
        let back = layer.shortcut.as_ref().map_or(0, |s| s.back);
        if back > l {
            return Err(bad(format!("float layer {l}"), format!("its shortcut reaches {back} layers back")));
        }
        let xb = input_of(l - back);
        let shape = layer.kind;
        shape
            .check_lengths(x.len(), layer.weights.len(), layer.bias.len())
            .map_err(|e| bad(format!("float layer {l}"), e.to_string()))?;
        match layer.shortcut.as_ref().map(|s| &s.projection) {
            Some(None) if xb.len() != shape.num_outputs() => {
                let reason = "a residual shortcut needs as many values as the layer's outputs".into();
                return Err(bad(format!("float layer {l}"), reason));
            }
            Some(Some(p)) => {
                let fits = p.shape.check().is_ok()
                    && p.shape.num_inputs() == xb.len()
                    && p.weights.len() == p.shape.num_weights()
                    && matches!(shape, LinearShape::Conv(c) if c.output_dims() == p.shape.output_dims());
                if !fits {
                    return Err(bad(format!("float layer {l}"), "its projection does not fit its block".into()));
                }
            }
            _ => {}
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
        let trace = run_layer(layer, x, xb);
        traces.push(trace);
    }
    Ok(traces)
}

/// The model's outputs on one input.
pub fn outputs(model: &FloatLayers, input: &[f32]) -> Result<Vec<f32>, Error> {
    Ok(run(model, input)?.pop().map(|t| t.output).unwrap_or_default())
}
