//! Quantizing a float GPT: one [`BlockSpec`] for every block (so the blocks fold as one
//! step circuit) with each block's own calibrated scales carried by its weights.
//!
//! **Scales.** Every tensor `t` has a real scale `S_t` (value = integer · `S_t`). The spec
//! fixes only shifts, the residual multipliers and the scales that nonlinear operators
//! read (softmax input in log2 units at `2^-f`, GELU in and out at `2^-f`, `2^-g`). Every
//! other scale is per block, absorbed by the block's weights: a projection's weight scale is
//! `S_w = S_out / (S_in·2^shift)`, so any `S_out ≥ S_in·2^shift·max|w|/127` is reachable;
//! LayerNorm's output scale is set by its gain's scale the same way; LayerNorm's input scale
//! does not matter (it is scale-invariant, up to `ε`).
//!
//! **The residual stream** grows through a GPT (here from 4 to 13 over four blocks). Its
//! scales follow a geometric schedule: `S(r₁) = S(x)·ρ₁` and `S(out) = S(r₁)·ρ₂` with the
//! same `ρ₁ = 2^K/m_a1`, `ρ₂ = 2^K/m_a2` in every block, so the residual additions are the
//! same `AddSpec`s everywhere, and `m_a1`, `m_a2` are chosen to cover every calibrated
//! stream with the finest steps (see [`stream_schedule`]).
//!
//! **Rounding.** Projections, LayerNorm, the residuals and GELU round to nearest (a half
//! step is in every bias or constant); the scores are floored (softmax is shift-invariant);
//! the mix `Σ p·v` is floored and its mean deficit of half a step is added back in `W_o`'s
//! bias. `ε` of the LayerNorms is one integer for all blocks, exact at the geometric mean
//! of the blocks' stream scales (the effective `ε` of a block differs by the square of its
//! scale's ratio to that mean; `ε = 1e-5` against unit variance either way).

use super::float::{calibrate, Ranges};
use super::graph::{FloatGpt, FloatLayerNorm, FloatLinear};
use fold_ml_circuits::gadgets::elementwise::AddSpec;
use fold_ml_circuits::gadgets::gelu::GeluSpec;
use fold_ml_circuits::gadgets::layernorm::{acc_bits_for, LayerNormSpec};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::transformer::{
    block_native, embed_native, head_native, BlockError, BlockShape, BlockSpec, BlockWeights, EmbedSpec, EmbedWeights,
    HeadSpec, HeadWeights, PROB_BITS, STREAM_BITS,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `K`: the residual multipliers are `m/2^K`.
const RESIDUAL_BITS: u32 = 8;
/// The embedding's multipliers are `m/2^K`.
const EMBED_BITS: u32 = 10;
/// Accumulator width of every projection (int32 biases).
const PROJ_ACC_BITS: u32 = 34;
/// The largest stream value, `2^15 - 1`.
const STREAM_MAX: f64 = ((1u32 << (STREAM_BITS - 1)) - 1) as f64;

/// LayerNorm's reciprocal scale `M = bits(d) + 15 + 12`: `ρ ≈ 2^M/(d·σ)` (σ the row's
/// spread in stream steps) keeps 12 bits for rows spread over the whole 16-bit stream, more
/// for the usual narrower ones.
fn recip_bits(d: usize) -> u32 {
    (usize::BITS - d.leading_zeros()) + (STREAM_BITS - 1) + 12
}

/// The bias shift `k` of every LayerNorm: `β` sits at the accumulator's scale,
/// `β·2^M/S_γ` with `S_γ ≥ max|γ|/127`, and is committed as an int32, so it is stored as
/// `β/2^k`, the smallest `k` that brings every LayerNorm's largest bias below `2^30`.
fn beta_shift(m: u32, norms: &[&FloatLayerNorm]) -> u32 {
    let need = norms
        .iter()
        .map(|ln| log2(amax(&ln.beta) * pow2(m) * 127.0 / amax(&ln.gamma) / pow2(30)).ceil())
        .fold(0.0, f64::max);
    need as u32
}

/// The quantization failed: which tensor and why.
#[derive(Debug, thiserror::Error)]
pub enum GptQuantError {
    /// A weight, bias or scale that does not fit the integer ranges.
    #[error("cannot quantize {what}: {reason}")]
    Range {
        /// The tensor.
        what: String,
        /// Why.
        reason: String,
    },
    /// A gadget's spec refused the chosen scales.
    #[error("cannot quantize: {0}")]
    Spec(#[from] BlockError),
}

fn range(what: impl Into<String>, reason: impl Into<String>) -> GptQuantError {
    GptQuantError::Range { what: what.into(), reason: reason.into() }
}

/// A quantized GPT: the integer model that the proof covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantGpt {
    /// The embedding's spec: int8 token and position rows added into the 16-bit stream.
    pub embed_spec: EmbedSpec,
    /// The embedding's tables.
    pub embed: EmbedWeights,
    /// The one spec of every block.
    pub spec: BlockSpec,
    /// Each block's weights.
    pub blocks: Vec<BlockWeights<i8, i64>>,
    /// The head's spec: the final LayerNorm and the logits' accumulators (their argmax is
    /// the token).
    pub head_spec: HeadSpec,
    /// The head's parameters.
    pub head: HeadWeights,
    /// The scales chosen, for the report.
    pub scales: ScaleReport,
}

/// What the calibration chose, in real units per integer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleReport {
    /// The stream's scale at each block's input, then the last block's output.
    pub stream: Vec<f64>,
    /// `ρ₁`, `ρ₂`.
    pub growth: (f64, f64),
    /// Softmax input fraction bits (log2 units).
    pub softmax_frac: u32,
    /// GELU's input and output fraction bits.
    pub gelu: (u32, u32),
}

