//! Calibration and quantization of the float IR into a [`Network`].
//!
//! Scales: a tensor of real values `v` is held as activations `q ≈ v / s` in `[0, 127]`.
//! Every tensor gets `s = max over the calibration inputs / 127` (the logits, signed:
//! `max |logit| / 63` around a zero point of 64), except that tensors must share one scale
//! where the circuits need it:
//!
//! - a *run* of consecutive layers of identical structure that can be stacked shares one
//!   output scale (and one shift and accumulator width), so the layers have one
//!   [`LayerSpec`] and fold as one segment;
//! - a residual layer adds its input to its output with the multiplier `skip`; its input
//!   and output share a scale, so `skip = 2^shift` exactly.
//!
//! These ties are taken as a union of tensors (each one an interval of consecutive tensors)
//! whose scale is the largest of its members'. A layer with input scale `s_a` and output
//! scale `s_o` then has weight scale `s_w = s_o / (s_a·2^shift)` for the largest shift that
//! keeps every weight of its run within int8, biases `round(b / (s_a·s_w)) + 2^(shift-1)`
//! (round to nearest: the circuit floors), and the smallest accumulator width that provably
//! holds every accumulator. Nothing is clamped silently: a value that does not fit is an
//! error.

use super::float;
use super::graph::{FloatLayer, FloatLayers};
use super::runs::{block_start, blocks, runs};
use crate::error::{Error, OnnxError};
use crate::model::network::{InputQuant, Network, OutputQuant, Segment, NETWORK_VERSION, SIGNED_ZERO_POINT};
use fold_ml_circuits::layer::{BlockSpec, LayerSpec, LayerWeights};
use fold_ml_circuits::quant::{RequantSpec, ACT_MAX, MAX_ACC_BITS};
use fold_ml_circuits::F;
use std::fmt;
use std::path::Path;

/// Largest right shift tried (keeps `skip = 2^shift` and the biases well inside 32 bits).
const MAX_SHIFT: u32 = 30;

/// How one layer was quantized.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    /// Its ONNX nodes, joined by `+`.
    pub origin: String,
    /// The segment it went into.
    pub segment: usize,
    /// Scale of its input activations.
    pub input_scale: f64,
    /// Scale of its output activations.
    pub output_scale: f64,
    /// Scale of its weights, `s_o / (s_a·2^shift)`.
    pub weight_scale: f64,
    /// Largest absolute float weight.
    pub max_abs_weight: f64,
    /// Largest absolute output value over the calibration inputs (before pooling).
    pub calibrated_max: f64,
    /// Right shift.
    pub shift: u32,
    /// Accumulator width.
    pub acc_bits: u32,
    /// Residual multiplier (0: none).
    pub skip: u32,
}

/// What the importer did, for `inspect` and logs.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    /// Calibration inputs used.
    pub calibration_inputs: usize,
    /// Scale of the input activations.
    pub input_scale: f64,
    /// Zero point of the input activations (0 unless the calibration inputs are signed).
    pub input_zero_point: u8,
    /// Output dequantization.
    pub output: OutputQuant,
    /// One per layer, input to output.
    pub layers: Vec<LayerReport>,
    /// What a reader of the scales should know (residual runs' growth, scales widened to fit
    /// weights), one line each.
    pub notes: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "calibrated on {} inputs; input scale {:.6e}, zero point {}",
            self.calibration_inputs, self.input_scale, self.input_zero_point
        )?;
        writeln!(
            f,
            "{:>5} {:>4} {:>11} {:>11} {:>11} {:>11} {:>9} {:>5} {:>4} {:>6}  origin",
            "layer", "seg", "s_in", "s_out", "s_w", "max|y|", "max|w|", "shift", "acc", "skip"
        )?;
        for (l, r) in self.layers.iter().enumerate() {
            writeln!(
                f,
                "{l:>5} {:>4} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>9.4} {:>5} {:>4} {:>6}  {}",
                r.segment,
                r.input_scale,
                r.output_scale,
                r.weight_scale,
                r.calibrated_max,
                r.max_abs_weight,
                r.shift,
                r.acc_bits,
                r.skip,
                r.origin
            )?;
        }
        write!(f, "output scale {:.6e}, zero point {}", self.output.scale, self.output.zero_point)?;
        for note in &self.notes {
            write!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

/// Checks calibration inputs: at least one, each of the model's input length, finite.
pub fn check_calibration(model: &FloatLayers, calibration: &[Vec<f32>]) -> Result<(), Error> {
    let bad = |what: String, reason: String| Error::bad_input(what, reason);
    if calibration.is_empty() {
        return Err(bad("calibration inputs".into(), "none given; at least one is needed".into()));
    }
    for (i, x) in calibration.iter().enumerate() {
        let what = || format!("calibration input {i}");
        if x.len() != model.num_inputs() {
            let reason =
                format!("has {} values; the model takes {} ({:?})", x.len(), model.num_inputs(), model.input_shape);
            return Err(bad(what(), reason));
        }
        if let Some((j, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(what(), format!("value {v} at index {j} is not a finite number")));
        }
    }
    Ok(())
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x.abs())))
}

