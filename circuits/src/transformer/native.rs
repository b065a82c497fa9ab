//! The native twin of a transformer block: every intermediate tensor, from which the
//! circuit's witness is built (so the two cannot drift apart).

use super::spec::{At, BlockError, BlockSpec, BlockWeights};
use crate::gadgets::elementwise::add_wide_native;
use crate::gadgets::gelu::gelu_native;
use crate::gadgets::layernorm::{layernorm_native, LayerNormSpec};
use crate::gadgets::matmul::matmul_native;
use crate::gadgets::softmax::softmax_native;
use crate::gadgets::view::View;
use crate::quant::requantize_signed_native;

/// Every tensor a block computes, row-major over tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockTrace {
    /// LayerNorm₁ of the input (`T×d`).
    pub a1: Vec<i8>,
    /// The projections `q`, `k`, `v` (`T×d` each).
    pub qkv: [Vec<i8>; 3],
    /// The scores of head `h`, token `i` (index `h·T + i`, `i + 1` of them).
    pub scores: Vec<Vec<i8>>,
    /// Their softmax, `p ∈ [0, 2^7]`.
    pub probs: Vec<Vec<u32>>,
    /// `Σ_j p_ij·v_j` of every head, side by side (`T×d`).
    pub mixed: Vec<i8>,
    /// The output projection (`T×d`).
    pub attn: Vec<i8>,
    /// The stream after attention (`T×d`, [`super::STREAM_BITS`] bits).
    pub r1: Vec<i16>,
    /// LayerNorm₂ of it (`T×d`).
    pub a2: Vec<i8>,
    /// The MLP's first product, GELU's input (`T×H`).
    pub h1: Vec<i8>,
    /// GELU of it (`T×H`).
    pub g: Vec<i8>,
    /// The MLP's second product (`T×d`).
    pub m2: Vec<i8>,
    /// The block's output (`T×d`, [`super::STREAM_BITS`] bits).
    pub out: Vec<i16>,
}

/// A view, its bounds checked.
pub(crate) fn view<T>(
    data: &[T],
    shape: (usize, usize),
    stride: [usize; 2],
    offset: usize,
) -> Result<View<'_, T>, BlockError> {
    View::strided(data, shape, stride, offset).map_err(|e| BlockError::Shape(e.to_string()))
}

/// The operands of a `T×k` by `k×m` projection: the `T×k` input, the input-major `k×m`
/// weights and the bias broadcast over the rows.
pub(crate) type Operands<'a, A, W, B> = (View<'a, A>, View<'a, W>, View<'a, B>);

/// The views of a projection's operands (module docs of [`super`]).
pub(crate) fn projection_views<'a, A, W, B>(
    tokens: usize,
    (a, w, b): (&'a [A], &'a [W], &'a [B]),
    (k, m): (usize, usize),
) -> Result<Operands<'a, A, W, B>, BlockError> {
    Ok((view(a, (tokens, k), [k, 1], 0)?, view(w, (k, m), [m, 1], 0)?, view(b, (tokens, m), [0, 1], 0)?))
}

/// `Σ_j p_j·v[j][col]` over the `p.len()` tokens a row attends to, `v` of width `d`.
pub(crate) fn mix_accumulator(p: &[u32], v: &[i8], d: usize, col: usize) -> i64 {
    p.iter().enumerate().map(|(j, &p)| i64::from(p) * i64::from(v[j * d + col])).sum()
}

/// The native twin of the block on the `T×d` input `x`.
pub fn block_native(spec: &BlockSpec, w: &BlockWeights<i8, i64>, x: &[i16]) -> Result<BlockTrace, BlockError> {
    spec.check()?;
    w.check(&spec.shape)?;
    let s = spec.shape;
    let (t, d, dh) = (s.tokens, s.width, s.head_width());
    if x.len() != t * d {
        return Err(BlockError::Shape(format!("input of {} values, expected {t}×{d}", x.len())));
    }
    let a1 = normalize(&spec.ln1, x, &w.ln1, t)?;
    let project = |a: &[i8], (wm, b): &(Vec<i8>, Vec<i64>), k, m, requant| {
        let (a, wm, b) = projection_views(t, (a, wm, b), (k, m))?;
        matmul_native(&spec.projection(k, m, requant)?, a, wm, Some(b)).at("projection")
    };
    let qkv =
        [project(&a1, &w.q, d, d, spec.qkv)?, project(&a1, &w.k, d, d, spec.qkv)?, project(&a1, &w.v, d, d, spec.qkv)?];
    let (mut scores, mut probs) = (Vec::with_capacity(s.heads * t), Vec::with_capacity(s.heads * t));
    let mut mixed = vec![0i8; t * d];
    for h in 0..s.heads {
        for i in 0..t {
            let row =
                matmul_native(&spec.score_row(i)?, query(&qkv[0], d, dh, h, i)?, keys(&qkv[1], d, dh, h, i)?, None)
                    .at("scores")?;
            let p = softmax_native(&row, &spec.softmax_row(i)?).at("softmax")?;
            for c in 0..dh {
                let col = h * dh + c;
                let acc = mix_accumulator(&p, &qkv[2], d, col);
                mixed[i * d + col] = requantize_signed_native(acc, spec.mix).at("mix")?;
            }
            scores.push(row);
            probs.push(p);
        }
    }
    let attn = project(&mixed, &w.o, d, d, spec.proj)?;
    let r1 = add_wide_native(&spec.residual1, x, &attn).at("residual1")?;
    let a2 = normalize(&spec.ln2, &r1, &w.ln2, t)?;
    let h1 = project(&a2, &w.fc1, d, s.hidden, spec.fc1)?;
    let g = h1.iter().map(|&v| gelu_native(v, spec.gelu)).collect::<Vec<_>>();
    let m2 = project(&g, &w.fc2, s.hidden, d, spec.fc2)?;
    let out = add_wide_native(&spec.residual2, &r1, &m2).at("residual2")?;
    Ok(BlockTrace { a1, qkv, scores, probs, mixed, attn, r1, a2, h1, g, m2, out })
}

/// LayerNorm of every token's row.
fn normalize(
    ln: &LayerNormSpec,
    x: &[i16],
    (gamma, beta): &(Vec<i8>, Vec<i64>),
    tokens: usize,
) -> Result<Vec<i8>, BlockError> {
    let d = ln.d();
    let mut out = Vec::with_capacity(tokens * d);
    for row in x.chunks(d) {
        out.extend(layernorm_native(row, gamma, beta, ln).at("layernorm")?);
    }
    Ok(out)
}

/// Token `i`'s query in head `h`: a `1×(d/h)` view of `q`.
pub(crate) fn query<T>(q: &[T], d: usize, dh: usize, h: usize, i: usize) -> Result<View<'_, T>, BlockError> {
    view(q, (1, dh), [d, 1], i * d + h * dh)
}

/// The keys of tokens `0..=i` in head `h`, transposed: a `(d/h)×(i+1)` view of `k`.
pub(crate) fn keys<T>(k: &[T], d: usize, dh: usize, h: usize, i: usize) -> Result<View<'_, T>, BlockError> {
    view(k, (dh, i + 1), [1, d], h * dh)
}
