//! The verifier: needs the statement, the proof and the verifier keys (its own, derived from
//! the statement's public architectures) — never the model's weights or the prover's state.

use crate::architecture::Architecture;
use crate::artifact::{self, Kind};
use crate::error::{Error, VerifyError};
use crate::fsutil::read_file;
use crate::keys;
use crate::nova::{CompressedSnark, VerifierKey};
use crate::statement::{Statement, MAX_STATEMENT_BYTES};
use crate::F;
use fold_ml_circuits::state::StepState;
use std::borrow::Borrow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Verifies `proof` (the bytes of `proof.bin`: one compressed proof per segment) against
/// `statement` with `vks`, one verifier key per distinct architecture in order of first
/// use ([`Statement::distinct_architectures`]). Every segment proof must verify from the
/// state where the previous segment ended to the state where the next one starts, so a
/// missing, reordered, duplicated or foreign segment proof is rejected.
pub fn verify_proof(statement: &Statement, proof: &[u8], vks: &[&VerifierKey]) -> Result<(), VerifyError> {
    let archs = statement.distinct_architectures();
    if vks.len() != archs.len() {
        return Err(VerifyError::BadStatement(format!(
            "{} verifier keys for {} architectures",
            vks.len(),
            archs.len()
        )));
    }
    let mut key = |k: usize| Ok::<_, std::convert::Infallible>(vks[k]);
    match verify_proof_with(statement, proof, &mut key) {
        Ok(verdict) => verdict,
        Err(never) => match never {},
    }
}

/// [`verify_proof`] with the verifier keys fetched one at a time: `key(k)` gives the key of
/// the `k`-th distinct architecture, asked for once, when its segments are checked, and
/// dropped after them. So at most one key is in memory whatever the number of
/// architectures (a ResNet's keys add up to gigabytes). An error of `key` (a key that
/// cannot be derived or loaded) is returned as the outer error.
pub fn verify_proof_with<K: Borrow<VerifierKey>, E>(
    statement: &Statement,
    proof: &[u8],
    key: &mut dyn FnMut(usize) -> Result<K, E>,
) -> Result<Result<(), VerifyError>, E> {
    verify_proof_except(statement, proof, key, &|_| false)
}

/// [`verify_proof_with`] that takes the SNARKs of the segments `checked` says as already
/// verified ([`verify_segment_states`], by the prover right after compressing them, with
/// the same states the statement holds) and asks only for the keys the others need. The
/// statement and the proof's framing are checked in full.
pub fn verify_proof_except<K: Borrow<VerifierKey>, E>(
    statement: &Statement,
    proof: &[u8],
    key: &mut dyn FnMut(usize) -> Result<K, E>,
    checked: &dyn Fn(usize) -> bool,
) -> Result<Result<(), VerifyError>, E> {
    if let Err(e) = statement.check() {
        return Ok(Err(e));
    }
    let snarks: Vec<CompressedSnark> = match artifact::decode(Kind::Proof, &statement.architectures_digest(), proof) {
        Ok(s) => s,
        Err(e) => return Ok(Err(VerifyError::MalformedProof(e))),
    };
    if snarks.len() != statement.segments.len() {
        return Ok(Err(VerifyError::BadStatement(format!(
            "the proof has {} segment proofs, the statement {} segments",
            snarks.len(),
            statement.segments.len()
        ))));
    }
    for (k, arch) in statement.distinct_architectures().into_iter().enumerate() {
        let mine = |j: usize| statement.segments[j].architecture == *arch && !checked(j);
        if !(0..snarks.len()).any(mine) {
            continue;
        }
        let vk = key(k)?;
        for (j, snark) in snarks.iter().enumerate() {
            if !mine(j) {
                continue;
            }
            if let Err(e) = verify_segment(statement, j, snark, vk.borrow()) {
                return Ok(Err(e));
            }
        }
    }
    Ok(Ok(()))
}

/// Checks segment `j`'s proof: it verifies from the statement's state before the segment
/// and ends in the statement's state after it.
fn verify_segment(
    statement: &Statement,
    j: usize,
    snark: &CompressedSnark,
    vk: &VerifierKey,
) -> Result<(), VerifyError> {
    let seg = &statement.segments[j];
    verify_segment_states(&seg.architecture, (j, seg.num_layers), (&statement.z0(j), &statement.zn(j)), snark, vk)
}

