//! Errors of the fold-ml library. Proving and I/O failures are [`Error`]; a proof that
//! does not check is a [`VerifyError`], never a `false`.

use fold_ml_circuits::quant::QuantError;
use nova_snark::errors::NovaError;
use std::path::PathBuf;
use thiserror::Error;

/// Failures of proving, loading and saving.
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
    /// User input that does not fit the model.
    #[error("{what}: {reason}")]
    BadInput {
        /// Which input (a file or a flag).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An ONNX model that fold-ml cannot import, or a failure while importing one.
    #[error("{path}: {reason}")]
    Onnx {
        /// The ONNX file.
        path: PathBuf,
        /// What is wrong.
        reason: OnnxError,
    },
    /// Quantized maths rejected a value.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Nova failed while proving a layer.
    #[error("folding layer {layer} failed: {source}")]
    AtLayer {
        /// Layer index (0-based).
        layer: usize,
        /// The cause.
        source: NovaError,
    },
    /// Nova failed outside a layer (setup, compression).
    #[error("{stage} failed: {source}")]
    Nova {
        /// Which stage.
        stage: &'static str,
        /// The cause.
        source: NovaError,
    },
}

impl Error {
    /// The error as it may be written to a file that is not secret (a job's event log):
    /// what failed and where, never values that may depend on the secret input or weights
    /// (an accumulator out of range, an activation). The full message goes to the user.
    pub fn public_summary(&self) -> String {
        match self {
            Self::BadInput { what, .. } => format!("{what}: rejected (details withheld: they may carry secret values)"),
            Self::Quant(_) => "quantized arithmetic rejected a value (details withheld: it may be secret)".into(),
            Self::AtLayer { layer, .. } => format!("folding layer {layer} failed"),
            Self::Io { .. } | Self::Artifact { .. } | Self::Onnx { .. } | Self::Nova { .. } => self.to_string(),
        }
    }
}

/// Where an ONNX node sits in its graph, for messages: `Conv (node "conv1", #1 of 9)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxNode {
    /// The operator type (`Conv`, `Sigmoid`, ...).
    pub op: String,
    /// The node's name (its first output's name when the node has none).
    pub name: String,
    /// Position in the graph, 1-based.
    pub index: usize,
    /// Number of nodes in the graph.
    pub total: usize,
}

impl std::fmt::Display for OnnxNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (node \"{}\", #{} of {})", self.op, self.name, self.index, self.total)
    }
}

/// The operators `fold-ml import` understands, for messages.
pub const ONNX_SUPPORTED: &str = "Conv, Gemm, MatMul+Add, Relu, Add (residual), Flatten, Reshape, MaxPool, \
AveragePool, BatchNormalization (and the no-ops Identity, Dropout, Constant)";

/// Why an ONNX model cannot be imported.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OnnxError {
    /// The file is not a readable ONNX model.
    #[error("not a readable ONNX model: {0}")]
    Decode(String),
    /// Operators fold-ml has no circuit for (all of them, in graph order).
    #[error("{}: fold-ml supports {ONNX_SUPPORTED}", unsupported_list(.0))]
    Unsupported(Vec<OnnxNode>),
    /// A supported operator in a configuration or position fold-ml cannot prove.
    #[error("{node}: {reason}")]
    BadNode {
        /// The node.
        node: OnnxNode,
        /// What is wrong.
        reason: String,
    },
    /// The graph as a whole (inputs, outputs, initializers) does not fit.
    #[error("{0}")]
    Graph(String),
    /// The float model cannot be quantized (weights or biases out of the integer ranges).
    #[error("cannot quantize layer {layer} ({origin}): {reason}")]
    Quantize {
        /// Layer index (0-based).
        layer: usize,
        /// Its ONNX nodes.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// tract (the float reference) failed to load or run the model.
    #[error("the float reference (tract) failed: {0}")]
    Tract(String),
}

fn unsupported_list(nodes: &[OnnxNode]) -> String {
    nodes.iter().map(|n| format!("unsupported operator {n}")).collect::<Vec<_>>().join("; ")
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
    /// The verifier key does not belong to the statement's architecture.
    #[error("verifier key rejected: {0}")]
    WrongKey(ArtifactError),
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
    /// A verifier key is not the key of the circuit the statement's architecture defines.
    #[error("segment {segment}: the verifier key is not the key of this segment's architecture {architecture}")]
    ForeignKey {
        /// The first segment using the key.
        segment: usize,
        /// The architecture's short id.
        architecture: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_summaries_carry_no_values() {
        let secret = "accumulator 123456789 is out of the 16-bit range";
        let errors = [
            Error::BadInput { what: "model layers 3..4".into(), reason: secret.into() },
            Error::Quant(QuantError::BadSpec(secret.into())),
            Error::AtLayer { layer: 3, source: NovaError::UnSat { reason: secret.into() } },
        ];
        for e in errors {
            assert!(e.to_string().contains("123456789"), "the user sees the details");
            let summary = e.public_summary();
            assert!(!summary.contains("123456789"), "{summary}");
            if !matches!(e, Error::Quant(_)) {
                assert!(summary.contains('3'), "it still says where: {summary}");
            }
        }
    }
}