impl fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self.stream.iter().map(|v| format!("{v:.3e}")).collect();
        write!(
            f,
            "stream steps {} (growth {:.3}, {:.3} per residual); softmax input 2^-{} (log2 units); GELU 2^-{} → 2^-{}",
            s.join(" → "),
            self.growth.0,
            self.growth.1,
            self.softmax_frac,
            self.gelu.0,
            self.gelu.1
        )
    }
}

impl QuantGpt {
    /// The public description of its circuits (what its keys and its proofs' statements
    /// name).
    pub fn architecture(&self) -> fold_ml_verify::gpt::GptArchitecture {
        fold_ml_verify::gpt::GptArchitecture::new(self.embed_spec, self.spec, self.head_spec)
    }

    /// The block input of `ids` (token ids, one per position).
    pub fn embed(&self, ids: &[usize]) -> Result<Vec<i16>, GptQuantError> {
        Ok(embed_native(&self.embed_spec, &self.embed, ids)?)
    }

    /// The stream of `ids` after the embedding and the first `blocks` blocks.
    pub fn stream(&self, ids: &[usize], blocks: usize) -> Result<Vec<i16>, GptQuantError> {
        let mut x = self.embed(ids)?;
        for w in self.blocks.iter().take(blocks) {
            x = block_native(&self.spec, w, &x)?.out;
        }
        Ok(x)
    }

    /// The logits of the last position for `ids` (one window of the context's length).
    pub fn logits(&self, ids: &[usize]) -> Result<Vec<i64>, GptQuantError> {
        Ok(head_native(&self.head_spec, &self.head, &self.stream(ids, self.blocks.len())?)?)
    }
}

/// `2^n` as a float.
fn pow2(n: u32) -> f64 {
    2f64.powi(n as i32)
}

fn log2(x: f64) -> f64 {
    x.log2()
}

/// Quantizes `w` at scale `s` to int8 (failing above 127 steps).
fn int8(what: &str, w: &[f64], s: f64) -> Result<Vec<i8>, GptQuantError> {
    w.iter()
        .map(|&v| {
            let q = (v / s).round();
            if q.abs() > 127.0 {
                Err(range(what, format!("{v} is {q} steps of {s:e}, beyond int8")))
            } else {
                Ok(q as i8)
            }
        })
        .collect()
}

/// Quantizes biases at the accumulator scale `s`, plus `half` (the rounding of the shift).
fn int32(what: &str, b: &[f64], s: f64, half: i64) -> Result<Vec<i64>, GptQuantError> {
    b.iter()
        .map(|&v| {
            let q = (v / s).round() as i64 + half;
            if q.unsigned_abs() >= 1 << 31 {
                Err(range(what, format!("bias {v} is {q} accumulator steps, beyond int32")))
            } else {
                Ok(q)
            }
        })
        .collect()
}

fn amax(x: &[f64]) -> f64 {
    x.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE)
}

fn half(shift: u32) -> i64 {
    if shift == 0 {
        0
    } else {
        1 << (shift - 1)
    }
}

