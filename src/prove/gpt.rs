//! A quantized GPT proven end to end, in memory: three segments — the embedding (one
//! step), the blocks (one step each, one step circuit for all) and the head (one step) —
//! each folded with Nova and compressed into its own zero-knowledge proof, chained by the
//! IVC states between them. This is the library's path; the CLI's jobs (checkpoints,
//! resumption, the statement file) do not cover transformers yet.
//!
//! **The statement.** The prompt's token ids are public (their commitment uses blind 0);
//! the weights are private behind the salted model commitment; the stream between the
//! segments is committed under random blinds (the links reveal nothing of it); the logits
//! of the last position are public with the blind that opens their commitment, and the
//! next token is the first index of the largest. A valid proof shows: the model whose
//! embedding, blocks and head (specs and weights, in order) `model_commitment` commits to
//! maps these tokens to these logits under the quantized semantics of the circuits.

use crate::error::Error;
use crate::model::onnx::gpt::QuantGpt;
use crate::nova::{CompressedSnark, ProverKey, PublicParams, RecursiveSnark, VerifierKey};
use ff::Field;
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::step::Step;
use fold_ml_circuits::transformer::{
    logits_commitment_native, tokens_commitment_native, BlockError, BlockWitness, EmbedStep, EmbedWitness, HeadStep,
    HeadWitness, TransformerStep,
};
use fold_ml_circuits::F;
use fold_ml_verify::keys::{compression_keys, step_params};
use fold_ml_verify::statement::argmax;
use rand_core::OsRng;
use std::time::Instant;

/// One segment's parameters and compression keys.
pub struct SegmentKeys {
    /// Nova's public parameters.
    pub pp: PublicParams,
    /// The compression's prover key.
    pub pk: ProverKey,
    /// The compression's verifier key.
    pub vk: VerifierKey,
}

/// The keys of a GPT's three segments, derived from its public specs alone.
pub struct GptKeys {
    /// The embedding's.
    pub embed: SegmentKeys,
    /// The blocks'.
    pub blocks: SegmentKeys,
    /// The head's.
    pub head: SegmentKeys,
}

fn spec_error(e: BlockError) -> Error {
    Error::bad_input("GPT", e.to_string())
}

fn keys(blank: Step) -> Result<SegmentKeys, Error> {
    let pp = step_params(&blank)?;
    let (pk, vk) = compression_keys(&pp)?;
    Ok(SegmentKeys { pp, pk, vk })
}

impl GptKeys {
    /// Sets up the three segments' parameters and keys from `q`'s specs (blank steps).
    pub fn setup(q: &QuantGpt) -> Result<Self, Error> {
        Ok(Self {
            embed: keys(Step::Embed(Box::new(EmbedStep::blank(q.embed_spec).map_err(spec_error)?)))?,
            blocks: keys(Step::Block(Box::new(TransformerStep::blank(q.spec).map_err(spec_error)?)))?,
            head: keys(Step::Head(Box::new(HeadStep::blank(q.head_spec).map_err(spec_error)?)))?,
        })
    }

    /// The verifier keys, in segment order.
    pub fn verifier_keys(&self) -> [&VerifierKey; 3] {
        [&self.embed.vk, &self.blocks.vk, &self.head.vk]
    }
}

/// The IVC state between two segments: the running model commitment and the stream's
/// (blinded) commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GptLink {
    /// Running model commitment.
    pub model: F,
    /// Commitment to the stream.
    pub stream: F,
}

/// A segment's steps and its IVC states at both ends.
type Span = (usize, [F; 3], [F; 3]);

/// What a GPT proof proves (module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptStatement {
    /// The prompt's token ids (public).
    pub tokens: Vec<u16>,
    /// Transformer blocks.
    pub blocks: usize,
    /// The model commitment after the head.
    pub model_commitment: F,
    /// The states after the embedding and after the blocks.
    pub links: [GptLink; 2],
    /// The last position's logits (public).
    pub logits: Vec<i64>,
    /// Bits of a logit in their commitment.
    pub logit_bits: u32,
    /// The blind that opens the logits' commitment.
    pub logits_blind: F,
}

impl GptStatement {
    /// The next token: the first index of the largest logit.
    pub fn next_token(&self) -> usize {
        argmax(&self.logits)
    }

    /// Each segment's steps and its states at both ends.
    fn segments(&self) -> Result<[Span; 3], Error> {
        let bits_ok = (2..=62).contains(&self.logit_bits);
        let fits = |l: &i64| bits_ok && l.unsigned_abs() < 1u64 << (self.logit_bits - 1);
        if self.blocks == 0 || self.tokens.is_empty() || self.logits.is_empty() || !self.logits.iter().all(fits) {
            return Err(Error::bad_input("GPT statement", "no block, no token, no logit, or a logit beyond its bits"));
        }
        let n = self.blocks as u64;
        let [a, b] = self.links;
        let start = [F::ZERO, model_start(), tokens_commitment_native(&self.tokens, F::ZERO)];
        let after_embed = [F::ONE, a.model, a.stream];
        let after_blocks = [F::from(n + 1), b.model, b.stream];
        let logits = logits_commitment_native(&self.logits, self.logit_bits, self.logits_blind);
        let end = [F::from(n + 2), self.model_commitment, logits];
        Ok([(1, start, after_embed), (self.blocks, after_embed, after_blocks), (1, after_blocks, end)])
    }
}

