//! The statement of a GPT proof and its verification: three segments (the embedding, the
//! blocks, the head), each compressed into its own proof, chained by the IVC states
//! between them.
//!
//! **What it proves.** The prompt's token ids are public (their commitment uses blind 0);
//! the weights are private behind the salted model commitment; the stream between the
//! segments is committed under random blinds (the links reveal nothing of it); the logits
//! of the last position are public with the blind that opens their commitment, and the
//! next token is the first index of the largest. A valid proof shows: the model whose
//! embedding, blocks and head (specs and weights, in order) `model_commitment` commits to
//! maps these tokens to these logits under the quantized semantics of the circuits.
//!
//! **Keys.** Each segment's keys depend only on its spec ([`GptSegment`]); the verifier
//! derives them from the statement's [`GptArchitecture`] (bounded by [`GptArchitecture::check`]
//! so that a hostile statement cannot make it derive keys of an unbounded circuit).

use crate::architecture::{digest32, KeyedCircuit};
use crate::artifact::{self, Kind};
use crate::error::{Error, VerifyError};
use crate::field::hex_serde;
use crate::fsutil::read_file;
use crate::keys;
use crate::nova::{CompressedSnark, VerifierKey};
use crate::statement::{argmax, MAX_STATEMENT_BYTES};
use crate::verify::{read_statement, Expected};
use crate::F;
use ff::Field;
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::step::Step;
use fold_ml_circuits::transformer::{
    logits_commitment_native, tokens_commitment_native, BlockSpec, EmbedSpec, EmbedStep, HeadSpec, HeadStep,
    TransformerStep,
};
use fold_ml_circuits::CIRCUIT_VERSION;
use nova_snark::digest::SimpleDigestible;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// The `format` tag of a GPT statement file.
pub const GPT_STATEMENT_FORMAT: &str = "fold-ml gpt statement";
/// GPT statement format version.
pub const GPT_STATEMENT_VERSION: u16 = 1;
/// Largest number of blocks of a statement.
pub const MAX_BLOCKS: usize = 1 << 20;
/// Largest context, model width, MLP width and vocabulary the verifier derives keys for.
pub const MAX_GPT_DIMS: [usize; 4] = [1024, 4096, 16384, 1 << 16];
/// Largest multiply-accumulates (or one-hot selections) of one step: what bounds the
/// circuit the verifier agrees to derive keys for (about 2 constraints each).
pub const MAX_STEP_MACS: u128 = 1 << 22;

/// The names of the three segments, in order.
pub const SEGMENT_NAMES: [&str; 3] = ["embedding", "blocks", "head"];

/// The step circuit of one of a GPT's segments: what its keys depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum GptSegment {
    /// The embedding.
    Embed(EmbedSpec),
    /// Every block.
    Block(Box<BlockSpec>),
    /// The head.
    Head(HeadSpec),
}

/// A segment's step circuit under a circuit version (what its digest covers).
#[derive(Serialize)]
struct Keyed<'a> {
    circuit: &'a str,
    segment: &'a GptSegment,
}

impl SimpleDigestible for Keyed<'_> {}

impl KeyedCircuit for GptSegment {
    fn digest(&self) -> [u8; 32] {
        digest32(&Keyed { circuit: CIRCUIT_VERSION, segment: self })
    }

    fn blank_step(&self) -> Result<Step, Error> {
        let bad = |e: fold_ml_circuits::transformer::BlockError| Error::BadInput {
            what: "GPT architecture".into(),
            reason: e.to_string(),
        };
        Ok(match self {
            Self::Embed(s) => Step::Embed(Box::new(EmbedStep::blank(*s).map_err(bad)?)),
            Self::Block(s) => Step::Block(Box::new(TransformerStep::blank(**s).map_err(bad)?)),
            Self::Head(s) => Step::Head(Box::new(HeadStep::blank(*s).map_err(bad)?)),
        })
    }
}

/// The public description of a GPT's circuits: the embedding's, the blocks' and the head's
/// specs (dimensions and scales), under a circuit version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptArchitecture {
    /// [`CIRCUIT_VERSION`] of the prover.
    pub circuit: String,
    /// The embedding.
    pub embed: EmbedSpec,
    /// Every block.
    pub block: BlockSpec,
    /// The head.
    pub head: HeadSpec,
}

