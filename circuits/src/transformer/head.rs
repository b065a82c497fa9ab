//! A GPT's head as one Nova step: the last block's 16-bit stream in, the logits of the
//! last position (the next token's) out.
//!
//! State `z = [layers, model, stream]` in, `[layers + 1, model', logits]` out. One step:
//! 1. range-checks its private input stream and opens `z_in.stream` with it, as a block
//!    step does ([`super::stream_commitment_native`]);
//! 2. range-checks the final LayerNorm's `γ` (int8) and `β` (int32) and the output
//!    projection's weights (int8) and biases (int32), and absorbs them into the running
//!    model commitment, each under a digest of the whole [`HeadSpec`] and its place;
//! 3. normalizes the last position's row ([`crate::gadgets::layernorm`]) and computes
//!    every logit `b_o + Σ_i a_i·W_io` exactly, as an integer of [`HeadSpec::logit_bits`]
//!    bits (`|logit| < 2^31 + d·2^14`, since `a` and `W` are int8 and `b` int32); each
//!    `logit + 2^(B-1)` is decomposed into `B` bits, so the packing below is injective;
//! 4. commits to the logits under a fresh blind: `H(tag(V), blind, packB(logit + 2^(B-1)))`
//!    ([`logits_commitment_native`]). A public output opens it with its blind; the next
//!    token is the first index of the largest logit.
//!
//! The logits are the accumulators themselves, not requantized: the next-token choice of
//! the proof is the one the importer measured, with no rounding tie added.

use super::spec::{At, BlockError, STREAM_BITS};
use super::step::{
    absorb, absorb_native, count_up, layernorm_fields, open_stream, packed_commitment, packed_commitment_native,
    state3, tensor_digest, tensor_weights, Biases,
};
use crate::gadgets::bits::{alloc_uint, lc};
use crate::gadgets::commit::{Chunks, LayerUpdate};
use crate::gadgets::dot::{dot_native, dot_product, DotHint};
use crate::gadgets::layernorm::{layernorm, layernorm_native, LayerNormHint, LayerNormSpec};
use crate::layer::LayerWeights;
use crate::quant::{bits_le, int_to_field};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};

/// Domain tag of a head tensor's spec digest.
pub const TAG_HEAD_TENSOR: u64 = 0xf01d_0014;
/// Domain tag of a logits commitment.
pub const TAG_LOGITS: u64 = 0xf01d_0015;
/// Version of [`HeadSpec::encode`]'s meaning.
pub const HEAD_ENCODING: u64 = 1;

/// The public shape and scales of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Positions of the stream.
    pub tokens: usize,
    /// Width of the stream.
    pub width: usize,
    /// Logits (the vocabulary).
    pub vocab: usize,
    /// The final LayerNorm (of a 16-bit row into int8).
    pub ln: LayerNormSpec,
}

/// A head's parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadWeights {
    /// The final LayerNorm's `(γ, β)`.
    pub ln: (Vec<i8>, Vec<i64>),
    /// The output projection, input-major (`width × vocab`), and its biases.
    pub out: (Vec<i8>, Vec<i64>),
}

impl HeadSpec {
    /// Checks the shape and that the LayerNorm reads a row of the 16-bit stream.
    pub fn check(&self) -> Result<(), BlockError> {
        if self.tokens == 0 || self.vocab == 0 || self.width == 0 || self.width > 1 << 20 {
            return Err(BlockError::Shape("a head needs tokens, a vocabulary and a width of at most 2^20".into()));
        }
        if self.ln.d() != self.width || self.ln.in_bits() != STREAM_BITS {
            return Err(BlockError::Shape("the head's LayerNorm reads a row of the 16-bit stream".into()));
        }
        Ok(())
    }

    /// Bits `B` of a logit: `|b + Σ a·w| ≤ 2^31 + d·2^14 < 2^(B-1)`.
    pub fn logit_bits(&self) -> u32 {
        let max = (1u64 << 31) + self.width as u64 * (1 << 14);
        1 + (64 - max.leading_zeros())
    }

    /// Every public number of the head, behind its encoding version.
    pub fn encode(&self) -> Vec<F> {
        let u = |v: usize| F::from(v as u64);
        let mut out = vec![F::from(HEAD_ENCODING), u(self.tokens), u(self.width), u(self.vocab)];
        out.extend(layernorm_fields(&self.ln));
        out
    }

