//! Writing a proof directory: `proof.bin`, then `statement.json` (its presence
//! marks a complete proof).

use crate::error::Error;
use crate::statement::Statement;
use fold_ml_verify::fsutil::write_atomic;
use std::path::Path;

/// Writes a proof directory.
pub fn write_proof_dir(dir: &Path, statement: &Statement, proof: &[u8]) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::io(dir, source))?;
    write_atomic(&dir.join("proof.bin"), proof, false)?;
    let json = serde_json::to_vec_pretty(statement).expect("a statement serializes");
    Ok(write_atomic(&dir.join("statement.json"), &json, false)?)
}
