//! The block's circuit: the gadgets of [`super`]'s module docs, wired by views.

use super::native::{keys, mix_accumulator, projection_views, query, BlockTrace};
use super::spec::{At, BlockError, BlockSpec, BlockWeights};
use crate::gadgets::dot::{dot_product, DotHint};
use crate::gadgets::elementwise::{add, add_wide_hint, output_constraints};
use crate::gadgets::gelu::{gelu, gelu_constraints, GeluHint};
use crate::gadgets::layernorm::{layernorm, layernorm_constraints, LayerNormHint, LayerNormSpec};
use crate::gadgets::matmul::{matmul, matmul_constraints, MatMulHint};
use crate::gadgets::requant::{requant_signed_constraints, requantize_signed, RequantHint};
use crate::gadgets::softmax::{softmax, softmax_constraints, SoftmaxHint};
use crate::quant::{int_to_field, RequantSpec};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};

type Lc = LinearCombination<F>;

/// The witness of a block: every gadget's, in the order [`block`] synthesizes them.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockHint {
    pub(super) ln1: Vec<LayerNormHint>,
    pub(super) qkv: [MatMulHint; 3],
    pub(super) scores: Vec<MatMulHint>,
    pub(super) softmax: Vec<SoftmaxHint>,
    pub(super) mix: Vec<(DotHint, RequantHint)>,
    pub(super) proj: MatMulHint,
    pub(super) residual1: Vec<RequantHint>,
    pub(super) ln2: Vec<LayerNormHint>,
    pub(super) fc1: MatMulHint,
    pub(super) gelu: Vec<GeluHint>,
    pub(super) fc2: MatMulHint,
    pub(super) residual2: Vec<RequantHint>,
}

impl BlockHint {
    /// The honest witness of the block on `x`, from its native trace.
    pub fn new(spec: &BlockSpec, w: &BlockWeights<i8, i64>, x: &[i16], tr: &BlockTrace) -> Result<Self, BlockError> {
        let s = spec.shape;
        let (t, d, dh) = (s.tokens, s.width, s.head_width());
        let project = |a: &[i8], (wm, b): &(Vec<i8>, Vec<i64>), k, m, requant| {
            let (a, wm, b) = projection_views(t, (a, wm, b), (k, m))?;
            MatMulHint::new(&spec.projection(k, m, requant)?, a, wm, Some(b)).at("projection")
        };
        let qkv = [
            project(&tr.a1, &w.q, d, d, spec.qkv)?,
            project(&tr.a1, &w.k, d, d, spec.qkv)?,
            project(&tr.a1, &w.v, d, d, spec.qkv)?,
        ];
        let (mut scores, mut softmax, mut mix) = (vec![], vec![], vec![]);
        for h in 0..s.heads {
            for i in 0..t {
                let (q, k) = (query(&tr.qkv[0], d, dh, h, i)?, keys(&tr.qkv[1], d, dh, h, i)?);
                scores.push(MatMulHint::new(&spec.score_row(i)?, q, k, None).at("scores")?);
                softmax.push(SoftmaxHint::new(&tr.scores[h * t + i], &spec.softmax_row(i)?).at("softmax")?);
                let p = &tr.probs[h * t + i];
                for col in h * dh..(h + 1) * dh {
                    let v = |j: usize| int_to_field(i64::from(tr.qkv[2][j * d + col]));
                    let taps = p.iter().enumerate().map(|(j, &p)| (int_to_field(i64::from(p)), v(j)));
                    let acc = mix_accumulator(p, &tr.qkv[2], d, col);
                    mix.push((DotHint::new(taps), RequantHint::signed(acc, spec.mix).at("mix")?));
                }
            }
        }
        Ok(Self {
            ln1: norm_hints(&spec.ln1, x, &w.ln1)?,
            qkv,
            scores,
            softmax,
            mix,
            proj: project(&tr.mixed, &w.o, d, d, spec.proj)?,
            residual1: add_wide_hint(&spec.residual1, x, &tr.attn).at("residual1")?,
            ln2: norm_hints(&spec.ln2, &tr.r1, &w.ln2)?,
            fc1: project(&tr.a2, &w.fc1, d, s.hidden, spec.fc1)?,
            gelu: tr.h1.iter().map(|&v| GeluHint::new(v, spec.gelu)).collect::<Result<_, _>>().at("gelu")?,
            fc2: project(&tr.g, &w.fc2, s.hidden, d, spec.fc2)?,
            residual2: add_wide_hint(&spec.residual2, &tr.r1, &tr.m2).at("residual2")?,
        })
    }
}

