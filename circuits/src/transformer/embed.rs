//! A GPT's embedding as one Nova step: token ids in, the first block's 16-bit residual
//! stream out.
//!
//! State `z = [layers, model, tokens]` in, `[layers + 1, model', stream]` out. One step:
//! 1. opens `z_in.tokens` with its private token ids and input blind:
//!    `H(tag(T), blind, pack16(ids))` ([`tokens_commitment_native`]); each id is bound to a
//!    one-hot selector over the vocabulary by the gather (`id = Σ v·s_v`, `Σ s_v = 1`), so
//!    it lies in `[0, V)` with `V ≤ 2^16` and the 16-bit packing is injective;
//! 2. range-checks both tables (int8) and absorbs them into the running model commitment
//!    (the token table as `V` rows, the position table as `T` rows, each row's bias the
//!    constant 0 — a constant of the circuit, not a witness), each under a digest of the
//!    whole [`EmbedSpec`] and the table's place;
//! 3. reads row `ids[t]` of the token table for every position `t` (a one-hot gather,
//!    [`crate::gadgets::gather`]), and adds row `t` of the position table with the spec's
//!    wide [`AddSpec`] into the signed 16-bit stream;
//! 4. commits to the stream as a block step opens it ([`super::stream_commitment_native`])
//!    under a fresh blind.

use super::spec::{At, BlockError, STREAM_BITS};
use super::step::{
    absorb, absorb_native, commit_stream, count_up, enforce_opens, packed_commitment, packed_commitment_native, state3,
    tensor_digest, transposed, Biases,
};
use crate::gadgets::bits::lc;
use crate::gadgets::commit::{Chunks, LayerUpdate};
use crate::gadgets::elementwise::{add, add_wide_hint, add_wide_native, AddSpec};
use crate::gadgets::gather::{gather, gather_native, GatherHint, GatherSpec};
use crate::gadgets::requant::RequantHint;
use crate::layer::LayerWeights;
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};

/// Domain tag of a token sequence's commitment.
pub const TAG_TOKENS: u64 = 0xf01d_0012;
/// Domain tag of an embedding table's spec digest.
pub const TAG_EMBED_TENSOR: u64 = 0xf01d_0013;
/// Bits of a token id in its commitment (the vocabulary is at most `2^16`).
pub const TOKEN_BITS: u32 = 16;
/// Version of [`EmbedSpec::encode`]'s meaning.
pub const EMBED_ENCODING: u64 = 1;

/// The public shape and scale of an embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSpec {
    /// Rows of the token table.
    pub vocab: usize,
    /// Positions (the context).
    pub tokens: usize,
    /// Width of a row (the stream's).
    pub width: usize,
    /// Token row + position row into the stream: int8 operands, a 16-bit output.
    pub add: AddSpec,
}

/// An embedding's tables, row-major (`vocab × width` and `tokens × width`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedWeights {
    /// The token table.
    pub tok: Vec<i8>,
    /// The position table.
    pub pos: Vec<i8>,
}

impl EmbedSpec {
    /// Checks the shape and that the add reads int8 rows into the 16-bit stream.
    pub fn check(&self) -> Result<(), BlockError> {
        if self.vocab == 0 || self.tokens == 0 || self.width == 0 {
            return Err(BlockError::Shape("an embedding needs tokens, a vocabulary and a width".into()));
        }
        if self.vocab > 1 << TOKEN_BITS {
            return Err(BlockError::Shape(format!("a vocabulary of {} is above 2^{TOKEN_BITS}", self.vocab)));
        }
        if self.add.widths() != (8, STREAM_BITS) {
            return Err(BlockError::Shape("the embedding adds int8 rows into the 16-bit stream".into()));
        }
        Ok(())
    }

    /// Every public number of the embedding, behind its encoding version.
    pub fn encode(&self) -> Vec<F> {
        let u = |v: u64| F::from(v);
        let (m_a, m_b, c) = self.add.terms();
        let rq = self.add.requant();
        let (wa, wo) = self.add.widths();
        let mut out = vec![u(EMBED_ENCODING), u(self.vocab as u64), u(self.tokens as u64), u(self.width as u64)];
        out.extend([m_a, m_b, c].map(crate::quant::int_to_field));
        out.extend([u(rq.shift().into()), u(rq.acc_bits().into()), u(wa.into()), u(wo.into())]);
        out
    }