/// The residual stream's schedule (module docs): the multipliers `m_a1`, `m_a2` and the
/// first scale `S₀`, such that every calibrated stream fits the 16-bit stream, with the smallest
/// mean log-scale.
fn stream_schedule(r: &Ranges) -> (i64, i64, f64) {
    let k = 1i64 << RESIDUAL_BITS;
    let mut best = (k, k, f64::MAX, f64::MAX);
    for m1 in k / 2..=2 * k {
        for m2 in k / 2..=2 * k {
            let (g1, g2) = (k as f64 / m1 as f64, k as f64 / m2 as f64);
            // Scales relative to S₀ at every stream position.
            let mut rel = Vec::new();
            let mut s = 1.0;
            for b in &r.blocks {
                rel.push((b.x, s));
                s *= g1;
                rel.push((b.r1, s));
                s *= g2;
            }
            if let Some(last) = r.blocks.last() {
                rel.push((last.out, s));
            }
            let s0 = rel.iter().map(|&(m, rs)| m / STREAM_MAX / rs).fold(0.0, f64::max);
            let cost: f64 = rel.iter().map(|&(_, rs)| log2(s0 * rs)).sum();
            if cost < best.3 {
                best = (m1, m2, s0, cost);
            }
        }
    }
    (best.0, best.1, best.2)
}

/// A uniform shift for projections whose output scale is free: the mean over blocks of
/// `log2(out_max / (S_in·max|w|))`, rounded.
fn free_shift(items: &[(f64, f64, f64)]) -> u32 {
    let mean = items.iter().map(|&(s_in, wmax, out)| log2(out / (s_in * wmax))).sum::<f64>() / items.len() as f64;
    mean.round().max(0.0) as u32
}

/// The largest uniform shift that keeps every block's weights in int8 for a fixed output
/// scale: `min log2(S_out·127 / (S_in·max|w|))`.
fn fixed_shift(what: &str, items: &[(f64, f64, f64)]) -> Result<u32, GptQuantError> {
    let s =
        items.iter().map(|&(s_in, wmax, s_out)| log2(s_out * 127.0 / (s_in * wmax)).floor()).fold(f64::MAX, f64::min);
    if s < 0.0 {
        return Err(range(what, "the output scale is too fine for int8 weights at any shift"));
    }
    Ok(s as u32)
}

/// A free output's scale: fine enough for the calibrated outputs, coarse enough for int8
/// weights at `shift`.
fn free_scale(s_in: f64, wmax: f64, out: f64, shift: u32) -> f64 {
    (s_in * pow2(shift) * wmax / 127.0).max(out / 127.0)
}

/// One projection at its chosen scales: int8 weights, biases with the rounding half.
fn project(
    what: &str,
    l: &FloatLinear,
    s_in: f64,
    s_out: f64,
    shift: u32,
) -> Result<(Vec<i8>, Vec<i64>), GptQuantError> {
    let s_w = s_out / (s_in * pow2(shift));
    Ok((int8(what, &l.w, s_w)?, int32(what, &l.b, s_in * s_w, half(shift))?))
}

/// A LayerNorm at output scale `s_out` (`u` is at `2^-M`): `γ` int8, `β` at `2^k` steps of
/// the accumulator, with the rounding half.
fn norm(
    what: &str,
    ln: &FloatLayerNorm,
    (m, k): (u32, u32),
    s_out: f64,
    shift: u32,
) -> Result<(Vec<i8>, Vec<i64>), GptQuantError> {
    let s_g = s_out / pow2(shift) * pow2(m);
    let acc = s_g / pow2(m);
    Ok((int8(what, &ln.gamma, s_g)?, int32(what, &ln.beta, acc * pow2(k), half(shift) >> k)?))
}