/// The LayerNorm witness of every token's row.
fn norm_hints<T: Copy + Into<i64>>(
    ln: &LayerNormSpec,
    x: &[T],
    (g, b): &(Vec<i8>, Vec<i64>),
) -> Result<Vec<LayerNormHint>, BlockError> {
    x.chunks(ln.d()).map(|row| LayerNormHint::new(row, g, b, ln)).collect::<Result<_, _>>().at("layernorm")
}

/// A gadget's error inside synthesis.
fn unsat(e: BlockError) -> SynthesisError {
    SynthesisError::Unsatisfiable(e.to_string())
}

fn lcs(v: &[AllocatedNum<F>]) -> Vec<Lc> {
    v.iter().map(|a| LinearCombination::zero() + a.get_variable()).collect()
}

/// Synthesizes the block on the `T×d` stream `x` with weights `w` (linear combinations
/// the caller has range-checked: int8 activations and weights, int32 biases; LayerNorm's
/// `β` within its headroom) and returns the block's `T×d` output.
pub fn block<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &BlockSpec,
    w: &BlockWeights<Lc, Lc>,
    x: &[Lc],
    hint: &BlockHint,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    spec.check().map_err(unsat)?;
    w.check(&spec.shape).map_err(unsat)?;
    let s = spec.shape;
    let (t, d, dh) = (s.tokens, s.width, s.head_width());
    let heads = s.heads * t;
    if x.len() != t * d || hint.scores.len() != heads || hint.softmax.len() != heads || hint.mix.len() != heads * dh {
        return Err(SynthesisError::Unsatisfiable("transformer block witness has the wrong shape".into()));
    }
    let a1 = lcs(&norm(&mut cs.namespace(|| "ln1"), &spec.ln1, x, &w.ln1, &hint.ln1)?);
    let project = |cs: &mut CS, name: &str, a: &[Lc], (wm, b): &(Vec<Lc>, Vec<Lc>), (k, m), requant, h| {
        let mm = spec.projection(k, m, requant).map_err(unsat)?;
        let (a, wm, b) = projection_views(t, (a, wm, b), (k, m)).map_err(unsat)?;
        matmul(&mut cs.namespace(|| name.to_string()), &mm, a, wm, Some(b), h).map(|o| lcs(&o))
    };
    let q = project(cs, "q", &a1, &w.q, (d, d), spec.qkv, &hint.qkv[0])?;
    let k = project(cs, "k", &a1, &w.k, (d, d), spec.qkv, &hint.qkv[1])?;
    let v = project(cs, "v", &a1, &w.v, (d, d), spec.qkv, &hint.qkv[2])?;
    let mut mixed = vec![LinearCombination::zero(); t * d];
    for h in 0..s.heads {
        for i in 0..t {
            let cs = &mut cs.namespace(|| format!("head{h} token{i}"));
            let n = h * t + i;
            let (qv, kv) = (query(&q, d, dh, h, i).map_err(unsat)?, keys(&k, d, dh, h, i).map_err(unsat)?);
            let row_spec = spec.score_row(i).map_err(unsat)?;
            let row = matmul(&mut cs.namespace(|| "scores"), &row_spec, qv, kv, None, &hint.scores[n])?;
            let logits: Vec<_> =
                row.iter().map(|a| (LinearCombination::zero() + a.get_variable(), a.get_value())).collect();
            let sm = spec.softmax_row(i).map_err(unsat)?;
            let p = softmax(&mut cs.namespace(|| "softmax"), &sm, &logits, &hint.softmax[n])?;
            let p: Vec<Lc> = p.iter().map(|p| p.lc(F::ONE)).collect();
            for c in 0..dh {
                let cs = &mut cs.namespace(|| format!("mix{c}"));
                let (dot, rq) = &hint.mix[n * dh + c];
                let (acc, y) = requantize_signed(&mut cs.namespace(|| "requant"), spec.mix, rq)?;
                let taps: Vec<_> = (0..=i).map(|j| (&p[j], &v[j * d + h * dh + c])).collect();
                dot_product(cs, &taps, &LinearCombination::zero(), &acc, dot)?;
                mixed[i * d + h * dh + c] = LinearCombination::zero() + y.get_variable();
            }
        }
    }
    let attn = project(cs, "proj", &mixed, &w.o, (d, d), spec.proj, &hint.proj)?;
    let r1 = lcs(&add(&mut cs.namespace(|| "residual1"), &spec.residual1, x, &attn, &hint.residual1)?);
    let a2 = lcs(&norm(&mut cs.namespace(|| "ln2"), &spec.ln2, &r1, &w.ln2, &hint.ln2)?);
    let h1 = project(cs, "fc1", &a2, &w.fc1, (d, s.hidden), spec.fc1, &hint.fc1)?;
    if hint.gelu.len() != h1.len() {
        return Err(SynthesisError::Unsatisfiable("GELU witness has the wrong length".into()));
    }
    let g = h1
        .iter()
        .zip(&hint.gelu)
        .enumerate()
        .map(|(i, (x, gh))| gelu(&mut cs.namespace(|| format!("gelu{i}")), spec.gelu, x, gh))
        .collect::<Result<Vec<_>, _>>()?;
    let m2 = project(cs, "fc2", &lcs(&g), &w.fc2, (s.hidden, d), spec.fc2, &hint.fc2)?;
    add(&mut cs.namespace(|| "residual2"), &spec.residual2, &r1, &m2, &hint.residual2)
}