/// A proof of a [`GptStatement`]: one compressed proof per segment.
pub struct GptProof {
    /// What it proves.
    pub statement: GptStatement,
    /// The embedding's, the blocks' and the head's compressed proofs.
    pub proofs: [CompressedSnark; 3],
}

/// Seconds spent: folding and compressing each segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct GptTimings {
    /// Folding, per segment.
    pub fold: [f64; 3],
    /// Compressing, per segment.
    pub compress: [f64; 3],
}

/// A segment proven: its compressed proof, its end state and its seconds (fold, compress).
struct Proven {
    proof: CompressedSnark,
    end: [F; 3],
    seconds: (f64, f64),
}

/// Folds a segment's steps from `z0`, each built only when it is folded (one step in
/// memory at a time, so a deep GPT folds in bounded memory), and compresses the result.
fn prove_segment(
    keys: &SegmentKeys,
    z0: &[F; 3],
    steps: impl Iterator<Item = Result<Step, Error>>,
) -> Result<Proven, Error> {
    let t = Instant::now();
    let mut rs: Option<RecursiveSnark> = None;
    for step in steps {
        let step = step?;
        let snark = match rs.as_mut() {
            Some(snark) => snark,
            None => rs.insert(RecursiveSnark::new(&keys.pp, &step, z0).map_err(|e| Error::nova("folding", e))?),
        };
        snark.prove_step(&keys.pp, &step).map_err(|e| Error::nova("folding", e))?;
    }
    let rs = rs.ok_or_else(|| Error::bad_input("GPT", "a segment without steps"))?;
    let end = <[F; 3]>::try_from(rs.outputs()).map_err(|_| Error::bad_input("GPT", "a state of another arity"))?;
    let fold = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let proof = super::compress_segment(&keys.pp, &keys.pk, &rs)?;
    Ok(Proven { proof, end, seconds: (fold, t.elapsed().as_secs_f64()) })
}

/// Proves that `q` (its weights salted by `salt`) maps the token ids `ids` to its logits,
/// and checks the proof before returning it.
pub fn prove(keys: &GptKeys, q: &QuantGpt, salt: F, ids: &[u16]) -> Result<(GptProof, GptTimings), Error> {
    let n = q.blocks.len();
    let blinds: Vec<F> = (0..=n + 1).map(|_| F::random(OsRng)).collect();
    let embed =
        EmbedWitness { ids: ids.to_vec(), weights: q.embed.clone(), blind_in: F::ZERO, blind_out: blinds[0], salt };
    let embed = EmbedStep::new(q.embed_spec, embed).map_err(spec_error)?;
    let mut x = embed.output().to_vec();
    let z0 = [F::ZERO, model_start(), tokens_commitment_native(ids, F::ZERO)];
    let e = prove_segment(&keys.embed, &z0, std::iter::once(Ok(Step::Embed(Box::new(embed)))))?;
    let blocks = q.blocks.iter().enumerate().map(|(b, weights)| {
        let input = std::mem::take(&mut x);
        let w = BlockWitness { input, weights: weights.clone(), blind_in: blinds[b], blind_out: blinds[b + 1], salt };
        let step = TransformerStep::new(q.spec, w).map_err(spec_error)?;
        x = step.output().to_vec();
        Ok(Step::Block(Box::new(step)))
    });
    let b = prove_segment(&keys.blocks, &e.end, blocks)?;
    let w = HeadWitness { input: x, weights: q.head.clone(), blind_in: blinds[n], blind_out: blinds[n + 1], salt };
    let head = HeadStep::new(q.head_spec, w).map_err(spec_error)?;
    let logits = head.logits().to_vec();
    let h = prove_segment(&keys.head, &b.end, std::iter::once(Ok(Step::Head(Box::new(head)))))?;

    let seconds = [e.seconds, b.seconds, h.seconds];
    let timings = GptTimings { fold: seconds.map(|s| s.0), compress: seconds.map(|s| s.1) };
    let statement = GptStatement {
        tokens: ids.to_vec(),
        blocks: n,
        model_commitment: h.end[1],
        links: [GptLink { model: e.end[1], stream: e.end[2] }, GptLink { model: b.end[1], stream: b.end[2] }],
        logits,
        logit_bits: q.head_spec.logit_bits(),
        logits_blind: blinds[n + 1],
    };
    verify(&keys.verifier_keys(), &statement, [&e.proof, &b.proof, &h.proof])?;
    Ok((GptProof { statement, proofs: [e.proof, b.proof, h.proof] }, timings))
}

/// Verifies every segment's proof (`proofs`: the embedding's, the blocks', the head's)
/// from the state the one before ended in, the first from the public tokens and the fixed
/// model start, the last to the statement's model commitment and public logits; returns
/// the next token.
pub fn verify(
    vks: &[&VerifierKey; 3],
    statement: &GptStatement,
    proofs: [&CompressedSnark; 3],
) -> Result<usize, Error> {
    let segments = statement.segments()?;
    for (((steps, z0, end), vk), (snark, name)) in
        segments.iter().zip(vks).zip(proofs.iter().zip(["embedding", "blocks", "head"]))
    {
        let z = snark.verify(vk, *steps, z0).map_err(|e| Error::nova("verification", e))?;
        if z != end.to_vec() {
            return Err(Error::nova(
                "verification",
                nova_snark::errors::NovaError::ProofVerifyError {
                    reason: format!("the {name} segment ends elsewhere"),
                },
            ));
        }
    }
    Ok(statement.next_token())
}