/// Quantizes `m`, calibrated on `windows` (token ids).
pub fn quantize(m: &FloatGpt, windows: &[Vec<usize>]) -> Result<QuantGpt, GptQuantError> {
    if windows.is_empty() {
        return Err(range("calibration", "no window given"));
    }
    if let Some(w) = windows.iter().find(|w| w.len() != m.tokens || w.iter().any(|&t| t >= m.vocab)) {
        return Err(range(
            "calibration",
            format!("a window of {} tokens (ids < {}), expected {}", w.len(), m.vocab, m.tokens),
        ));
    }
    let r = calibrate(m, windows);
    let (d, nb) = (m.width, m.blocks.len());
    let k = 1i64 << RESIDUAL_BITS;
    let (ma1, ma2, s0) = stream_schedule(&r);
    let (g1, g2) = (k as f64 / ma1 as f64, k as f64 / ma2 as f64);
    let sx: Vec<f64> = (0..=nb).map(|b| s0 * (g1 * g2).powi(b as i32)).collect();
    let sr1: Vec<f64> = (0..nb).map(|b| sx[b] * g1).collect();
    let blocks = &m.blocks;
    let norms: Vec<&FloatLayerNorm> =
        blocks.iter().flat_map(|b| [&b.ln1, &b.ln2]).chain(std::iter::once(&m.ln_f)).collect();
    let m_bits = recip_bits(d);
    let k_beta = beta_shift(m_bits, &norms);
    let mr = pow2(m_bits);

    // LayerNorms: input "scale" 2^-M, free output.
    let ln1_items: Vec<_> = (0..nb).map(|b| (1.0 / mr, amax(&blocks[b].ln1.gamma), r.blocks[b].a1)).collect();
    let ln2_items: Vec<_> = (0..nb).map(|b| (1.0 / mr, amax(&blocks[b].ln2.gamma), r.blocks[b].a2)).collect();
    let (ln1_shift, ln2_shift) = (free_shift(&ln1_items), free_shift(&ln2_items));
    let sa1: Vec<f64> = ln1_items.iter().map(|&(s, w, o)| free_scale(s, w, o, ln1_shift)).collect();
    let sa2: Vec<f64> = ln2_items.iter().map(|&(s, w, o)| free_scale(s, w, o, ln2_shift)).collect();

    // Q, K, V: one shift; q and k scaled up together to meet the scores' fixed scale.
    let qkv_items: Vec<(f64, f64, f64)> = (0..nb)
        .flat_map(|b| {
            let (bl, rb) = (&blocks[b], &r.blocks[b]);
            [(sa1[b], amax(&bl.q.w), rb.q), (sa1[b], amax(&bl.k.w), rb.k), (sa1[b], amax(&bl.v.w), rb.v)]
        })
        .collect();
    let qkv_shift = free_shift(&qkv_items);
    let lo = |i: usize| {
        let (s, w, o) = qkv_items[i];
        free_scale(s, w, o, qkv_shift)
    };
    let score_max = r.blocks.iter().map(|b| b.scores).fold(0.0, f64::max);
    let softmax_frac = (log2(127.0 / score_max).floor() as i64).clamp(2, 7) as u32;
    let log2e = std::f64::consts::LOG2_E;
    // S_q·S_k·2^sh·scale·log2e = 2^-f: the largest sh with S_q·S_k ≥ the lower bounds.
    let score_shift = (0..nb)
        .map(|b| {
            log2((-f64::from(softmax_frac)).exp2() / (blocks[b].score_scale * log2e * lo(3 * b) * lo(3 * b + 1)))
                .floor()
        })
        .fold(f64::MAX, f64::min);
    if score_shift < 0.0 {
        return Err(range("scores", "q·k is too coarse for the softmax's input scale"));
    }
    let score_shift = score_shift as u32;
    let (mut sq, mut sk, mut sv) = (vec![0.0; nb], vec![0.0; nb], vec![0.0; nb]);
    for b in 0..nb {
        let p = (-f64::from(softmax_frac + score_shift)).exp2() / (blocks[b].score_scale * log2e);
        let lambda = (p / (lo(3 * b) * lo(3 * b + 1))).sqrt();
        (sq[b], sk[b], sv[b]) = (lo(3 * b) * lambda, lo(3 * b + 1) * lambda, lo(3 * b + 2));
    }
    // The mix Σ p·v at v's scale (p sums to 2^7).
    let mix_shift = PROB_BITS;
    let smix = sv.clone();

    // Residual 1: r1 = (m_a1·x + m_b1·o + 2^(K-1)) >> K, S_o = S_r1·m_b1/2^K.
    let mb1 = (0..nb).map(|b| (k as f64 * r.blocks[b].o / (127.0 * sr1[b])).ceil() as i64).max().unwrap_or(1).max(1);
    let so: Vec<f64> = (0..nb).map(|b| sr1[b] * mb1 as f64 / k as f64).collect();
    let o_items: Vec<_> = (0..nb).map(|b| (smix[b], amax(&blocks[b].o.w), so[b])).collect();
    let o_shift = fixed_shift("W_o", &o_items)?;

    // MLP: GELU's scales from calibration, then residual 2 as residual 1.
    // GELU's fixed scales by least squared error on calibration (a few large values are
    // clipped if that makes the many small ones finer).
    let best = |err: fn(&super::float::BlockRanges) -> [f64; 8], lo: u32, hi: u32| {
        (lo..=hi)
            .min_by(|&a, &b| {
                let total = |f: u32| r.blocks.iter().map(|bl| err(bl)[f as usize]).sum::<f64>();
                total(a).total_cmp(&total(b))
            })
            .unwrap_or(lo)
    };
    let gelu_in = best(|b| b.h1_err, 2, 6);
    let gelu_out = best(|b| b.g_err, 0, 7);
    let fc1_items: Vec<_> = (0..nb).map(|b| (sa2[b], amax(&blocks[b].fc1.w), (-f64::from(gelu_in)).exp2())).collect();
    let fc1_shift = fixed_shift("W_1", &fc1_items)?;
    let mb2 =
        (0..nb).map(|b| (k as f64 * r.blocks[b].m2 / (127.0 * sx[b + 1])).ceil() as i64).max().unwrap_or(1).max(1);
    let sm2: Vec<f64> = (0..nb).map(|b| sx[b + 1] * mb2 as f64 / k as f64).collect();
    let sg = (-f64::from(gelu_out)).exp2();
    let fc2_items: Vec<_> = (0..nb).map(|b| (sg, amax(&blocks[b].fc2.w), sm2[b])).collect();
    let fc2_shift = fixed_shift("W_2", &fc2_items)?;

    // LayerNorm ε: one integer, exact at the geometric mean of the stream scales.
    let s_geo = sx.iter().chain(&sr1).map(|s| s.ln()).sum::<f64>() / (sx.len() + sr1.len()) as f64;
    let eps = blocks[0].ln1.eps;
    let e_int = ((eps * (d as f64).powi(4) / (2.0 * s_geo).exp()).round() as u64).max(1);

    // Weights.
    let mut weights = Vec::with_capacity(nb);
    let (mut beta_max1, mut beta_max2) = (0u64, 0u64);
    for b in 0..nb {
        let bl = &blocks[b];
        let ln1 = norm(&format!("block {b} LayerNorm 1"), &bl.ln1, (m_bits, k_beta), sa1[b], ln1_shift)?;
        let ln2 = norm(&format!("block {b} LayerNorm 2"), &bl.ln2, (m_bits, k_beta), sa2[b], ln2_shift)?;
        beta_max1 = beta_max1.max(ln1.1.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0));
        beta_max2 = beta_max2.max(ln2.1.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0));
        let mut o = project(&format!("block {b} W_o"), &bl.o, smix[b], so[b], o_shift)?;
        // The mix is floored: add back its mean deficit, half a step of every input.
        for (j, bias) in o.1.iter_mut().enumerate() {
            let col: i64 = (0..d).map(|i| i64::from(o.0[i * d + j])).sum();
            *bias += (col as f64 / 2.0).round() as i64;
        }
        weights.push(BlockWeights {
            ln1,
            q: project(&format!("block {b} W_q"), &bl.q, sa1[b], sq[b], qkv_shift)?,
            k: project(&format!("block {b} W_k"), &bl.k, sa1[b], sk[b], qkv_shift)?,
            v: project(&format!("block {b} W_v"), &bl.v, sa1[b], sv[b], qkv_shift)?,
            o,
            ln2,
            fc1: project(&format!("block {b} W_1"), &bl.fc1, sa2[b], (-f64::from(gelu_in)).exp2(), fc1_shift)?,
            fc2: project(&format!("block {b} W_2"), &bl.fc2, sg, sm2[b], fc2_shift)?,
        });
    }
    let rq = |shift, bits| RequantSpec::new(shift, bits).map_err(|e| range("requantization", e.to_string()));
    let ln_spec = |shift: u32, beta: u64| -> Result<LayerNormSpec, GptQuantError> {
        let bits = acc_bits_for(d, e_int, m_bits, beta << k_beta).map_err(|e| range("LayerNorm", e.to_string()))?;
        LayerNormSpec::new(d, e_int, m_bits, rq(shift, bits.max(shift + 8))?)
            .and_then(|l| l.with_input_bits(STREAM_BITS))
            .and_then(|l| l.with_beta_shift(k_beta))
            .map_err(|e| range("LayerNorm", e.to_string()))
    };
    let residual = |ma: i64, mb: i64| -> Result<AddSpec, GptQuantError> {
        let bits = ((1u64 << (STREAM_BITS - 1)) * ma as u64 + 128 * mb as u64 + k as u64).ilog2() + 2;
        let p = rq(RESIDUAL_BITS, bits.max(RESIDUAL_BITS + STREAM_BITS))?;
        AddSpec::wide(ma, mb, k / 2, p, STREAM_BITS, STREAM_BITS).map_err(|e| range("residual", e.to_string()))
    };
    let heads = m.heads;
    let spec = BlockSpec {
        shape: BlockShape { tokens: m.tokens, width: d, heads, hidden: m.hidden },
        ln1: ln_spec(ln1_shift, beta_max1)?,
        qkv: rq(qkv_shift, PROJ_ACC_BITS)?,
        scores: rq(score_shift, (score_shift + 8).max(24))?,
        softmax_frac,
        softmax_table: 12,
        mix: rq(mix_shift, 24)?,
        proj: rq(o_shift, PROJ_ACC_BITS)?,
        residual1: residual(ma1, mb1)?,
        ln2: ln_spec(ln2_shift, beta_max2)?,
        fc1: rq(fc1_shift, PROJ_ACC_BITS)?,
        gelu: GeluSpec::new(gelu_in, gelu_out).map_err(|e| range("GELU", e.to_string()))?,
        fc2: rq(fc2_shift, PROJ_ACC_BITS)?,
        residual2: residual(ma2, mb2)?,
    };
    spec.check()?;

    // Embedding: int8 tables at their own scales, added into S₀.
    let ke = 1i64 << EMBED_BITS;
    let (st, sp) = (r.tok / 127.0, r.pos / 127.0);
    let (mt, mp) = ((ke as f64 * st / sx[0]).round() as i64, (ke as f64 * sp / sx[0]).round() as i64);
    let bits = (128 * (mt + mp) as u64 + ke as u64).ilog2() + 2;
    let add = AddSpec::wide(mt, mp, ke / 2, rq(EMBED_BITS, bits.max(EMBED_BITS + STREAM_BITS))?, 8, STREAM_BITS)
        .map_err(|e| range("embedding", e.to_string()))?;
    let embed = EmbedWeights { tok: int8("token embeddings", &m.tok, st)?, pos: int8("positions", &m.pos, sp)? };
    let embed_spec = EmbedSpec { vocab: m.vocab, tokens: m.tokens, width: d, add };
    embed_spec.check()?;

    // Head: the final LayerNorm (free output) and int8 logits weights.
    let hi = [(1.0 / mr, amax(&m.ln_f.gamma), r.ln_f)];
    let h_shift = free_shift(&hi);
    let saf = free_scale(hi[0].0, hi[0].1, hi[0].2, h_shift);
    let ln_w = norm("the final LayerNorm", &m.ln_f, (m_bits, k_beta), saf, h_shift)?;
    let beta_f = ln_w.1.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
    let e_f = ((m.ln_f.eps * (d as f64).powi(4) / (sx[nb] * sx[nb])).round() as u64).max(1);
    let bits = acc_bits_for(d, e_f, m_bits, beta_f << k_beta).map_err(|e| range("LayerNorm", e.to_string()))?;
    let ln = LayerNormSpec::new(d, e_f, m_bits, rq(h_shift, bits.max(h_shift + 8))?)
        .and_then(|l| l.with_input_bits(STREAM_BITS))
        .and_then(|l| l.with_beta_shift(k_beta))
        .map_err(|e| range("LayerNorm", e.to_string()))?;
    let sw = amax(&m.head.w) / 127.0;
    let head = HeadWeights {
        ln: ln_w,
        out: (int8("head weights", &m.head.w, sw)?, int32("head bias", &m.head.b, saf * sw, 0)?),
    };
    let head_spec = HeadSpec { tokens: m.tokens, width: d, vocab: m.vocab, ln };
    head_spec.check()?;

    let scales = ScaleReport { stream: sx, growth: (g1, g2), softmax_frac, gelu: (gelu_in, gelu_out) };
    Ok(QuantGpt { embed_spec, embed, spec, blocks: weights, head_spec, head, scales })
}