impl SimpleDigestible for GptArchitecture {}

impl GptArchitecture {
    /// The architecture of these specs under this build's circuit.
    pub fn new(embed: EmbedSpec, block: BlockSpec, head: HeadSpec) -> Self {
        Self { circuit: CIRCUIT_VERSION.into(), embed, block, head }
    }

    /// The three segments' circuits, in order.
    pub fn segments(&self) -> [GptSegment; 3] {
        [GptSegment::Embed(self.embed), GptSegment::Block(Box::new(self.block)), GptSegment::Head(self.head)]
    }

    /// Digest of the whole architecture (what `proof.bin` is bound to), 32 bytes.
    pub fn digest(&self) -> [u8; 32] {
        digest32(self)
    }

    /// Checks the specs, that they fit together (one context, width and vocabulary), and
    /// the bounds on what a verifier derives keys for.
    pub fn check(&self) -> Result<(), String> {
        if self.circuit != CIRCUIT_VERSION {
            return Err(format!("circuit {:?}, this verifier has {CIRCUIT_VERSION:?}", self.circuit));
        }
        let (e, b, h) = (&self.embed, &self.block.shape, &self.head);
        let dims = [b.tokens, b.width, b.hidden, e.vocab];
        if dims.iter().zip(MAX_GPT_DIMS).any(|(d, max)| *d > max) {
            return Err(format!("context, width, MLP width, vocabulary {dims:?}: at most {MAX_GPT_DIMS:?}"));
        }
        if (e.tokens, e.width) != (b.tokens, b.width) || (h.tokens, h.width, h.vocab) != (b.tokens, b.width, e.vocab) {
            return Err("the embedding, the blocks and the head disagree on the context, width or vocabulary".into());
        }
        let [t, d, hid, v] = dims.map(|x| x as u128);
        let macs = [t * v * d, t * (4 * d * d + 2 * d * hid) + t * t * d, v * d + t * d];
        if macs.iter().any(|m| *m > MAX_STEP_MACS) {
            return Err(format!("steps of {macs:?} multiply-accumulates: at most {MAX_STEP_MACS} per step"));
        }
        let spec = |r: Result<(), fold_ml_circuits::transformer::BlockError>| r.map_err(|e| e.to_string());
        spec(self.embed.check())?;
        spec(self.block.check())?;
        spec(self.head.check())
    }
}

/// The IVC state between two segments: the running model commitment and the stream's
/// (blinded) commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptLink {
    /// Running model commitment.
    #[serde(with = "hex_serde")]
    pub model: F,
    /// Commitment to the stream.
    #[serde(with = "hex_serde")]
    pub stream: F,
}

/// A segment's steps and its IVC states at both ends.
pub type Span = (usize, [F; 3], [F; 3]);

/// What a GPT proof proves (module docs), as `statement.json` holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptStatement {
    /// Always [`GPT_STATEMENT_FORMAT`].
    pub format: String,
    /// [`GPT_STATEMENT_VERSION`].
    pub version: u16,
    /// The circuits.
    pub architecture: GptArchitecture,
    /// The prompt's token ids (public).
    pub tokens: Vec<u16>,
    /// Transformer blocks.
    pub blocks: usize,
    /// The model commitment after the head.
    #[serde(with = "hex_serde")]
    pub model_commitment: F,
    /// The states after the embedding and after the blocks.
    pub links: [GptLink; 2],
    /// The last position's logits (public).
    pub logits: Vec<i64>,
    /// Bits of a logit in their commitment.
    pub logit_bits: u32,
    /// The blind that opens the logits' commitment.
    #[serde(with = "hex_serde")]
    pub logits_blind: F,
    /// The next token: the first index of the largest logit (checked).
    pub next_token: usize,
}

impl GptStatement {
    /// The statement of `blocks` blocks of `architecture` mapping `tokens` to `logits`.
    pub fn new(
        architecture: GptArchitecture,
        tokens: Vec<u16>,
        blocks: usize,
        model_commitment: F,
        links: [GptLink; 2],
        (logits, logits_blind): (Vec<i64>, F),
    ) -> Self {
        Self {
            format: GPT_STATEMENT_FORMAT.into(),
            version: GPT_STATEMENT_VERSION,
            logit_bits: architecture.head.logit_bits(),
            next_token: argmax(&logits),
            architecture,
            tokens,
            blocks,
            model_commitment,
            links,
            logits,
            logits_blind,
        }
    }

