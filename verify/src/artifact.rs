//! Binary artifacts: a fixed header (magic tag, format version, architecture digest,
//! payload length, payload checksum) followed by a bincode payload. Decoding treats the
//! bytes as untrusted: the kind, version, length and checksum are checked before the
//! payload is decoded, and decoding is bounded by a per-kind size limit.

use crate::error::{ArtifactError, Error};
pub use crate::field::hex;
use bincode::enc::write::Writer;
use bincode::error::EncodeError;
use nova_snark::digest::{DigestComputer, Digestible, SimpleDigestible};
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

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
    /// A quantized GPT (secret: it holds the weights).
    GptModel,
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
            Self::GptModel => b"FOLDMLGM",
        }
    }

    /// The format version this build writes and reads for the kind.
    pub fn version(self) -> u16 {
        match self {
            Self::Model | Self::GptModel => MODEL_FORMAT_VERSION,
            _ => FORMAT_VERSION,
        }
    }

    /// Whether `bytes` (a file's first bytes) begin as an artifact of this kind.
    pub fn begins(self, bytes: &[u8]) -> bool {
        bytes.starts_with(self.magic())
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
            Self::GptModel => "GPT model",
        }
    }

    /// Largest payload accepted for this kind.
    fn max_payload(self) -> u64 {
        match self {
            Self::Proof => 16 << 20,
            // A step at the verifier's bound (2^23 constraints) has keys and parameters of
            // several GB; a 1.57M-constraint step's verifier key is already 1.23 GB.
            Self::VerifierKey | Self::ProverKey | Self::PublicParams => MAX_KEY_PAYLOAD,
            Self::Checkpoint | Self::Model | Self::GptModel => 4 << 30,
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
    let mut out = Vec::new();
    write_to(kind, arch, value, &mut out).map_err(|e| ArtifactError::Corrupted(e.to_string()))?;
    Ok(out)
}

/// A bincode sink that only counts.
struct Count(u64);

impl Writer for Count {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0 += bytes.len() as u64;
        Ok(())
    }
}

/// What [`checksum`] hashes for a payload of `len` bytes (nova's digest encodes a byte
/// string as its length, a little-endian `u64`, then its bytes), the payload encoded
/// straight into the hasher.
struct Encoded<'a, T>(&'a T, u64);

impl<T: Serialize> Digestible for Encoded<'_, T> {
    fn write_bytes<W: Writer>(&self, sink: &mut W) -> Result<(), EncodeError> {
        sink.write(&self.1.to_le_bytes())?;
        bincode::serde::encode_into_writer(self.0, sink, config())
    }
}

/// The same bytes read from a file's payload (`len` bytes) into the hasher.
struct Stored<'a>(RefCell<&'a mut dyn Read>, u64);

