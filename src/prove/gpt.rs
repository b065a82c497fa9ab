//! A quantized GPT proven end to end: three segments — the embedding (one step), the
//! blocks (one step each, one step circuit for all) and the head (one step) — each folded
//! with Nova and compressed into its own zero-knowledge proof, chained by the IVC states
//! between them. What the proof states is [`fold_ml_verify::gpt`]'s [`GptStatement`].
//!
//! **Resumable by segment and by block.** The prover keeps its [`GptProgress`] (the blinds,
//! each finished segment's proof and end state, and the blocks' folded proof part-way) and
//! hands it to a [`ProgressSink`] after each segment and after each folded block: a job that
//! writes it down loses at most the segment in progress (for the blocks, at most the blocks
//! folded since its last write, and the compression under way) when it is killed. The
//! stream a segment or block starts from is recomputed natively from the model and the
//! tokens. The progress is secret (its blinds open the links, and the folded proof holds
//! the witness), like a checkpoint.

use crate::error::{Error, VerifyError};
use crate::model::onnx::gpt::quantize::GptQuantError;
use crate::model::onnx::gpt::QuantGpt;
use crate::nova::{CompressedSnark, ProverKey, PublicParams, RecursiveSnark, VerifierKey};
use ff::Field;
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::step::Step;
use fold_ml_circuits::transformer::{
    stream_commitment_native, tokens_commitment_native, BlockError, BlockWitness, EmbedStep, EmbedWitness, HeadStep,
    HeadWitness, TransformerStep,
};
use fold_ml_circuits::F;
use fold_ml_verify::architecture::KeyedCircuit;
use fold_ml_verify::gpt::{verify_gpt_segment, GptArchitecture, GptLink, GptStatement};
use fold_ml_verify::keys::{compression_keys, step_params};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::path::Path;
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

impl SegmentKeys {
    /// Sets up the keys of a segment's circuit (no cache).
    pub fn setup(segment: &impl KeyedCircuit) -> Result<Self, Error> {
        Self::of(step_params(&segment.blank_step()?)?)
    }

    /// The keys of a segment's circuit, its parameters from the prover's cache under
    /// `cache` (set up and cached on first use).
    pub fn cached(cache: &Path, segment: &impl KeyedCircuit) -> Result<Self, Error> {
        Self::of(super::keys::cached_params(cache, segment)?.0)
    }

    fn of(pp: PublicParams) -> Result<Self, Error> {
        let (pk, vk) = compression_keys(&pp)?;
        Ok(Self { pp, pk, vk })
    }
}

/// The keys of a GPT's three segments, all in memory (the library's and the tests' path;
/// a job loads one segment's at a time).
pub struct GptKeys {
    /// The embedding's, the blocks' and the head's.
    pub segments: [SegmentKeys; 3],
}

impl GptKeys {
    /// Sets up the three segments' parameters and keys from `q`'s specs (blank steps).
    pub fn setup(q: &QuantGpt) -> Result<Self, Error> {
        let [e, b, h] = q.architecture().segments();
        Ok(Self { segments: [SegmentKeys::setup(&e)?, SegmentKeys::setup(&b)?, SegmentKeys::setup(&h)?] })
    }

    /// The verifier keys, in segment order.
    pub fn verifier_keys(&self) -> [&VerifierKey; 3] {
        self.segments.each_ref().map(|k| &k.vk)
    }
}

/// Each segment's step-circuit constraints (embedding, block, head; Nova's verifier circuit
/// excluded), counted on blank steps.
pub fn segment_constraints(arch: &GptArchitecture) -> Result<[usize; 3], Error> {
    let mut counts = [0; 3];
    for (c, segment) in counts.iter_mut().zip(arch.segments()) {
        *c = fold_ml_circuits::cost::step_constraints(&segment.blank_step()?)
            .map_err(|e| Error::bad_input("GPT model", format!("{e:?}")))?;
    }
    Ok(counts)
}

/// A proof of a [`GptStatement`]: one compressed proof per segment.
pub struct GptProof {
    /// What it proves.
    pub statement: GptStatement,
    /// The embedding's, the blocks' and the head's compressed proofs.
    pub proofs: [CompressedSnark; 3],
}