/// LayerNorm of every token's row.
fn norm<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    ln: &LayerNormSpec,
    x: &[Lc],
    (g, b): &(Vec<Lc>, Vec<Lc>),
    hints: &[LayerNormHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    let rows: Vec<_> = x.chunks(ln.d()).collect();
    if rows.len() != hints.len() {
        return Err(SynthesisError::Unsatisfiable("LayerNorm witness has the wrong length".into()));
    }
    let mut out = Vec::with_capacity(x.len());
    for (i, (row, h)) in rows.iter().zip(hints).enumerate() {
        out.extend(layernorm(&mut cs.namespace(|| format!("token{i}")), ln, row, g, b, h)?);
    }
    Ok(out)
}

/// Constraints of [`block`]: the sum of its gadgets'.
pub fn block_constraints(spec: &BlockSpec) -> Result<usize, BlockError> {
    spec.check()?;
    let s = spec.shape;
    let (t, d, dh) = (s.tokens, s.width, s.head_width());
    let project = |k, m, requant: RequantSpec| spec.projection(k, m, requant).map(|mm| matmul_constraints(&mm));
    let mut n = t * (layernorm_constraints(&spec.ln1) + layernorm_constraints(&spec.ln2));
    n += 3 * project(d, d, spec.qkv)? + project(d, d, spec.proj)?;
    n += project(d, s.hidden, spec.fc1)? + project(s.hidden, d, spec.fc2)?;
    for i in 0..t {
        let per_head = matmul_constraints(&spec.score_row(i)?)
            + softmax_constraints(&spec.softmax_row(i)?)
            + dh * (i + 1 + requant_signed_constraints(spec.mix));
        n += s.heads * per_head;
    }
    n += t * d * (output_constraints(spec.residual1.requant()) + output_constraints(spec.residual2.requant()));
    n += t * s.hidden * gelu_constraints(spec.gelu);
    Ok(n)
}
