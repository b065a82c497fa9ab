//! The job directory: where a proving run writes its results.

use crate::error::Error;
use crate::field::to_hex;
use crate::fsutil::write_atomic;
use crate::prove::Proven;
use std::path::Path;

/// Writes `statement.json`, `proof.bin`, `vk.bin` and the secret `opening.json` (the input
/// commitment's blind, owner-only) into `dir`.
pub fn write_results(dir: &Path, proven: &Proven) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.into(),
        source,
    })?;
    let statement = serde_json::to_vec_pretty(&proven.statement).expect("a statement serializes");
    write_atomic(&dir.join("proof.bin"), &proven.proof, false)?;
    write_atomic(&dir.join("vk.bin"), &proven.vk, false)?;
    let opening = serde_json::json!({
        "warning": "SECRET: this blind opens the input commitment; do not share it with the proof",
        "input_blind": to_hex(&proven.input_blind),
    });
    write_atomic(
        &dir.join("opening.json"),
        opening.to_string().as_bytes(),
        true,
    )?;
    // The statement last: its presence marks a complete job.
    write_atomic(&dir.join("statement.json"), &statement, false)
}