    /// Each tensor's update of the model commitment: the LayerNorm, then the projection.
    pub fn updates(&self) -> [LayerUpdate; 2] {
        let shapes = [(self.width, 1), (self.vocab, self.width)];
        std::array::from_fn(|i| LayerUpdate {
            digest: tensor_digest(TAG_HEAD_TENSOR, self.encode(), i),
            chunks: Chunks::new(shapes[i].0, shapes[i].1, 0),
        })
    }

    fn check_weights(&self, w: &HeadWeights) -> Result<(), BlockError> {
        self.check()?;
        let (d, v) = (self.width, self.vocab);
        let lens = [w.ln.0.len(), w.ln.1.len(), w.out.0.len(), w.out.1.len()];
        if lens != [d, d, d * v, v] {
            return Err(BlockError::Shape(format!(
                "head tensors of {lens:?} values, the spec needs [{d}, {d}, {}, {v}]",
                d * v
            )));
        }
        Ok(())
    }

    /// The last position's row of a stream of this head's shape.
    fn last_row<'a>(&self, x: &'a [i16]) -> Result<&'a [i16], BlockError> {
        match x.len() == self.tokens * self.width {
            true => Ok(&x[x.len() - self.width..]),
            false => Err(BlockError::Shape(format!(
                "a stream of {} values, the head reads {}",
                x.len(),
                self.tokens * self.width
            ))),
        }
    }
}

/// The last position's logits of the stream `x`.
pub fn head_native(spec: &HeadSpec, w: &HeadWeights, x: &[i16]) -> Result<Vec<i64>, BlockError> {
    logits(spec, w, &normalized(spec, w, x)?)
}

/// The last position's row of `x` normalized (the head's LayerNorm), after checking the
/// head's parameters.
fn normalized(spec: &HeadSpec, w: &HeadWeights, x: &[i16]) -> Result<Vec<i8>, BlockError> {
    spec.check_weights(w)?;
    layernorm_native(spec.last_row(x)?, &w.ln.0, &w.ln.1, &spec.ln).at("head layernorm")
}

/// The taps `(w_io, a_i)` of logit `o`: column `o` of the input-major projection.
fn taps<'a>(spec: &HeadSpec, w: &'a HeadWeights, a: &'a [i8], o: usize) -> impl Iterator<Item = (i8, i8)> + 'a {
    let m = spec.vocab;
    a.iter().enumerate().map(move |(i, &a)| (w.out.0[i * m + o], a))
}

/// Every logit `b_o + Σ_i a_i·W_io` of the normalized row `a`, each checked to fit its bits.
fn logits(spec: &HeadSpec, w: &HeadWeights, a: &[i8]) -> Result<Vec<i64>, BlockError> {
    let half = 1i64 << (spec.logit_bits() - 1);
    let wide = |(w, a): (i8, i8)| (i64::from(w), i64::from(a));
    let out: Vec<i64> = (0..spec.vocab).map(|o| dot_native(taps(spec, w, a, o).map(wide), w.out.1[o])).collect();
    match out.iter().all(|&l| (-half..half).contains(&l)) {
        true => Ok(out),
        false => Err(BlockError::Shape("a logit is outside its bits (a bias beyond int32)".into())),
    }
}

/// Commitment to logits of `bits` bits under a blind: `H(tag(V), blind, packB(l + 2^(B-1)))`.
/// Panics unless every logit fits (callers take them from [`head_native`]).
pub fn logits_commitment_native(logits: &[i64], bits: u32, blind: F) -> F {
    let half = 1i64 << (bits - 1);
    let limbs: Vec<u64> = logits.iter().map(|&l| u64::try_from(l + half).expect("a logit within its bits")).collect();
    packed_commitment_native(TAG_LOGITS, &limbs, bits, blind)
}

/// The running model commitment after the head.
pub fn head_update_native(spec: &HeadSpec, acc: F, salt: F, w: &HeadWeights) -> Result<F, BlockError> {
    spec.check_weights(w)?;
    Ok(absorb_native(&spec.updates(), &[tensor_weights(&w.ln)?, tensor_weights(&w.out)?], acc, salt))
}

/// The private inputs of the head step.
#[derive(Clone, Debug)]
pub struct HeadWitness {
    /// The last block's output stream.
    pub input: Vec<i16>,
    /// The head's parameters.
    pub weights: HeadWeights,
    /// Blind of the input stream's commitment.
    pub blind_in: F,
    /// Blind of the logits' commitment.
    pub blind_out: F,
    /// The model's secret salt.
    pub salt: F,
}

