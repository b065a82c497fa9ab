//! The float GPT in `f64`, for calibration: every tensor the quantized block has, with the
//! largest magnitude each one reaches over the calibration windows.

use super::graph::{FloatGpt, FloatLayerNorm, FloatLinear};

/// The calibrated range of every tensor of one block: the largest magnitude over the
/// calibration windows, or for the free-scale int8 tensors the least-squares clipping range
/// ([`calibrate`]); GELU's errors per fraction width.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockRanges {
    /// The block's input stream.
    pub x: f64,
    /// LayerNorm₁'s output.
    pub a1: f64,
    /// Queries, keys and values.
    pub q: f64,
    /// Keys.
    pub k: f64,
    /// Values.
    pub v: f64,
    /// The scores after the scale, in log2 units (`q·k·scale·log2 e`).
    pub scores: f64,
    /// The attention output after `W_o`.
    pub o: f64,
    /// The stream after attention.
    pub r1: f64,
    /// LayerNorm₂'s output.
    pub a2: f64,
    /// GELU's input.
    pub h1: f64,
    /// GELU's output.
    pub g: f64,
    /// The MLP's output.
    pub m2: f64,
    /// The block's output stream.
    pub out: f64,
    /// `Σ (h₁ - Q_f(h₁))²` for `f = 0..8`: the squared error of GELU's input at int8 with
    /// `f` fraction bits (rounded, clamped), for the MSE choice of its scale.
    pub h1_err: [f64; 8],
    /// The same for GELU's output.
    pub g_err: [f64; 8],
}

/// `Σ (x - Q(x))²`, `Q` rounding to int8 steps of `step` and clamping.
fn int8_error(x: &[f64], step: f64) -> f64 {
    x.iter().map(|&v| (v - (v / step).round().clamp(-128.0, 127.0) * step).powi(2)).sum()
}

/// [`int8_error`] at steps of `2^-f` for `f = 0..8`.
pub fn int8_errors(x: &[f64]) -> [f64; 8] {
    std::array::from_fn(|f| int8_error(x, (-(f as f64)).exp2()))
}

/// Ranges of a whole model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranges {
    /// Token embeddings (over the table) and positions (over the table).
    pub tok: f64,
    /// Positions.
    pub pos: f64,
    /// Each block's.
    pub blocks: Vec<BlockRanges>,
    /// The final LayerNorm's output (the head's input).
    pub ln_f: f64,
}

fn amax(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// LayerNorm of each `d`-row.
pub fn layernorm(x: &[f64], ln: &FloatLayerNorm) -> Vec<f64> {
    let d = ln.gamma.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        let r = 1.0 / (var + ln.eps).sqrt();
        y.extend(row.iter().enumerate().map(|(i, v)| (v - mean) * r * ln.gamma[i] + ln.beta[i]));
    }
    y
}

/// `x·W + b` of each `k`-row.
pub fn linear(x: &[f64], l: &FloatLinear) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len() / l.k * l.m);
    for row in x.chunks(l.k) {
        let mut out = l.b.clone();
        for (i, &a) in row.iter().enumerate() {
            for (o, w) in out.iter_mut().zip(&l.w[i * l.m..(i + 1) * l.m]) {
                *o += a * w;
            }
        }
        y.extend(out);
    }
    y
}

/// The exact GELU, `x·Φ(x)` (`libm`'s `erf`).
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// Every tensor of one block on one window (row-major over tokens; the scores of every
/// head and row, in log2 units).
#[derive(Clone, Debug, Default)]
pub struct BlockTensors {
    /// Input stream, LayerNorm₁, queries, keys, values, scores.
    pub x: Vec<f64>,
    /// LayerNorm₁'s output.
    pub a1: Vec<f64>,
    /// Queries.
    pub q: Vec<f64>,
    /// Keys.
    pub k: Vec<f64>,
    /// Values.
    pub v: Vec<f64>,
    /// Scores `q·k·scale·log2 e`.
    pub scores: Vec<f64>,
    /// Attention output after `W_o`.
    pub o: Vec<f64>,
    /// Stream after attention.
    pub r1: Vec<f64>,
    /// LayerNorm₂'s output.
    pub a2: Vec<f64>,
    /// GELU's input.
    pub h1: Vec<f64>,
    /// GELU's output.
    pub g: Vec<f64>,
    /// MLP output.
    pub m2: Vec<f64>,
    /// Output stream.
    pub out: Vec<f64>,
}