    /// The commitment to the public tokens (blind 0): the "input commitment".
    pub fn input_commitment(&self) -> F {
        tokens_commitment_native(&self.tokens, F::ZERO)
    }

    /// Checks everything that can be checked without the proofs.
    pub fn check(&self) -> Result<(), VerifyError> {
        let bad = |m: String| Err(VerifyError::BadStatement(m));
        if self.format != GPT_STATEMENT_FORMAT || self.version != GPT_STATEMENT_VERSION {
            return bad(format!(
                "format {:?} version {}, expected {GPT_STATEMENT_FORMAT:?} version {GPT_STATEMENT_VERSION}",
                self.format, self.version
            ));
        }
        self.architecture.check().or_else(|e| bad(format!("architecture: {e}")))?;
        let (embed, head) = (&self.architecture.embed, &self.architecture.head);
        if self.blocks == 0 || self.blocks > MAX_BLOCKS {
            return bad(format!("{} blocks: 1 to {MAX_BLOCKS}", self.blocks));
        }
        if self.tokens.len() != embed.tokens || self.tokens.iter().any(|&t| usize::from(t) >= embed.vocab) {
            return bad(format!("the model takes {} tokens below {}", embed.tokens, embed.vocab));
        }
        if self.logit_bits != head.logit_bits() {
            return bad(format!("logits of {} bits, the head's are {}", self.logit_bits, head.logit_bits()));
        }
        let fits = |l: &i64| l.unsigned_abs() < 1u64 << (self.logit_bits - 1);
        if self.logits.len() != head.vocab || !self.logits.iter().all(fits) {
            return bad(format!("{} logits of {} bits expected", head.vocab, self.logit_bits));
        }
        if self.next_token != argmax(&self.logits) {
            return bad(format!("the next token is {}, not {}", argmax(&self.logits), self.next_token));
        }
        Ok(())
    }

    /// Each segment's steps and its states at both ends.
    pub fn segment_states(&self) -> [Span; 3] {
        let n = self.blocks as u64;
        let [a, b] = self.links;
        let start = [F::ZERO, model_start(), self.input_commitment()];
        let after_embed = [F::ONE, a.model, a.stream];
        let after_blocks = [F::from(n + 1), b.model, b.stream];
        let logits = logits_commitment_native(&self.logits, self.logit_bits, self.logits_blind);
        let end = [F::from(n + 2), self.model_commitment, logits];
        [(1, start, after_embed), (self.blocks, after_embed, after_blocks), (1, after_blocks, end)]
    }
}

/// Checks segment `j`'s proof: it verifies from the state where the one before ended and
/// ends where the statement says.
pub fn verify_gpt_segment(
    statement: &GptStatement,
    j: usize,
    snark: &CompressedSnark,
    vk: &VerifierKey,
) -> Result<(), VerifyError> {
    let (steps, z0, end) = statement.segment_states()[j];
    let invalid = |reason: String| VerifyError::ProofInvalid { segment: j, layers: steps, reason };
    let result = catch_unwind(AssertUnwindSafe(|| snark.verify(vk, steps, &z0)))
        .map_err(|_| invalid("the verifier panicked on this proof".into()))?;
    let z = result.map_err(|e| invalid(format!("{} segment: {e}", SEGMENT_NAMES[j])))?;
    if z != end {
        return Err(VerifyError::StateMismatch { segment: j, what: "end state (model, stream or logits)" });
    }
    Ok(())
}

