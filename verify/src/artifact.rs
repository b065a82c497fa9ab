//! Binary artifacts: a fixed header (magic tag, format version, architecture digest,
//! payload length, payload checksum) followed by a bincode payload. Decoding treats the
//! bytes as untrusted: the kind, version, length and checksum are checked before the
//! payload is decoded, and decoding is bounded by a per-kind size limit.

use crate::error::ArtifactError;
pub use crate::field::hex;
use nova_snark::digest::SimpleDigestible;
use serde::{de::DeserializeOwned, Serialize};

/// Current format version of proofs, keys, parameters and checkpoints (2: the
/// architecture-bound model commitment of statement version 3).
pub const FORMAT_VERSION: u16 = 5;
/// Current format version of model files (unchanged by the commitment's new semantics: a
/// model file holds weights and salt, not commitments).
pub const MODEL_FORMAT_VERSION: u16 = 5;
const HEADER_LEN: usize = 8 + 2 + 32 + 8 + 32;

/// The kinds of binary artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A compressed proof (`proof.bin`).
    Proof,
    /// A verifier key (the key stores' `vk.bin`).
    VerifierKey,
    /// A prover key (parameter cache).
    ProverKey,
    /// Nova public parameters (parameter cache).
    PublicParams,
    /// A proving checkpoint (secret: it holds the folded witness).
    Checkpoint,
    /// A quantized model (secret: it holds the weights).
    Model,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Self::Proof => b"FOLDMLPF",
            Self::VerifierKey => b"FOLDMLVK",
            Self::ProverKey => b"FOLDMLPK",
            Self::PublicParams => b"FOLDMLPP",
            Self::Checkpoint => b"FOLDMLCK",
            Self::Model => b"FOLDMLMD",
        }
    }

    /// The format version this build writes and reads for the kind.
    pub fn version(self) -> u16 {
        match self {
            Self::Model => MODEL_FORMAT_VERSION,
            _ => FORMAT_VERSION,
        }
    }

    /// Human name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Proof => "proof",
            Self::VerifierKey => "verifier key",
            Self::ProverKey => "prover key",
            Self::PublicParams => "public parameters",
            Self::Checkpoint => "checkpoint",
            Self::Model => "model",
        }
    }

    /// Largest payload accepted for this kind.
    fn max_payload(self) -> u64 {
        match self {
            Self::Proof => 16 << 20,
            // A step at the verifier's bound (2^23 constraints) has keys and parameters of
            // several GB; a 1.57M-constraint step's verifier key is already 1.23 GB.
            Self::VerifierKey | Self::ProverKey | Self::PublicParams => MAX_KEY_PAYLOAD,
            Self::Checkpoint | Self::Model => 4 << 30,
        }
    }
}

/// Largest payload of a key or parameter file, and the decoder's allocation limit for them:
/// enough for the keys of a step at the verifier's bound. (The verifier reads only the keys
/// it derived itself; the prover, its own parameter cache.)
const MAX_KEY_PAYLOAD: u64 = 8 << 30;
const MAX_KEY_PAYLOAD_USIZE: usize = MAX_KEY_PAYLOAD as usize;

#[derive(Serialize)]
struct Bytes<'a>(#[serde(with = "serde_bytes_compat")] &'a [u8]);
impl SimpleDigestible for Bytes<'_> {}

mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }
}

/// SHA3-based checksum of some bytes (nova-snark's digest), as 32 bytes.
pub fn checksum(bytes: &[u8]) -> [u8; 32] {
    crate::architecture::digest32(&Bytes(bytes))
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` as an artifact of `kind` for the architecture `arch`.
pub fn encode<T: Serialize>(kind: Kind, arch: &[u8; 32], value: &T) -> Result<Vec<u8>, ArtifactError> {
    let payload = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| ArtifactError::Corrupted(format!("cannot encode {}: {e}", kind.name())))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(kind.magic());
    out.extend_from_slice(&kind.version().to_le_bytes());
    out.extend_from_slice(arch);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&payload));
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The architecture digest in an artifact's header, after checking kind and version.
pub fn peek_arch(kind: Kind, bytes: &[u8]) -> Result<[u8; 32], ArtifactError> {
    if bytes.len() < 8 || &bytes[..8] != kind.magic() {
        return Err(ArtifactError::WrongKind { expected: kind.name() });
    }
    if bytes.len() < HEADER_LEN {
        return Err(ArtifactError::Truncated(format!("{} bytes, header needs {HEADER_LEN}", bytes.len())));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    let supported = kind.version();
    if version > supported {
        return Err(ArtifactError::NewerFormat { found: version, supported });
    }
    if version != supported {
        return Err(ArtifactError::OlderFormat { found: version, supported });
    }
    let mut arch = [0u8; 32];
    arch.copy_from_slice(&bytes[10..42]);
    Ok(arch)
}

/// Decodes an artifact of `kind`, requiring the architecture `arch`.
pub fn decode<T: DeserializeOwned>(kind: Kind, arch: &[u8; 32], bytes: &[u8]) -> Result<T, ArtifactError> {
    let found = peek_arch(kind, bytes)?;
    if &found != arch {
        return Err(ArtifactError::ArchitectureMismatch { found: hex(&found), expected: hex(arch) });
    }
    let len = u64::from_le_bytes(bytes[42..50].try_into().expect("8 bytes"));
    if len > kind.max_payload() {
        return Err(ArtifactError::Corrupted(format!(
            "payload of {len} bytes exceeds the {} limit",
            kind.max_payload()
        )));
    }
    let payload = &bytes[HEADER_LEN..];
    if (payload.len() as u64) < len {
        return Err(ArtifactError::Truncated(format!("payload has {} of {len} bytes", payload.len())));
    }
    if payload.len() as u64 > len {
        return Err(ArtifactError::Corrupted(format!("{} trailing bytes", payload.len() as u64 - len)));
    }
    if checksum(payload) != bytes[50..82] {
        return Err(ArtifactError::Corrupted("checksum mismatch".into()));
    }
    let (value, read) = match kind {
        Kind::Proof => bincode::serde::decode_from_slice(payload, config().with_limit::<{ 16 << 20 }>()),
        _ => bincode::serde::decode_from_slice(payload, config().with_limit::<MAX_KEY_PAYLOAD_USIZE>()),
    }
    .map_err(|e| ArtifactError::Corrupted(format!("undecodable {}: {e}", kind.name())))?;
    if read != payload.len() {
        return Err(ArtifactError::Corrupted("payload not fully consumed".into()));
    }
    Ok(value)
}