/// Runs the model on `ids`; `seen` receives each block's tensors on this window.
pub fn forward(m: &FloatGpt, ids: &[usize], mut seen: impl FnMut(usize, &BlockTensors)) -> (Vec<f64>, Vec<f64>) {
    let (t, d) = (ids.len(), m.width);
    let mut x: Vec<f64> = (0..t * d).map(|j| m.tok[ids[j / d] * d + j % d] + m.pos[j]).collect();
    let (h, dh) = (m.heads, d / m.heads);
    let log2e = std::f64::consts::LOG2_E;
    for (b, blk) in m.blocks.iter().enumerate() {
        let a1 = layernorm(&x, &blk.ln1);
        let (q, k, v) = (linear(&a1, &blk.q), linear(&a1, &blk.k), linear(&a1, &blk.v));
        let (mut mixed, mut scores) = (vec![0.0; t * d], Vec::new());
        for head in 0..h {
            for i in 0..t {
                let s: Vec<f64> = (0..=i)
                    .map(|j| (0..dh).map(|c| q[i * d + head * dh + c] * k[j * d + head * dh + c]).sum::<f64>())
                    .map(|s| s * blk.score_scale * log2e)
                    .collect();
                let top = s.iter().fold(f64::MIN, |a, &b| a.max(b));
                let e: Vec<f64> = s.iter().map(|v| (v - top).exp2()).collect();
                let sum: f64 = e.iter().sum();
                for c in 0..dh {
                    let col = head * dh + c;
                    mixed[i * d + col] = e.iter().enumerate().map(|(j, p)| p / sum * v[j * d + col]).sum();
                }
                scores.extend(s);
            }
        }
        let o = linear(&mixed, &blk.o);
        let r1: Vec<f64> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
        let a2 = layernorm(&r1, &blk.ln2);
        let h1 = linear(&a2, &blk.fc1);
        let g: Vec<f64> = h1.iter().map(|&v| gelu(v)).collect();
        let m2 = linear(&g, &blk.fc2);
        let out: Vec<f64> = r1.iter().zip(&m2).map(|(a, b)| a + b).collect();
        let tensors = BlockTensors { x, a1, q, k, v, scores, o, r1, a2, h1, g, m2, out };
        seen(b, &tensors);
        x = tensors.out;
    }
    let last = layernorm(&x[(t - 1) * d..], &m.ln_f);
    (linear(&last, &m.head), last)
}

/// The clipping ranges tried for a free-scale int8 tensor, as fractions of its maximum.
const CLIPS: [f64; 6] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5];

/// `Σ (x - Q(x))²` for int8 steps of `c·max/127`, each `c` of [`CLIPS`].
fn clip_errors(x: &[f64], max: f64) -> [f64; 6] {
    std::array::from_fn(|j| int8_error(x, CLIPS[j] * max / 127.0))
}

/// The ranges over all `windows`: the maxima, then, for the int8 tensors whose scale is
/// free (LayerNorm outputs, queries, keys, values, the two branches), the clipping range of
/// least squared error on the same windows (a few outliers clipped if that makes the many
/// small values finer). The streams keep their maxima (16 bits need no clipping), the
/// scores too (the softmax reads their top values).
pub fn calibrate(m: &FloatGpt, windows: &[Vec<usize>]) -> Ranges {
    let mut blocks = vec![BlockRanges::default(); m.blocks.len()];
    let mut ln_f = 0.0f64;
    for w in windows {
        let (_, last) = forward(m, w, |b, t| {
            let r = &mut blocks[b];
            macro_rules! up { ($($f:ident),*) => { $( r.$f = r.$f.max(amax(&t.$f)); )* } }
            up!(x, a1, q, k, v, scores, o, r1, a2, h1, g, m2, out);
            let (h1, g) = (int8_errors(&t.h1), int8_errors(&t.g));
            for f in 0..8 {
                r.h1_err[f] += h1[f];
                r.g_err[f] += g[f];
            }
        });
        ln_f = ln_f.max(amax(&last));
    }
    let mut err = vec![[[0.0; 6]; 7]; m.blocks.len()];
    for w in windows {
        forward(m, w, |b, t| {
            let r = &blocks[b];
            let free =
                [(&t.a1, r.a1), (&t.q, r.q), (&t.k, r.k), (&t.v, r.v), (&t.o, r.o), (&t.a2, r.a2), (&t.m2, r.m2)];
            for (i, (x, max)) in free.into_iter().enumerate() {
                let e = clip_errors(x, max);
                for j in 0..6 {
                    err[b][i][j] += e[j];
                }
            }
        });
    }
    for (r, e) in blocks.iter_mut().zip(&err) {
        let best = |i: usize| CLIPS[(0..6).min_by(|&a, &b| e[i][a].total_cmp(&e[i][b])).unwrap_or(0)];
        let c: [f64; 7] = std::array::from_fn(best);
        (r.a1, r.q, r.k, r.v, r.o, r.a2, r.m2) =
            (r.a1 * c[0], r.q * c[1], r.k * c[2], r.v * c[3], r.o * c[4], r.a2 * c[5], r.m2 * c[6]);
    }
    Ranges { tok: amax(&m.tok), pos: amax(&m.pos), blocks, ln_f }
}