/// Verifies `proof` (the bytes of `proof.bin`: the three segments' compressed proofs)
/// against `statement`, with `key(j)` giving segment `j`'s verifier key (asked for once,
/// after the statement and the proof's framing are checked). Returns the next token.
pub fn verify_gpt_proof<K: Borrow<VerifierKey>, E>(
    statement: &GptStatement,
    proof: &[u8],
    key: &mut dyn FnMut(usize) -> Result<K, E>,
) -> Result<Result<usize, VerifyError>, E> {
    if let Err(e) = statement.check() {
        return Ok(Err(e));
    }
    let snarks: Vec<CompressedSnark> = match artifact::decode(Kind::Proof, &statement.architecture.digest(), proof) {
        Ok(s) => s,
        Err(e) => return Ok(Err(VerifyError::MalformedProof(e))),
    };
    if snarks.len() != 3 {
        return Ok(Err(VerifyError::BadStatement(format!("{} segment proofs, a GPT has 3", snarks.len()))));
    }
    for (j, snark) in snarks.iter().enumerate() {
        let vk = key(j)?;
        if let Err(e) = verify_gpt_segment(statement, j, snark, vk.borrow()) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(statement.next_token))
}

/// Encodes the three segments' proofs as `proof.bin`.
pub fn encode_gpt_proof(
    architecture: &GptArchitecture,
    proofs: &[CompressedSnark; 3],
) -> Result<Vec<u8>, crate::ArtifactError> {
    artifact::encode(Kind::Proof, &architecture.digest(), &proofs.as_slice())
}

/// The `format` field of a statement file, if it is JSON with one (to tell a GPT's from a
/// network's statement before parsing either).
pub fn statement_format(path: &Path) -> Result<Option<String>, Error> {
    #[derive(Deserialize)]
    struct Format {
        format: Option<String>,
    }
    let len = std::fs::metadata(path).map_err(|source| Error::Io { path: path.into(), source })?.len();
    if len > MAX_STATEMENT_BYTES {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<Format>(&read_file(path)?).ok().and_then(|f| f.format))
}

/// Verifies a GPT proof directory (`statement.json` + `proof.bin`) against what the user
/// expects (the model commitment; the input commitment is the tokens' at blind 0). The
/// verifier keys are this verifier's own, derived from the statement's specs (and kept in
/// its key store under `cache`), one in memory at a time.
pub fn verify_gpt_dir(
    dir: &Path,
    cache: &Path,
    expected: &Expected,
) -> Result<Result<GptStatement, VerifyError>, Error> {
    let statement: GptStatement = match read_statement(&dir.join("statement.json"))? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let segments = statement.architecture.segments();
    let (checked, first) = keys::stored_while_checking(cache, segments.first(), || {
        statement.check().and_then(|()| expected.check_parts(statement.model_commitment, statement.input_commitment()))
    });
    if let Err(e) = checked {
        return Ok(Err(e));
    }
    let proof = read_file(&dir.join("proof.bin"))?;
    // A derived key is written to the store while the proof is checked with it.
    let verdict = std::thread::scope(|s| {
        let mut keys = keys::KeyFetcher::new(s, cache, &segments, Some(first));
        let verdict = verify_gpt_proof(&statement, &proof, &mut |k| keys.get(k));
        keys.finish()?;
        verdict
    })?;
    Ok(verdict.map(|_| statement))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fold_ml_circuits::transformer::synthetic::{embed_spec, head_spec, shape, spec};

    fn arch() -> GptArchitecture {
        let s = shape();
        GptArchitecture::new(embed_spec(s, 19).unwrap(), spec(s).unwrap(), head_spec(s, 19).unwrap())
    }

    /// What a verifier would derive keys for is bounded before anything is derived: dims,
    /// agreement of the three specs, work per step, then each spec's own checks.
    #[test]
    fn an_architecture_beyond_the_bounds_or_inconsistent_is_refused() {
        assert_eq!(arch().check(), Ok(()));
        type Edit = fn(&mut GptArchitecture);
        let refused: [(&str, Edit); 4] = [
            ("dims", |a| a.embed.vocab = 1 << 17),
            ("disagree", |a| a.head.vocab = 18),
            ("multiply-accumulates", |a| {
                (a.embed.tokens, a.block.shape.tokens, a.head.tokens) = (1024, 1024, 1024);
                (a.embed.width, a.block.shape.width, a.head.width) = (1024, 1024, 1024);
            }),
            ("circuit", |a| a.circuit = "another".into()),
        ];
        for (want, edit) in refused {
            let mut a = arch();
            edit(&mut a);
            let e = a.check().unwrap_err();
            assert!(e.contains(want) || (want == "dims" && e.contains("at most")), "{want}: {e}");
        }
    }
}