/// Seconds spent: folding and compressing each segment (0 for a segment proven before a
/// resumption).
#[derive(Clone, Copy, Debug, Default)]
pub struct GptTimings {
    /// Folding, per segment.
    pub fold: [f64; 3],
    /// Compressing, per segment.
    pub compress: [f64; 3],
}

/// What a GPT proof has done so far (secret: the blinds open the stream's commitments).
#[derive(Serialize, Deserialize)]
pub struct GptProgress {
    /// The tokens being proven.
    pub tokens: Vec<u16>,
    /// The stream's blinds: after the embedding, after each block; then the logits'.
    #[serde(with = "blinds_serde")]
    pub blinds: Vec<F>,
    /// The segments proven, in order: their compressed proofs and end states.
    pub done: Vec<(CompressedSnark, [F; 3])>,
    /// The blocks' segment part-way (only while it is the one being proven).
    pub folding: Option<BlocksFolded>,
}

/// The blocks folded so far and their folded proof (secret: it holds their witness).
#[derive(Serialize, Deserialize)]
pub struct BlocksFolded {
    /// Blocks folded, from the first.
    pub blocks: usize,
    /// The recursive proof of those blocks, from the embedding's end state.
    pub snark: RecursiveSnark,
}

/// Where a GPT proof reports: every progress worth keeping, the blocks as they fold, and a
/// saved fold that could not be used (the segment starts over).
pub trait ProgressSink {
    /// Called after each finished segment (`folding` is then `None`) and after each folded
    /// block (`folding` holds the blocks so far: the whole segment for the last, before its
    /// compression).
    fn save(&mut self, progress: &GptProgress) -> Result<(), Error>;

    /// A saved fold of the blocks was discarded (why), and the segment starts over.
    fn discarded(&mut self, _why: &str) {}
}

/// A sink that keeps nothing (the in-memory path).
struct Nowhere;

impl ProgressSink for Nowhere {
    fn save(&mut self, _: &GptProgress) -> Result<(), Error> {
        Ok(())
    }
}

mod blinds_serde {
    use crate::F;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[F], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(fold_ml_verify::field::to_bytes).collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<F>, D::Error> {
        let bytes = Vec::<[u8; 32]>::deserialize(d)?;
        bytes
            .iter()
            .map(|b| {
                fold_ml_verify::field::from_bytes(b).ok_or_else(|| serde::de::Error::custom("not a field element"))
            })
            .collect()
    }
}

impl GptProgress {
    /// A fresh start on `tokens` for `blocks` blocks, with new random blinds.
    pub fn start(tokens: &[u16], blocks: usize) -> Self {
        let blinds = (0..blocks + 2).map(|_| F::random(OsRng)).collect();
        Self { tokens: tokens.to_vec(), blinds, done: vec![], folding: None }
    }

    /// Whether this progress can belong to a proof through `blocks` blocks.
    pub fn fits(&self, blocks: usize) -> bool {
        let folding = self.folding.as_ref().is_none_or(|f| self.done.len() == 1 && (1..=blocks).contains(&f.blocks));
        self.blinds.len() == blocks + 2 && self.done.len() <= 3 && folding
    }
}

fn spec_error(e: BlockError) -> Error {
    Error::bad_input("GPT", e.to_string())
}

/// A segment's compressed proof, its end state and its seconds (fold, compress).
type Proven = (CompressedSnark, [F; 3], (f64, f64));

