//! Errors of the verifier: a proof that does not check is a [`VerifyError`], never a
//! `false`; files that cannot be read or keys that cannot be derived are an [`Error`].

use nova_snark::errors::NovaError;
use std::path::PathBuf;
use thiserror::Error;

/// Failures of reading, writing and deriving (not rejections).
#[derive(Debug, Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not the fold-ml artifact it should be, or is damaged.
    #[error("{path}: {reason}")]
    Artifact {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: ArtifactError,
    },
    /// User input that is not what it should be.
    #[error("{what}: {reason}")]
    BadInput {
        /// Which input.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nova failed (parameter or key setup).
    #[error("{stage} failed: {source}")]
    Nova {
        /// Which stage.
        stage: &'static str,
        /// The cause.
        source: NovaError,
    },
}

/// What is wrong with an artifact file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ArtifactError {
    /// The file does not start with the expected magic tag.
    #[error("not a fold-ml {expected} file")]
    WrongKind {
        /// The kind expected.
        expected: &'static str,
    },
    /// Written by a newer fold-ml.
    #[error("format version {found} is newer than the supported {supported}")]
    NewerFormat {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// Written by an older fold-ml, whose proofs and keys mean something else.
    #[error("made by an older version of fold-ml (format {found}; this build reads {supported}): make it again with this version")]
    OlderFormat {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// Shorter than its header says.
    #[error("truncated ({0})")]
    Truncated(String),
    /// Undecodable or inconsistent content.
    #[error("corrupted ({0})")]
    Corrupted(String),
    /// Made for another architecture.
    #[error("made for architecture {found}, expected {expected}")]
    ArchitectureMismatch {
        /// Digest in the file.
        found: String,
        /// Digest expected.
        expected: String,
    },
}

/// Why a proof was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The proof file could not be decoded.
    #[error("proof is malformed: {0}")]
    MalformedProof(ArtifactError),
    /// The statement is inconsistent in itself.
    #[error("statement is inconsistent: {0}")]
    BadStatement(String),
    /// The SNARK does not verify for this statement's inputs and layer count.
    #[error("segment {segment}'s proof does not verify for its {layers} layers from this model and input: {reason}")]
    ProofInvalid {
        /// Which segment.
        segment: usize,
        /// Layers claimed.
        layers: usize,
        /// Nova's reason.
        reason: String,
    },
    /// The statement is valid but not about what the verifier asked for (`--model-commitment`,
    /// `--input-commitment`).
    #[error("the statement's {what} is {found}, not the expected {expected}")]
    NotExpected {
        /// What differs.
        what: &'static str,
        /// The statement's value.
        found: String,
        /// The verifier's.
        expected: String,
    },
    /// The proven final state differs from the statement.
    #[error("segment {segment}: proven {what} does not match the statement")]
    StateMismatch {
        /// Which segment.
        segment: usize,
        /// Which part of the state (layer count, model commitment, output).
        what: &'static str,
    },
}