impl Digestible for Stored<'_> {
    fn write_bytes<W: Writer>(&self, sink: &mut W) -> Result<(), EncodeError> {
        sink.write(&self.1.to_le_bytes())?;
        let mut reader = self.0.borrow_mut();
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = self.1;
        while left > 0 {
            let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            reader.read_exact(&mut chunk[..n]).map_err(|inner| EncodeError::Io { inner, index: 0 })?;
            sink.write(&chunk[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

fn field_bytes(f: Result<crate::F, EncodeError>) -> std::io::Result<[u8; 32]> {
    match f {
        Ok(f) => Ok(crate::field::to_bytes(&f)),
        Err(EncodeError::Io { inner, .. }) => Err(inner),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Writes `value` as an artifact of `kind` for the architecture `arch` into `out`, never
/// holding the payload whole: it is encoded three times (to count it, into the checksum,
/// into `out`), so writing gigabytes of parameters costs no buffer. Returns the bytes written.
pub fn write_to<T: Serialize>(kind: Kind, arch: &[u8; 32], value: &T, out: &mut dyn Write) -> std::io::Result<u64> {
    let cannot = |e: EncodeError| std::io::Error::other(format!("cannot encode {}: {e}", kind.name()));
    let mut count = Count(0);
    bincode::serde::encode_into_writer(value, &mut count, config()).map_err(cannot)?;
    let len = count.0;
    let sum = field_bytes(DigestComputer::new(&Encoded(value, len)).digest())?;
    out.write_all(kind.magic())?;
    out.write_all(&kind.version().to_le_bytes())?;
    out.write_all(arch)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&sum)?;
    let written = bincode::serde::encode_into_std_write(value, &mut &mut *out, config()).map_err(cannot)?;
    if written as u64 != len {
        return Err(std::io::Error::other(format!("{} encoded in {written} bytes, then {len}", kind.name())));
    }
    Ok(HEADER_LEN as u64 + len)
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

/// Checks an artifact's header (kind, version, architecture, payload length against the
/// kind's limit and the `payload` bytes that follow it) and returns the payload length.
fn check_header(kind: Kind, arch: &[u8; 32], header: &[u8], payload: u64) -> Result<u64, ArtifactError> {
    let found = peek_arch(kind, header)?;
    if &found != arch {
        return Err(ArtifactError::ArchitectureMismatch { found: hex(&found), expected: hex(arch) });
    }
    let len = u64::from_le_bytes(header[42..50].try_into().expect("8 bytes"));
    if len > kind.max_payload() {
        return Err(ArtifactError::Corrupted(format!(
            "payload of {len} bytes exceeds the {} limit",
            kind.max_payload()
        )));
    }
    if payload < len {
        return Err(ArtifactError::Truncated(format!("payload has {payload} of {len} bytes")));
    }
    if payload > len {
        return Err(ArtifactError::Corrupted(format!("{} trailing bytes", payload - len)));
    }
    Ok(len)
}

fn undecodable(kind: Kind) -> impl Fn(bincode::error::DecodeError) -> ArtifactError {
    move |e| ArtifactError::Corrupted(format!("undecodable {}: {e}", kind.name()))
}

/// Decodes an artifact of `kind`, requiring the architecture `arch`.
pub fn decode<T: DeserializeOwned>(kind: Kind, arch: &[u8; 32], bytes: &[u8]) -> Result<T, ArtifactError> {
    let header = &bytes[..bytes.len().min(HEADER_LEN)];
    check_header(kind, arch, header, bytes.len().saturating_sub(HEADER_LEN) as u64)?;
    decode_payload(kind, &bytes[50..82], &bytes[HEADER_LEN..])
}

/// Decodes `payload` whole after checking it against the header's checksum `sum`. A payload
/// of over 1 MiB is checksummed on another thread while this one decodes it (decoding is
/// bounded and treats the bytes as untrusted either way); a mismatch discards what was
/// decoded and is the error, whatever decoding found.
fn decode_payload<T: DeserializeOwned>(kind: Kind, sum: &[u8], payload: &[u8]) -> Result<T, ArtifactError> {
    let decode = || match kind {
        Kind::Proof => bincode::serde::decode_from_slice(payload, config().with_limit::<{ 16 << 20 }>()),
        _ => bincode::serde::decode_from_slice(payload, config().with_limit::<MAX_KEY_PAYLOAD_USIZE>()),
    };
    let (matches, decoded) = if payload.len() > 1 << 20 {
        std::thread::scope(|s| {
            let matches = s.spawn(|| checksum(payload) == sum);
            let decoded = decode();
            (matches.join().expect("hashing bytes cannot panic"), decoded)
        })
    } else {
        (checksum(payload) == sum, decode())
    };
    if !matches {
        return Err(ArtifactError::Corrupted("checksum mismatch".into()));
    }
    let (value, read) = decoded.map_err(undecodable(kind))?;
    if read != payload.len() {
        return Err(ArtifactError::Corrupted("payload not fully consumed".into()));
    }
    Ok(value)
}

/// Payloads up to this size are read into memory and decoded from there (a verifier key of
/// the default model is 28 MB: decoding from a slice instead of a reader saves ~0.1 s of its
/// warm verification); larger ones (checkpoints, prover keys of big steps) are streamed.
const IN_MEMORY_PAYLOAD: u64 = 64 << 20;

/// [`decode`] of the artifact in the file at `path`. A payload over [`IN_MEMORY_PAYLOAD`] is
/// streamed: the file is read twice (its checksum, then the value) and never held whole.
pub fn read_from<T: DeserializeOwned>(kind: Kind, arch: &[u8; 32], path: &Path) -> Result<T, Error> {
    read_within(kind, arch, path, IN_MEMORY_PAYLOAD)
}

/// [`read_from`] with payloads over `in_memory` bytes streamed.
fn read_within<T: DeserializeOwned>(kind: Kind, arch: &[u8; 32], path: &Path, in_memory: u64) -> Result<T, Error> {
    let io = |source| Error::Io { path: path.into(), source };
    let bad = |reason| Error::Artifact { path: path.into(), reason };
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut file).take(HEADER_LEN as u64).read_to_end(&mut header).map_err(io)?;
    let len = check_header(kind, arch, &header, size.saturating_sub(HEADER_LEN as u64)).map_err(bad)?;
    if len <= in_memory {
        let mut payload = vec![0u8; len as usize];
        file.read_exact(&mut payload).map_err(io)?;
        return decode_payload(kind, &header[50..82], &payload).map_err(bad);
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let sum = field_bytes(DigestComputer::new(&Stored(RefCell::new(&mut reader), len)).digest()).map_err(io)?;
    if sum != header[50..82] {
        return Err(bad(ArtifactError::Corrupted("checksum mismatch".into())));
    }
    reader.seek(SeekFrom::Start(HEADER_LEN as u64)).map_err(io)?;
    let mut payload = reader.take(len);
    let value = match kind {
        Kind::Proof => bincode::serde::decode_from_std_read(&mut payload, config().with_limit::<{ 16 << 20 }>()),
        _ => bincode::serde::decode_from_std_read(&mut payload, config().with_limit::<MAX_KEY_PAYLOAD_USIZE>()),
    }
    .map_err(|e| bad(undecodable(kind)(e)))?;
    if payload.limit() != 0 {
        return Err(bad(ArtifactError::Corrupted("payload not fully consumed".into())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload of several read chunks (1 MiB each), so streaming crosses chunk ends.
    fn value() -> Vec<u64> {
        (0..400_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("fold-ml-artifact-{}-{name}", std::process::id()))
    }

    #[test]
    fn streamed_files_hold_the_encoded_bytes_and_read_back() {
        let (arch, v) = ([7u8; 32], value());
        let bytes = encode(Kind::PublicParams, &arch, &v).unwrap();
        // the streamed checksum is the one `decode` recomputes from the bytes
        assert_eq!(decode::<Vec<u64>>(Kind::PublicParams, &arch, &bytes).unwrap(), v);
        let path = temp("roundtrip");
        let written =
            crate::fsutil::write_atomic_with(&path, false, |out| write_to(Kind::PublicParams, &arch, &v, out));
        assert_eq!(written.unwrap(), bytes.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        for in_memory in [0, IN_MEMORY_PAYLOAD] {
            assert_eq!(read_within::<Vec<u64>>(Kind::PublicParams, &arch, &path, in_memory).unwrap(), v);
        }
        std::fs::remove_file(path).unwrap();
    }

    /// Every damage `decode` rejects, reading the file rejects the same way, streamed or not.
    #[test]
    fn streamed_reads_reject_what_decode_rejects() {
        let (arch, v) = ([7u8; 32], value());
        let bytes = encode(Kind::Checkpoint, &arch, &v).unwrap();
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = bytes.clone();
            f(&mut b);
            b
        };
        let cases: Vec<(&str, Vec<u8>, [u8; 32])> = vec![
            ("a payload byte", edit(&|b| b[HEADER_LEN + 1_500_000] ^= 1), arch),
            ("the checksum", edit(&|b| b[60] ^= 1), arch),
            ("truncated", bytes[..bytes.len() - 1].to_vec(), arch),
            ("a trailing byte", edit(&|b| b.push(0)), arch),
            ("the header only", bytes[..HEADER_LEN].to_vec(), arch),
            ("half a header", bytes[..HEADER_LEN / 2].to_vec(), arch),
            ("another kind", edit(&|b| b[..8].copy_from_slice(Kind::Proof.magic())), arch),
            ("an older version", edit(&|b| b[8] -= 1), arch),
            ("a length past the limit", edit(&|b| b[42..50].copy_from_slice(&u64::MAX.to_le_bytes())), arch),
            ("another architecture", bytes.clone(), [8u8; 32]),
        ];
        let path = temp("tamper");
        for (what, damaged, arch) in cases {
            let in_memory = decode::<Vec<u64>>(Kind::Checkpoint, &arch, &damaged).expect_err(what);
            std::fs::write(&path, &damaged).unwrap();
            // both ways of reading: streamed (limit 0) and whole
            for limit in [0, IN_MEMORY_PAYLOAD] {
                match read_within::<Vec<u64>>(Kind::Checkpoint, &arch, &path, limit) {
                    Err(Error::Artifact { reason, .. }) => {
                        assert_eq!(reason.to_string(), in_memory.to_string(), "{what} (limit {limit})")
                    }
                    other => panic!("{what} (limit {limit}): {:?}", other.map(|v| v.len())),
                }
            }
        }
        std::fs::remove_file(path).unwrap();
    }
}