/// Folds a segment's steps from `z0` (after the `start` steps a saved recursive proof
/// holds), each built only when it is folded (one step in memory at a time, so a deep GPT
/// folds in bounded memory), hands the recursive proof and its step count to `folded` after
/// each step, compresses the result and checks the proof; returns it, its end state and the
/// seconds (fold, compress).
fn prove_segment(
    keys: &SegmentKeys,
    j: usize,
    z0: [F; 3],
    start: Option<(RecursiveSnark, usize)>,
    steps: impl Iterator<Item = Result<Step, Error>>,
    folded: &mut dyn FnMut(RecursiveSnark, usize) -> Result<RecursiveSnark, Error>,
) -> Result<Proven, Error> {
    let t = Instant::now();
    let (mut rs, mut count) = match start {
        Some((snark, n)) => (Some(snark), n),
        None => (None, 0),
    };
    for step in steps {
        let step = step?;
        let mut snark = match rs.take() {
            Some(snark) => snark,
            None => RecursiveSnark::new(&keys.pp, &step, &z0).map_err(|e| Error::nova("folding", e))?,
        };
        snark.prove_step(&keys.pp, &step).map_err(|e| Error::nova("folding", e))?;
        count += 1;
        rs = Some(folded(snark, count)?);
    }
    let rs = rs.ok_or_else(|| Error::bad_input("GPT", "a segment without steps"))?;
    let end = <[F; 3]>::try_from(rs.outputs()).map_err(|_| Error::bad_input("GPT", "a state of another arity"))?;
    let fold = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let proof = super::compress_segment(&keys.pp, &keys.pk, &rs)?;
    let z = proof.verify(&keys.vk, count, &z0).map_err(|e| Error::nova("verification", e))?;
    if z != end {
        return Err(Error::bad_input("GPT", format!("segment {j}'s proof ends elsewhere than its folding")));
    }
    Ok((proof, end, (fold, t.elapsed().as_secs_f64())))
}

/// The blocks' fold saved in `progress`, taken out of it if its recursive proof verifies
/// from `z0` and ends at the stream the model computes after its blocks (returned with it:
/// the next block's input); one that does not is reported to `sink` and dropped (the
/// segment starts over).
fn saved_fold(
    keys: &SegmentKeys,
    progress: &mut GptProgress,
    z0: [F; 3],
    q: &QuantGpt,
    ids: &[usize],
    sink: &mut dyn ProgressSink,
) -> Option<(RecursiveSnark, usize, Vec<i16>)> {
    let f = progress.folding.take()?;
    let check = || -> Result<Vec<i16>, String> {
        let z = (f.snark.verify(&keys.pp, f.blocks, &z0))
            .map_err(|e| format!("its recursive proof does not verify ({e})"))?;
        let x = q.stream(ids, f.blocks).map_err(|e| e.to_string())?;
        match z.get(2) == Some(&stream_commitment_native(&x, progress.blinds[f.blocks])) {
            true => Ok(x),
            false => Err("it ends at another stream than the model's".into()),
        }
    };
    match check() {
        Ok(x) => Some((f.snark, f.blocks, x)),
        Err(why) => {
            sink.discarded(&why);
            None
        }
    }
}