/// Smallest `B` with `bound < 2^(B-1)`.
fn bits_for(bound: u64) -> u32 {
    u64::BITS - bound.leading_zeros() + 1
}

/// One quantized layer.
struct Quantized {
    layer_weights: LayerWeights,
    skip: u32,
    acc_bits: u32,
    weight_scale: f64,
}

/// `round(v / scale)` as int8, or what does not fit.
fn to_int8(what: &str, v: f32, scale: f64) -> Result<i8, String> {
    let q = (f64::from(v) / scale).round();
    if q.abs() <= 127.0 {
        Ok(q as i8)
    } else {
        Err(format!("{what} {v} quantizes to {q}, outside int8"))
    }
}

/// Quantizes one layer at a given shift, from its input scale `s_a`, output scale `s_o`
/// and block input scale `s_x` (what its shortcut reads); `Err` says what does not fit.
/// The shortcut joins the accumulator in its units `s_o / 2^shift`: an identity shortcut
/// with the multiplier `skip = s_x·2^shift / s_o`, a projection with weights at scale
/// `s_o / (s_x·2^shift)`.
fn quantize_layer(
    layer: &FloatLayer,
    (s_a, s_o, s_x): (f64, f64, f64),
    shift: u32,
    signed: bool,
) -> Result<Quantized, String> {
    let pow = f64::from(1u32 << shift);
    let s_w = s_o / (s_a * pow);
    let mut weights = layer.weights.iter().map(|&w| to_int8("weight", w, s_w)).collect::<Result<Vec<i8>, String>>()?;
    let projection = layer.projection();
    if let Some(p) = projection {
        let s_p = s_o / (s_x * pow);
        for &w in &p.weights {
            weights.push(to_int8("projection weight", w, s_p)?);
        }
    }
    let offset = if shift > 0 { 1i64 << (shift - 1) } else { 0 }
        + if signed { i64::from(SIGNED_ZERO_POINT) << shift } else { 0 };
    let bias = layer
        .bias
        .iter()
        .map(|&b| {
            let q = (f64::from(b) / (s_a * s_w)).round();
            let q = if q.abs() < 1e15 { q as i64 + offset } else { i64::MAX };
            i32::try_from(q).map_err(|_| format!("bias {b} quantizes to {q}, outside int32"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    let skip = if layer.shortcut.is_some() && projection.is_none() {
        let k = (s_x * pow / s_o).round();
        if !(1.0..=f64::from(u32::MAX)).contains(&k) {
            return Err(format!("residual multiplier {k} is not a positive 32-bit integer"));
        }
        k as u32
    } else {
        0
    };
    let shape = layer.kind;
    let own = shape.num_weights();
    let bound = (0..shape.num_outputs())
        .map(|o| {
            let taps: u64 = shape.taps(o).iter().map(|&(wi, _)| u64::from(weights[wi].unsigned_abs())).sum();
            let projected: u64 = projection.map_or(0, |p| {
                p.shape.taps(o).iter().map(|&(wi, _)| u64::from(weights[own + wi].unsigned_abs())).sum()
            });
            u64::from(bias[shape.bias_of(o)].unsigned_abs()) + 127 * (taps + projected) + 127 * u64::from(skip)
        })
        .max()
        .unwrap_or(0);
    let acc_bits = bits_for(bound).max(shift + 8);
    if acc_bits > MAX_ACC_BITS {
        return Err(format!("accumulators need {acc_bits} bits, more than {MAX_ACC_BITS}"));
    }
    Ok(Quantized { layer_weights: LayerWeights { weights, bias }, skip, acc_bits, weight_scale: s_w })
}

/// Largest shift at which `max_w / s_w ≤ 127`.
fn best_shift(max_w: f64, s_a: f64, s_o: f64) -> u32 {
    (0..=MAX_SHIFT).rev().find(|&k| max_w * s_a * f64::from(1u32 << k) / s_o <= 127.0).unwrap_or(0)
}

/// The scales of a residual run: its input scale and a growth `2^shift / skip` per layer.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Geometry {
    input_scale: f64,
    shift: u32,
    skip: u32,
}

/// Chooses a residual run's geometry. `targets[j]` is the smallest scale tensor `j` of the
/// run may have (`j = 0`: its input; then each layer's output) so that the calibration
/// values do not clip. The scales are `s_0·r^j` with `r = 2^shift / skip`: every target
/// must be met, and the worst ratio `scale / target` (unused range, lost resolution) is
/// minimized. With `free`, `s_0` may exceed `targets[0]`; otherwise it is `targets[0]`.
/// The weights of the run become `round(w · skip)`, so `skip ≤ 127 / max_w`; among equal
/// fits the largest `skip` (finest weights) wins.
fn residual_geometry(targets: &[f64], free: bool, max_w: f64) -> Option<Geometry> {
    // Past 2^12 a finer residual multiplier buys nothing measurable, and the search stays small.
    let skip_max = if max_w > 0.0 { (127.0 / max_w).floor().min(4096.0) as u32 } else { 4096 };
    let log_t: Vec<f64> = targets.iter().map(|t| t.ln()).collect();
    let mut best: Option<(f64, Geometry)> = None;
    for shift in 0..=MAX_SHIFT {
        // Weights of at least half the int8 range (`skip > skip_max / 2`): coarser ones lose
        // precision for nothing, another shift gives the same growth with finer weights.
        for skip in (skip_max / 2).max(1)..=skip_max {
            let log_r = f64::from(shift) * std::f64::consts::LN_2 - f64::from(skip).ln();
            let log_s0 = if free {
                log_t.iter().enumerate().map(|(j, t)| t - j as f64 * log_r).fold(f64::NEG_INFINITY, f64::max)
            } else {
                log_t[0]
            };
            let gaps = log_t.iter().enumerate().map(|(j, t)| log_s0 + j as f64 * log_r - t);
            // A target above its scale clips (tolerating rounding in the last digits).
            if gaps.clone().any(|g| g < -1e-12) {
                continue;
            }
            let worst = gaps.fold(0.0, f64::max);
            if best.is_none_or(|(w, g)| worst < w - 1e-12 || (worst <= w + 1e-12 && skip > g.skip)) {
                let input_scale = if free { log_s0.exp().max(targets[0]) } else { targets[0] };
                best = Some((worst, Geometry { input_scale, shift, skip }));
            }
        }
    }
    best.map(|(_, g)| g)
}

/// Calibrates and quantizes `model`, read from the ONNX file `source` (which names the
/// network and the errors). The result passes [`Network::check`].
pub fn quantize(
    model: &FloatLayers,
    source: &Path,
    calibration: &[Vec<f32>],
    salt: F,
) -> Result<(Network, ImportReport), Error> {
    check_calibration(model, calibration)?;
    let onnx = |reason: OnnxError| Error::Onnx { path: source.into(), reason };
    let name = source.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let layers = &model.layers;
    let n = layers.len();
    let last_signed = layers.last().is_some_and(|l| !l.relu);

    // Calibration: the largest value every tensor takes (pre-pooling for pooled layers,
    // since requantization clamps before pooling; |.| for signed logits).
    // The input may be signed (a normalized image): its range [min(lowest, 0), highest]
    // maps onto the 128 input activations with a zero point.
    let lowest = calibration.iter().flatten().fold(0.0f64, |m, &v| m.min(f64::from(v)));
    let mut tensor_max = vec![0.0f64; n + 1];
    for x in calibration {
        tensor_max[0] = tensor_max[0].max(x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v) - lowest)));
        for (l, t) in float::run(model, x)?.iter().enumerate() {
            tensor_max[l + 1] = tensor_max[l + 1].max(max_abs(&t.activations));
        }
    }
    if let Some(l) = tensor_max.iter().position(|m| !m.is_finite()) {
        return Err(Error::bad_input(
            "calibration inputs",
            format!("the float model overflows at layer {}", l.saturating_sub(1)),
        ));
    }

    let origin = |l: usize| layers[l].origin.join("+");
    let quant_err = |l: usize, reason: String| onnx(OnnxError::Quantize { layer: l, origin: origin(l), reason });
    // A layer without a ReLU gives signed values, stored around zero point 64.
    let signed = |l: usize| !layers[l].relu;
    let steps = |t: usize| if t > 0 && signed(t - 1) { f64::from(SIGNED_ZERO_POINT - 1) } else { 127.0 };
    // A tensor that is zero on every calibration input: any scale represents it.
    let own_scale = |t: usize| if tensor_max[t] > 0.0 { tensor_max[t] / steps(t) } else { 1.0 / steps(t) };

    // Scales, run by run. A plain run's outputs share the largest of their own scales
    // (widened where even shift 0 cannot hold the first layer's weights). A run with an
    // identity shortcut: the tensors between its blocks grow geometrically by
    // `r = 2^shift / skip`, so the one spec of the run holds, the residual term is exact,
    // and a residual stream that grows through the blocks keeps its resolution in every
    // block. Tensors inside a block, and the outputs of blocks with a projection
    // shortcut, keep their own scales (the projection's weights absorb the ratio).
    let runs = runs(layers);
    let mut scale: Vec<f64> = (0..=n).map(own_scale).collect();
    let mut geometry = vec![None; runs.len()];
    let mut notes = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let r = &run.layers;
        let last = run.stages - 1;
        let shortcut = layers[r.start + last].shortcut.as_ref();
        if shortcut.is_some_and(|s| s.projection.is_none()) {
            // The run's input scale is free to grow when nothing else reads it: the model
            // input, or the output of a lone plain layer (whose output scale only widens).
            let free = i == 0 || (runs[i - 1].layers.len() == 1 && layers[r.start - 1].shortcut.is_none());
            let m = run.blocks();
            let targets: Vec<f64> =
                (0..=m).map(|j| if j == 0 { scale[r.start] } else { own_scale(run.boundary(j)) }).collect();
            // The last layers' weights become `round(w · skip · s_in / s_x)` and a block
            // input's scale is at least its target (in a one-layer block `s_in = s_x`, and
            // both are the target here).
            let max_w = run
                .stage(last)
                .enumerate()
                .map(|(j, l)| max_abs(&layers[l].weights) * scale[l] / targets[j])
                .fold(0.0, f64::max);
            let g = residual_geometry(&targets, free, max_w).ok_or_else(|| {
                quant_err(r.start, format!("no shift and residual multiplier fit weights up to {max_w}"))
            })?;
            scale[r.start] = g.input_scale;
            for j in 1..=m {
                scale[run.boundary(j)] = scale[run.boundary(j - 1)] * f64::from(1u32 << g.shift) / f64::from(g.skip);
            }
            notes.push(format!(
                "layers {}..={}: residual run, scales between blocks grow by 2^{}/{} = {:.5} per block from {:.4e}",
                r.start,
                r.end - 1,
                g.shift,
                g.skip,
                f64::from(1u32 << g.shift) / f64::from(g.skip),
                g.input_scale
            ));
            geometry[i] = Some(g);
        } else if run.stages == 1 && shortcut.is_none() {
            let s = (r.start + 1..=r.end).map(|t| scale[t]).fold(0.0, f64::max);
            let first_w = max_abs(&layers[r.start].weights);
            let need = scale[r.start] * first_w / 127.0;
            let s = if need > s {
                let why = format!("to fit weight {first_w} at shift 0");
                notes.push(format!(
                    "layer {} ({}): output scale widened from {s:.4e} to {need:.4e} {why}",
                    r.start,
                    origin(r.start)
                ));
                need
            } else {
                s
            };
            if let Some(l) = r.clone().skip(1).find(|&l| max_abs(&layers[l].weights) > 127.0) {
                let w = max_abs(&layers[l].weights);
                return Err(quant_err(l, format!("weight {w} exceeds 127 with equal input and output scales")));
            }
            (r.start + 1..=r.end).for_each(|t| scale[t] = s);
        }
    }

    // Quantization, run by run and position by position in the block: the layers at one
    // position of a run's blocks share one spec, hence one shift and accumulator width.
    let mut quantized: Vec<Option<(LayerSpec, Quantized)>> = (0..n).map(|_| None).collect();
    for (run, g) in runs.iter().zip(&geometry) {
        for stage in 0..run.stages {
            let members: Vec<usize> = run.stage(stage).collect();
            let scales = |l: usize| (scale[l], scale[l + 1], scale[block_start(layers, l)]);
            let quantize_at = |shift: u32| -> Result<Vec<Quantized>, String> {
                members
                    .iter()
                    .map(|&l| {
                        quantize_layer(&layers[l], scales(l), shift, signed(l)).map_err(|e| format!("layer {l}: {e}"))
                    })
                    .collect()
            };
            let fixed = g.filter(|_| stage == run.stages - 1);
            let (shift, qs) = match fixed {
                Some(g) => {
                    let qs = quantize_at(g.shift).map_err(|e| quant_err(members[0], e))?;
                    if qs.iter().any(|q| q.skip != g.skip) {
                        return Err(quant_err(
                            members[0],
                            "internal: residual multipliers differ within the run".into(),
                        ));
                    }
                    (g.shift, qs)
                }
                None => {
                    // The largest shift that keeps every weight (projections included)
                    // within int8, lowered while a bias or accumulator does not fit.
                    let best = members
                        .iter()
                        .map(|&l| {
                            let (s_a, s_o, s_x) = scales(l);
                            let own = best_shift(max_abs(&layers[l].weights), s_a, s_o);
                            let projection = layers[l].projection();
                            projection.map_or(own, |p| own.min(best_shift(max_abs(&p.weights), s_x, s_o)))
                        })
                        .min();
                    let mut last_err = String::new();
                    let mut done = None;
                    for shift in (0..=best.unwrap_or(0)).rev() {
                        match quantize_at(shift) {
                            Ok(q) => {
                                done = Some((shift, q));
                                break;
                            }
                            Err(e) => last_err = e,
                        }
                    }
                    done.ok_or_else(|| quant_err(members[0], format!("no shift fits ({last_err})")))?
                }
            };
            let acc_bits = qs.iter().map(|q| q.acc_bits).max().unwrap_or(shift + 8);
            let requant = RequantSpec::new(shift, acc_bits)?;
            for (l, q) in members.into_iter().zip(qs) {
                let zero_point = match l {
                    0 => input_zero_point(lowest, scale[0]),
                    _ if signed(l - 1) => SIGNED_ZERO_POINT,
                    _ => 0,
                };
                let layer = &layers[l];
                let projection = layer.projection().map(|p| p.shape);
                let spec =
                    LayerSpec { shape: layer.kind, requant, skip: q.skip, projection, pool: layer.pool, zero_point };
                quantized[l] = Some((spec, q));
            }
        }
    }

    // Segments: consecutive blocks of one spec.
    let mut segments: Vec<Segment> = Vec::new();
    let mut reports = Vec::with_capacity(n);
    for b in blocks(layers) {
        let members: Vec<(LayerSpec, Quantized)> =
            b.clone().map(|l| quantized[l].take().expect("every layer of every run is quantized")).collect();
        let spec = BlockSpec::new(members.iter().map(|(s, _)| *s).collect());
        match segments.last_mut() {
            Some(seg) if seg.spec == spec => {}
            _ => segments.push(Segment { spec, layers: Vec::new(), origin: Vec::new() }),
        }
        let segment = segments.len() - 1;
        for (l, (spec, q)) in b.zip(members) {
            segments[segment].origin.push(origin(l));
            reports.push(LayerReport {
                origin: origin(l),
                segment,
                input_scale: scale[l],
                output_scale: scale[l + 1],
                weight_scale: q.weight_scale,
                max_abs_weight: max_abs(&layers[l].weights),
                calibrated_max: tensor_max[l + 1],
                shift: spec.requant.shift(),
                acc_bits: spec.requant.acc_bits(),
                skip: q.skip,
            });
            segments[segment].layers.push(q.layer_weights);
        }
    }
    let zero_point = if last_signed { SIGNED_ZERO_POINT } else { 0 };
    let output = OutputQuant { scale: scale[n] as f32, zero_point };
    let input_scale = scale[0];
    let network = Network {
        version: NETWORK_VERSION,
        name,
        input: InputQuant {
            shape: model.input_shape.clone(),
            scale: input_scale as f32,
            zero_point: input_zero_point(lowest, input_scale),
        },
        output: output.clone(),
        salt,
        segments,
    };
    network
        .check()
        .map_err(|reason| onnx(OnnxError::Graph(format!("internal: the imported network does not check: {reason}"))))?;
    let report = ImportReport {
        calibration_inputs: calibration.len(),
        input_scale,
        input_zero_point: network.input.zero_point,
        output,
        layers: reports,
        notes,
    };
    Ok((network, report))
}

/// The input activation that stands for 0: `round(-lowest / scale)` (0 for a non-negative
/// input).
fn input_zero_point(lowest: f64, scale: f64) -> u8 {
    (-lowest / scale).round().clamp(0.0, f64::from(ACT_MAX)) as u8
}