/// Checks the proof of segment `j` of `layers` layers of `arch`: it verifies from the
/// boundary state `start` and ends in the boundary state `end`.
pub fn verify_segment_states(
    arch: &Architecture,
    (j, layers): (usize, usize),
    (start, end): (&StepState, &StepState),
    snark: &CompressedSnark,
    vk: &VerifierKey,
) -> Result<(), VerifyError> {
    let z0 = arch.z(start);
    let steps = arch.steps(layers);
    // A panic inside the SNARK verifier on hostile bytes must still be a rejection.
    let result = catch_unwind(AssertUnwindSafe(|| snark.verify(vk, steps, &z0))).map_err(|_| {
        VerifyError::ProofInvalid { segment: j, layers, reason: "the verifier panicked on this proof".into() }
    })?;
    let zn = result.map_err(|e| VerifyError::ProofInvalid { segment: j, layers, reason: e.to_string() })?;
    let expected = arch.z(end);
    for (what, i) in [("layer count", 0), ("model commitment", 1), ("activation commitment", 2)] {
        if zn.get(i) != expected.get(i) {
            return Err(VerifyError::StateMismatch { segment: j, what });
        }
    }
    if zn != expected {
        return Err(VerifyError::StateMismatch { segment: j, what: "tile state (a layer left unfinished)" });
    }
    Ok(())
}

/// Reads and parses `statement.json`. A file that is not JSON at all is an input error;
/// JSON whose fields do not form a valid statement (unknown fields included), or a file
/// larger than [`MAX_STATEMENT_BYTES`], is a rejected statement.
pub fn read_statement<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Result<T, VerifyError>, Error> {
    let len = std::fs::metadata(path).map_err(|source| Error::Io { path: path.into(), source })?.len();
    if len > MAX_STATEMENT_BYTES {
        return Ok(Err(VerifyError::BadStatement(format!(
            "{}: {len} bytes, larger than the {MAX_STATEMENT_BYTES} a statement may have",
            path.display()
        ))));
    }
    let bytes = read_file(path)?;
    match serde_json::from_slice(&bytes) {
        Ok(s) => Ok(Ok(s)),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Ok(Err(VerifyError::BadStatement(format!("{}: {e}", path.display()))))
        }
        Err(e) => {
            Err(Error::BadInput { what: path.display().to_string(), reason: format!("not a JSON statement: {e}") })
        }
    }
}

/// What the verifier's user expects the statement to be about, from a source they trust
/// (the model holder's published commitment, the input owner's commitment).
#[derive(Clone, Copy, Debug, Default)]
pub struct Expected {
    /// The model commitment (`fold-ml commit`).
    pub model_commitment: Option<F>,
    /// The input commitment (`fold-ml commit-input`).
    pub input_commitment: Option<F>,
}

impl Expected {
    /// Compares the statement with what is expected.
    pub fn check(&self, statement: &Statement) -> Result<(), VerifyError> {
        self.check_parts(statement.model_commitment, statement.input.commitment)
    }

    /// Compares a statement's model and input commitments with what is expected.
    pub fn check_parts(&self, model_commitment: F, input_commitment: F) -> Result<(), VerifyError> {
        let hex = crate::field::to_hex;
        for (what, expected, found) in [
            ("model commitment", self.model_commitment, model_commitment),
            ("input commitment", self.input_commitment, input_commitment),
        ] {
            if let Some(e) = expected.filter(|e| *e != found) {
                return Err(VerifyError::NotExpected { what, found: hex(&found), expected: hex(&e) });
            }
        }
        Ok(())
    }
}

/// Verifies a proof directory (`statement.json` + `proof.bin`) against what the user
/// expects. The statement is checked (sizes first) and the proof decoded before any key is
/// derived. The verifier keys are this verifier's own, derived from the public
/// architectures (and kept in its key store under `cache`), one in memory at a time.
///
/// While the statement is checked (its first public-value hash builds the hash's
/// constants: ~0.15 s of a ~1 s warm verification), another thread reads the first
/// architecture's key if the key store already holds it. Reading only: a key is derived
/// for a statement only after the statement passes, and a failing statement's key is
/// dropped unused.
pub fn verify_dir(dir: &Path, cache: &Path, expected: &Expected) -> Result<Result<Statement, VerifyError>, Error> {
    let statement: Statement = match read_statement(&dir.join("statement.json"))? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let archs = statement.distinct_architectures();
    let (checked, first) = keys::stored_while_checking(cache, archs.first().copied(), || {
        statement.check().and_then(|()| expected.check(&statement))
    });
    if let Err(e) = checked {
        return Ok(Err(e));
    }
    let proof = read_file(&dir.join("proof.bin"))?;
    // A key derived here is written to the key store on another thread while the proof is
    // checked with it (the write, ~0.3 s for the default model's 28 MB key, is no part of
    // the verdict); a failed write is still this call's error.
    let verdict = std::thread::scope(|s| {
        let mut keys = keys::KeyFetcher::new(s, cache, &archs, Some(first));
        let verdict = verify_proof_with(&statement, &proof, &mut |k| keys.get(k));
        keys.finish()?;
        verdict
    })?;
    Ok(verdict.map(|()| statement))
}