/// Proves that `q` (its weights salted by `salt`) maps the token ids in `progress` to its
/// logits, from where `progress` stands: `keys(j)` gives segment `j`'s keys (asked for
/// once, dropped after it), and `sink` is handed the progress after each segment and each
/// folded block. Checks every segment's proof against the final statement before
/// returning.
pub fn prove_from<K: Borrow<SegmentKeys>>(
    q: &QuantGpt,
    salt: F,
    mut progress: GptProgress,
    keys: &mut dyn FnMut(usize) -> Result<K, Error>,
    sink: &mut dyn ProgressSink,
) -> Result<(GptProof, GptTimings), Error> {
    let n = q.blocks.len();
    if !progress.fits(n) {
        return Err(Error::bad_input("GPT progress", "made for another model or prompt"));
    }
    let ids: Vec<usize> = progress.tokens.iter().map(|&t| usize::from(t)).collect();
    let blinds = progress.blinds.clone();
    let mut timings = GptTimings::default();
    while progress.done.len() < 3 {
        let j = progress.done.len();
        let z0 = match progress.done.last() {
            Some((_, end)) => *end,
            None => [F::ZERO, model_start(), tokens_commitment_native(&progress.tokens, F::ZERO)],
        };
        let k = keys(j)?;
        let k = k.borrow();
        let (proof, end, (fold, compress)) = match j {
            0 => {
                let w = EmbedWitness {
                    ids: progress.tokens.clone(),
                    weights: q.embed.clone(),
                    blind_in: F::ZERO,
                    blind_out: blinds[0],
                    salt,
                };
                let step = EmbedStep::new(q.embed_spec, w).map_err(spec_error)?;
                prove_segment(k, j, z0, None, std::iter::once(Ok(Step::Embed(Box::new(step)))), &mut |s, _| Ok(s))?
            }
            1 => {
                let (start, from, mut x) = match saved_fold(k, &mut progress, z0, q, &ids, sink) {
                    Some((snark, from, x)) => (Some((snark, from)), from, x),
                    None => (None, 0, q.stream(&ids, 0).map_err(quant_error)?),
                };
                let blocks = q.blocks.iter().enumerate().skip(from).map(|(b, weights)| {
                    let input = std::mem::take(&mut x);
                    let (blind_in, blind_out) = (blinds[b], blinds[b + 1]);
                    let w = BlockWitness { input, weights: weights.clone(), blind_in, blind_out, salt };
                    let step = TransformerStep::new(q.spec, w).map_err(spec_error)?;
                    x = step.output().to_vec();
                    Ok(Step::Block(Box::new(step)))
                });
                let mut folded = |snark, blocks| {
                    progress.folding = Some(BlocksFolded { blocks, snark });
                    let saved = sink.save(&progress);
                    let f = progress.folding.take().expect("set just above");
                    saved.map(|()| f.snark)
                };
                prove_segment(k, j, z0, start, blocks, &mut folded)?
            }
            _ => {
                let w = HeadWitness {
                    input: q.stream(&ids, n).map_err(quant_error)?,
                    weights: q.head.clone(),
                    blind_in: blinds[n],
                    blind_out: blinds[n + 1],
                    salt,
                };
                let step = HeadStep::new(q.head_spec, w).map_err(spec_error)?;
                prove_segment(k, j, z0, None, std::iter::once(Ok(Step::Head(Box::new(step)))), &mut |s, _| Ok(s))?
            }
        };
        (timings.fold[j], timings.compress[j]) = (fold, compress);
        progress.done.push((proof, end));
        sink.save(&progress)?;
    }
    let ends: Vec<[F; 3]> = progress.done.iter().map(|(_, e)| *e).collect();
    let logits = q.logits(&ids).map_err(quant_error)?;
    let link = |e: &[F; 3]| GptLink { model: e[1], stream: e[2] };
    let statement = GptStatement::new(
        q.architecture(),
        progress.tokens.clone(),
        n,
        ends[2][1],
        [link(&ends[0]), link(&ends[1])],
        (logits, blinds[n + 1]),
    );
    check_states(&statement, &ends)?;
    let proofs: Vec<CompressedSnark> = progress.done.into_iter().map(|(p, _)| p).collect();
    let proofs = <[CompressedSnark; 3]>::try_from(proofs).map_err(|_| Error::bad_input("GPT", "not three proofs"))?;
    Ok((GptProof { statement, proofs }, timings))
}

fn quant_error(e: GptQuantError) -> Error {
    Error::bad_input("GPT", e.to_string())
}

/// The statement is well formed and names the states each segment's proof was checked
/// to end in (each was verified from the one before when it was made).
fn check_states(statement: &GptStatement, ends: &[[F; 3]]) -> Result<(), Error> {
    statement.check().map_err(|e| Error::bad_input("GPT statement", e.to_string()))?;
    if statement.segment_states().iter().zip(ends).any(|((_, _, end), e)| end != e) {
        return Err(Error::bad_input("GPT statement", "the statement does not name the proven end states"));
    }
    Ok(())
}

/// Proves that `q` (its weights salted by `salt`) maps the token ids `ids` to its logits
/// with all three segments' keys in memory; each segment's proof and the statement are
/// checked before it returns ([`prove_from`]).
pub fn prove(keys: &GptKeys, q: &QuantGpt, salt: F, ids: &[u16]) -> Result<(GptProof, GptTimings), Error> {
    let progress = GptProgress::start(ids, q.blocks.len());
    let mut key = |j: usize| Ok(&keys.segments[j]);
    prove_from(q, salt, progress, &mut key, &mut Nowhere)
}

/// Verifies every segment's proof (`proofs`: the embedding's, the blocks', the head's)
/// from the state the one before ended in, the first from the public tokens and the fixed
/// model start, the last to the statement's model commitment and public logits; returns
/// the next token.
pub fn verify(
    vks: &[&VerifierKey; 3],
    statement: &GptStatement,
    proofs: [&CompressedSnark; 3],
) -> Result<usize, VerifyError> {
    statement.check()?;
    for (j, (snark, vk)) in proofs.iter().zip(vks).enumerate() {
        verify_gpt_segment(statement, j, snark, vk)?;
    }
    Ok(statement.next_token)
}
