//! The verifier: needs the statement, the proof and the verifier key — never the model's
//! weights or the prover's state.

use crate::artifact::{self, Kind};
use crate::error::{Error, VerifyError};
use crate::fsutil::read_file;
use crate::keys;
use crate::nova::{CompressedSnark, VerifierKey};
use crate::statement::{Statement, MAX_STATEMENT_BYTES};
use crate::F;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Verifies `proof` (the bytes of `proof.bin`: one compressed proof per segment) against
/// `statement` with `vks`, one verifier key per distinct architecture in order of first
/// use ([`Statement::distinct_architectures`]). Every segment proof must verify from the
/// state where the previous segment ended to the state where the next one starts, so a
/// missing, reordered, duplicated or foreign segment proof is rejected.
pub fn verify_proof(statement: &Statement, proof: &[u8], vks: &[&VerifierKey]) -> Result<(), VerifyError> {
    statement.check()?;
    let snarks: Vec<CompressedSnark> =
        artifact::decode(Kind::Proof, &statement.architectures_digest(), proof).map_err(VerifyError::MalformedProof)?;
    if snarks.len() != statement.segments.len() {
        return Err(VerifyError::BadStatement(format!(
            "the proof has {} segment proofs, the statement {} segments",
            snarks.len(),
            statement.segments.len()
        )));
    }
    let archs = statement.distinct_architectures();
    if vks.len() != archs.len() {
        return Err(VerifyError::BadStatement(format!(
            "{} verifier keys for {} architectures",
            vks.len(),
            archs.len()
        )));
    }
    for (j, (seg, snark)) in statement.segments.iter().zip(&snarks).enumerate() {
        let key = archs.iter().position(|a| **a == seg.architecture).expect("listed");
        let layers = seg.num_layers;
        let arch = &seg.architecture;
        let z0 = arch.z(&statement.z0(j));
        let steps = arch.steps(layers);
        // A panic inside the SNARK verifier on hostile bytes must still be a rejection.
        let result = catch_unwind(AssertUnwindSafe(|| snark.verify(vks[key], steps, &z0))).map_err(|_| {
            VerifyError::ProofInvalid { segment: j, layers, reason: "the verifier panicked on this proof".into() }
        })?;
        let zn = result.map_err(|e| VerifyError::ProofInvalid { segment: j, layers, reason: e.to_string() })?;
        let expected = arch.z(&statement.zn(j));
        for (what, i) in [("layer count", 0), ("model commitment", 1), ("activation commitment", 2)] {
            if zn.get(i) != expected.get(i) {
                return Err(VerifyError::StateMismatch { segment: j, what });
            }
        }
        if zn != expected {
            return Err(VerifyError::StateMismatch { segment: j, what: "tile state (a layer left unfinished)" });
        }
    }
    Ok(())
}

/// Reads and parses `statement.json`. A file that is not JSON at all is an input error;
/// JSON whose fields do not form a valid statement (unknown fields included), or a file
/// larger than [`MAX_STATEMENT_BYTES`], is a rejected statement.
pub fn read_statement(path: &Path) -> Result<Result<Statement, VerifyError>, Error> {
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
        let hex = crate::field::to_hex;
        for (what, expected, found) in [
            ("model commitment", self.model_commitment, statement.model_commitment),
            ("input commitment", self.input_commitment, statement.input.commitment),
        ] {
            if let Some(e) = expected.filter(|e| *e != found) {
                return Err(VerifyError::NotExpected { what, found: hex(&found), expected: hex(&e) });
            }
        }
        Ok(())
    }
}

/// Verifies a proof directory (`statement.json` + `proof.bin`) against what the user
/// expects. The statement is checked (sizes first) before any key is derived. The
/// verifier keys are this verifier's own, derived from the public architectures (and kept
/// in its key store under `cache`); a `vk_file` is used only after each of its keys is
/// authenticated against them.
pub fn verify_dir(
    dir: &Path,
    cache: &Path,
    vk_file: Option<&Path>,
    expected: &Expected,
) -> Result<Result<Statement, VerifyError>, Error> {
    let statement = match read_statement(&dir.join("statement.json"))? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = statement.check().and_then(|()| expected.check(&statement)) {
        return Ok(Err(e));
    }
    let proof = read_file(&dir.join("proof.bin"))?;
    let vks: Vec<VerifierKey> = match vk_file {
        Some(path) => match keys::decode_vks(&statement, &read_file(path)?) {
            Ok(vks) => match keys::authenticate_vks(cache, &statement, vks)? {
                Ok(vks) => vks,
                Err(e) => return Ok(Err(e)),
            },
            Err(e) => return Ok(Err(VerifyError::WrongKey(e))),
        },
        None => statement
            .distinct_architectures()
            .into_iter()
            .map(|arch| keys::verifier_key(cache, arch))
            .collect::<Result<_, _>>()?,
    };
    let vks: Vec<&VerifierKey> = vks.iter().collect();
    Ok(verify_proof(&statement, &proof, &vks).map(|()| statement))
}