    /// Each table's update of the model commitment: the token table, then the positions.
    pub fn updates(&self) -> [LayerUpdate; 2] {
        let rows = [self.vocab, self.tokens];
        std::array::from_fn(|i| LayerUpdate {
            digest: tensor_digest(TAG_EMBED_TENSOR, self.encode(), i),
            chunks: Chunks::new(rows[i], self.width, 0),
        })
    }

    fn gather(&self) -> Result<GatherSpec, BlockError> {
        GatherSpec::new(self.vocab, self.width).map_err(|e| BlockError::Shape(e.to_string()))
    }

    fn check_weights(&self, w: &EmbedWeights) -> Result<(), BlockError> {
        self.check()?;
        let (tok, pos) = (self.vocab * self.width, self.tokens * self.width);
        if w.tok.len() != tok || w.pos.len() != pos {
            let got = (w.tok.len(), w.pos.len());
            return Err(BlockError::Shape(format!(
                "embedding tables of {got:?} values, the spec needs ({tok}, {pos})"
            )));
        }
        Ok(())
    }

    /// The rows of `ids` in the token table, as the add's wide operand.
    fn rows(&self, w: &EmbedWeights, ids: &[usize]) -> Result<Vec<i16>, BlockError> {
        self.check_weights(w)?;
        if ids.len() != self.tokens {
            return Err(BlockError::Shape(format!("{} tokens, the embedding reads {}", ids.len(), self.tokens)));
        }
        let g = self.gather()?;
        let mut rows = Vec::with_capacity(self.tokens * self.width);
        for &t in ids {
            let row = gather_native(&g, &w.tok, t).map_err(|e| BlockError::Shape(e.to_string()))?;
            rows.extend(row.into_iter().map(i16::from));
        }
        Ok(rows)
    }
}

/// The stream the embedding gives the first block for token ids `ids`.
pub fn embed_native(spec: &EmbedSpec, w: &EmbedWeights, ids: &[usize]) -> Result<Vec<i16>, BlockError> {
    add_wide_native(&spec.add, &spec.rows(w, ids)?, &w.pos).at("embedding")
}

/// Commitment to token ids under a blind: `H(tag(T), blind, pack16(ids))`.
pub fn tokens_commitment_native(ids: &[u16], blind: F) -> F {
    let limbs: Vec<u64> = ids.iter().map(|&t| u64::from(t)).collect();
    packed_commitment_native(TAG_TOKENS, &limbs, TOKEN_BITS, blind)
}

/// The tables as the model commitment absorbs them: rows with a zero bias each.
fn tables(spec: &EmbedSpec, w: &EmbedWeights) -> [LayerWeights; 2] {
    let table = |t: &[i8], rows| LayerWeights { weights: t.to_vec(), bias: vec![0; rows] };
    [table(&w.tok, spec.vocab), table(&w.pos, spec.tokens)]
}

/// The running model commitment after the embedding.
pub fn embed_update_native(spec: &EmbedSpec, acc: F, salt: F, w: &EmbedWeights) -> Result<F, BlockError> {
    spec.check_weights(w)?;
    Ok(absorb_native(&spec.updates(), &tables(spec, w), acc, salt))
}

/// The private inputs of the embedding step.
#[derive(Clone, Debug)]
pub struct EmbedWitness {
    /// The token ids.
    pub ids: Vec<u16>,
    /// The tables.
    pub weights: EmbedWeights,
    /// Blind of the tokens' commitment.
    pub blind_in: F,
    /// Blind of the output stream's commitment.
    pub blind_out: F,
    /// The model's secret salt.
    pub salt: F,
}

/// The embedding as a step circuit (module docs).
#[derive(Clone, Debug)]
pub struct EmbedStep {
    spec: EmbedSpec,
    witness: EmbedWitness,
    tables: [LayerWeights; 2],
    gathers: Vec<GatherHint>,
    add: Vec<RequantHint>,
    output: Vec<i16>,
}

