//! The verifier: needs the statement, the proof and the verifier key — never the model's
//! weights or the prover's state.

use crate::artifact::{self, Kind};
use crate::error::{Error, VerifyError};
use crate::fsutil::read_file;
use crate::nova::{CompressedSnark, VerifierKey};
use crate::params;
use crate::statement::Statement;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Verifies `proof` (the bytes of `proof.bin`) against `statement` with `vk`.
pub fn verify_proof(statement: &Statement, proof: &[u8], vk: &VerifierKey) -> Result<(), VerifyError> {
    statement.check()?;
    let arch = statement.architecture.digest();
    let snark: CompressedSnark = artifact::decode(Kind::Proof, &arch, proof).map_err(VerifyError::MalformedProof)?;
    let z0 = statement.z0().to_vec();
    // A panic inside the SNARK verifier on hostile bytes must still be a rejection.
    let steps = crate::prove::num_steps(statement.num_layers, statement.architecture.layers_per_step);
    let result = catch_unwind(AssertUnwindSafe(|| snark.verify(vk, steps, &z0))).map_err(|_| {
        VerifyError::ProofInvalid { layers: statement.num_layers, reason: "the verifier panicked on this proof".into() }
    })?;
    let zn = result.map_err(|e| VerifyError::ProofInvalid { layers: statement.num_layers, reason: e.to_string() })?;
    let expected = statement.zn().to_vec();
    for (what, i) in [("layer count", 0), ("model commitment", 1), ("output", 2)] {
        if zn.get(i) != expected.get(i) {
            return Err(VerifyError::StateMismatch { what });
        }
    }
    Ok(())
}

/// Reads and parses `statement.json`. A file that is not JSON at all is an input error;
/// JSON whose fields do not form a valid statement is a rejected statement.
pub fn read_statement(path: &Path) -> Result<Result<Statement, VerifyError>, Error> {
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

/// Verifies a proof directory (`statement.json` + `proof.bin`). The verifier key is the
/// one in `vk_file` if given (it must be for the statement's architecture), else derived
/// from the public architecture (and cached in `cache`).
pub fn verify_dir(dir: &Path, cache: &Path, vk_file: Option<&Path>) -> Result<Result<Statement, VerifyError>, Error> {
    let statement = match read_statement(&dir.join("statement.json"))? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let proof = read_file(&dir.join("proof.bin"))?;
    if let Err(e) = statement.check() {
        return Ok(Err(e));
    }
    let arch = &statement.architecture;
    let vk = match vk_file {
        Some(path) => match artifact::decode::<VerifierKey>(Kind::VerifierKey, &arch.digest(), &read_file(path)?) {
            Ok(vk) => vk,
            Err(e) => return Ok(Err(VerifyError::WrongKey(e))),
        },
        None => params::verifier_key(cache, arch)?,
    };
    Ok(verify_proof(&statement, &proof, &vk).map(|()| statement))
}
