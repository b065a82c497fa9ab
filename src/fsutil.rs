//! File helpers (the verifier crate's), and the prover's crash-test hook.

use crate::error::Error;
use fold_ml_verify::fsutil as verifier;
use std::io::Write;
use std::path::Path;

/// Reads a whole file ([`verifier::read_file`]).
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    Ok(verifier::read_file(path)?)
}

/// Writes a file atomically ([`verifier::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Error> {
    Ok(verifier::write_atomic(path, bytes, secret)?)
}

/// Creates an owner-only directory ([`verifier::create_private_dir`]).
pub fn create_private_dir(dir: &Path) -> Result<(), Error> {
    Ok(verifier::create_private_dir(dir)?)
}

/// Test hook for crash safety: writes the first half of `bytes` to the temporary file a
/// real write of `path` would use, syncs it, and aborts the process (as `kill -9` would
/// in the middle of writing). Never returns.
pub fn abort_midway_through_write(path: &Path, bytes: &[u8]) -> ! {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}-crash", std::process::id()));
    if let Ok(mut f) = std::fs::File::create(&tmp) {
        let _ = f.write_all(&bytes[..bytes.len() / 2]);
        let _ = f.sync_all();
    }
    std::process::abort()
}