impl EmbedStep {
    /// The step of `spec` on `witness`, evaluated natively.
    pub fn new(spec: EmbedSpec, witness: EmbedWitness) -> Result<Self, BlockError> {
        let ids: Vec<usize> = witness.ids.iter().map(|&t| usize::from(t)).collect();
        let rows = spec.rows(&witness.weights, &ids)?;
        let g = spec.gather()?;
        let gathers = (ids.iter().map(|&t| GatherHint::new(&g, &witness.weights.tok, t)))
            .collect::<Result<_, _>>()
            .map_err(|e| BlockError::Shape(e.to_string()))?;
        let add = add_wide_hint(&spec.add, &rows, &witness.weights.pos).at("embedding")?;
        let output = add_wide_native(&spec.add, &rows, &witness.weights.pos).at("embedding")?;
        let tables = tables(&spec, &witness.weights);
        Ok(Self { spec, witness, tables, gathers, add, output })
    }

    /// A step of `spec` on zeros, for parameter setup.
    pub fn blank(spec: EmbedSpec) -> Result<Self, BlockError> {
        let weights = EmbedWeights { tok: vec![0; spec.vocab * spec.width], pos: vec![0; spec.tokens * spec.width] };
        let ids = vec![0; spec.tokens];
        Self::new(spec, EmbedWitness { ids, weights, blind_in: F::ZERO, blind_out: F::ZERO, salt: F::ZERO })
    }

    /// The output stream.
    pub fn output(&self) -> &[i16] {
        &self.output
    }

    /// The state after this step from `[layers, model, tokens]` (native twin of the circuit).
    pub fn next_state(&self, [layers, model, _]: [F; 3]) -> [F; 3] {
        let w = &self.witness;
        let model = absorb_native(&self.spec.updates(), &self.tables, model, w.salt);
        [layers + F::ONE, model, super::stream_commitment_native(&self.output, w.blind_out)]
    }
}

impl StepCircuit<F> for EmbedStep {
    fn arity(&self) -> usize {
        3
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [layers, model, tokens] = state3(z)?;
        let (s, w) = (&self.spec, &self.witness);
        let ids = (w.ids.iter().enumerate())
            .map(|(i, &t)| AllocatedNum::alloc(cs.namespace(|| format!("id{i}")), || Ok(F::from(u64::from(t)))))
            .collect::<Result<Vec<_>, _>>()?;
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(w.blind_in))?;
        let limbs: Vec<Num<F>> = ids.iter().cloned().map(Num::from).collect();
        let opened = packed_commitment(&mut cs.namespace(|| "open tokens"), TAG_TOKENS, &limbs, TOKEN_BITS, &blind_in)?;
        enforce_opens(cs, "tokens open z_in.tokens", &opened, tokens);

        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(w.salt))?;
        let (acc, terms) = absorb(cs, &s.updates(), Biases::Zero, &self.tables, &salt, model)?;
        let [(tok, _), (pos, _)] = <[_; 2]>::try_from(terms).map_err(|_| unsat("missing table"))?;
        // `absorb` hands tables back input-major (columns of rows); the gather reads rows
        let (tok, pos) = (transposed(&tok, s.vocab), transposed(&pos, s.tokens));
        let g = s.gather().map_err(|e| unsat(&e.to_string()))?;
        if self.gathers.len() != s.tokens {
            return Err(unsat("gather witness has the wrong length"));
        }
        let mut rows = Vec::with_capacity(s.tokens * s.width);
        for (i, (id, hint)) in ids.iter().zip(&self.gathers).enumerate() {
            let id = LinearCombination::zero() + id.get_variable();
            let row = gather(&mut cs.namespace(|| format!("gather{i}")), &g, &tok, &id, hint)?;
            rows.extend(row.iter().map(lc));
        }
        let out = add(&mut cs.namespace(|| "add positions"), &s.add, &rows, &pos, &self.add)?;
        let committed = commit_stream(cs, out, w.blind_out)?;
        Ok(vec![count_up(cs, layers)?, acc, committed])
    }
}

fn unsat(what: &str) -> SynthesisError {
    SynthesisError::Unsatisfiable(what.into())
}

#[cfg(test)]
#[path = "embed_tests.rs"]
mod tests;