/// The head as a step circuit (module docs).
#[derive(Clone, Debug)]
pub struct HeadStep {
    spec: HeadSpec,
    witness: HeadWitness,
    tensors: [LayerWeights; 2],
    norm: LayerNormHint,
    dots: Vec<DotHint>,
    logits: Vec<i64>,
}

impl HeadStep {
    /// The step of `spec` on `witness`, evaluated natively.
    pub fn new(spec: HeadSpec, witness: HeadWitness) -> Result<Self, BlockError> {
        let w = &witness.weights;
        let a = normalized(&spec, w, &witness.input)?;
        let logits = logits(&spec, w, &a)?;
        let row = spec.last_row(&witness.input)?;
        let norm = LayerNormHint::new(row, &w.ln.0, &w.ln.1, &spec.ln).at("head layernorm")?;
        let field = |(w, a): (i8, i8)| (int_to_field(i64::from(w)), int_to_field(i64::from(a)));
        let dots = (0..spec.vocab).map(|o| DotHint::new(taps(&spec, w, &a, o).map(field))).collect();
        let tensors = [tensor_weights(&w.ln)?, tensor_weights(&w.out)?];
        Ok(Self { spec, witness, tensors, norm, dots, logits })
    }

    /// A step of `spec` on zeros, for parameter setup.
    pub fn blank(spec: HeadSpec) -> Result<Self, BlockError> {
        let (d, v) = (spec.width, spec.vocab);
        let weights = HeadWeights { ln: (vec![0; d], vec![0; d]), out: (vec![0; d * v], vec![0; v]) };
        let input = vec![0; spec.tokens * d];
        Self::new(spec, HeadWitness { input, weights, blind_in: F::ZERO, blind_out: F::ZERO, salt: F::ZERO })
    }

    /// The logits.
    pub fn logits(&self) -> &[i64] {
        &self.logits
    }

    /// The state after this step from `[layers, model, stream]` (native twin of the circuit).
    pub fn next_state(&self, [layers, model, _]: [F; 3]) -> [F; 3] {
        let w = &self.witness;
        let model = absorb_native(&self.spec.updates(), &self.tensors, model, w.salt);
        [layers + F::ONE, model, logits_commitment_native(&self.logits, self.spec.logit_bits(), w.blind_out)]
    }
}

impl StepCircuit<F> for HeadStep {
    fn arity(&self) -> usize {
        3
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [layers, model, stream] = state3(z)?;
        let (s, w) = (&self.spec, &self.witness);
        let x = open_stream(cs, &w.input, w.blind_in, stream)?;

        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(w.salt))?;
        let (acc, terms) = absorb(cs, &s.updates(), Biases::Checked, &self.tensors, &salt, model)?;
        let [(gamma, beta), (weights, bias)] =
            <[_; 2]>::try_from(terms).map_err(|_| SynthesisError::Unsatisfiable("missing tensor".into()))?;
        if x.len() < s.width || self.dots.len() != s.vocab || weights.len() != s.width * s.vocab {
            return Err(SynthesisError::Unsatisfiable("head witness has the wrong shape".into()));
        }
        let row = &x[x.len() - s.width..];
        let a = layernorm(&mut cs.namespace(|| "layernorm"), &s.ln, row, &gamma, &beta, &self.norm)?;
        let a: Vec<LinearCombination<F>> = a.iter().map(|a| LinearCombination::zero() + a.get_variable()).collect();

        let bits = s.logit_bits();
        let half = 1i64 << (bits - 1);
        let mut limbs = Vec::with_capacity(s.vocab);
        for o in 0..s.vocab {
            let cs = &mut cs.namespace(|| format!("logit{o}"));
            let value = self.logits.get(o).copied().unwrap_or(0);
            let limb = alloc_uint(&mut cs.namespace(|| "bits"), &bits_le((value + half) as u64, bits))?;
            let logit = lc(&limb) - (int_to_field(half), CS::one());
            let column: Vec<_> = (0..s.width).map(|i| &weights[i * s.vocab + o]).collect();
            let taps: Vec<_> = column.into_iter().zip(&a).collect();
            dot_product(&mut cs.namespace(|| "b + Σ a·w"), &taps, &bias[o], &logit, &self.dots[o])?;
            limbs.push(limb);
        }
        let blind_out = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(w.blind_out))?;
        let committed = packed_commitment(&mut cs.namespace(|| "commit logits"), TAG_LOGITS, &limbs, bits, &blind_out)?;
        Ok(vec![count_up(cs, layers)?, acc, committed])
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
