//! Errors of the fold-ml library. Proving and I/O failures are [`Error`]; a proof that
//! does not check is a [`VerifyError`], never a `false`.

use fold_ml_circuits::quant::QuantError;
pub use fold_ml_verify::error::{ArtifactError, VerifyError};
use fold_ml_verify::Error as Base;
use nova_snark::errors::NovaError;
use std::path::PathBuf;
use thiserror::Error;

/// Failures of proving, loading and saving.
#[derive(Debug, Error)]
pub enum Error {
    /// Reading, writing, decoding or key setup failed, or an input is not what it should be
    /// (the failures the verifier shares: [`fold_ml_verify::Error`]).
    #[error(transparent)]
    Base(#[from] fold_ml_verify::Error),
    /// An ONNX model that fold-ml cannot import, or a failure while importing one.
    #[error("{path}: {reason}")]
    Onnx {
        /// The ONNX file.
        path: PathBuf,
        /// What is wrong.
        reason: OnnxError,
    },
    /// A job directory cannot serve the request.
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
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
}

impl Error {
    /// A file could not be read or written.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Base(Base::Io { path: path.into(), source })
    }

    /// A file is not the artifact it should be.
    pub fn artifact(path: impl Into<PathBuf>, reason: ArtifactError) -> Self {
        Self::Base(Base::Artifact { path: path.into(), reason })
    }

    /// An input (a file, a value) that does not fit.
    pub fn bad_input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Base(Base::BadInput { what: what.into(), reason: reason.into() })
    }

    /// Nova failed at `stage`.
    pub fn nova(stage: &'static str, source: NovaError) -> Self {
        Self::Base(Base::Nova { stage, source })
    }

    /// Whether the failure is the user's input (a file, a value, a model), not the machine's.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::Base(Base::BadInput { .. } | Base::Io { .. } | Base::Artifact { .. })
                | Self::Quant(_)
                | Self::Onnx { .. }
                | Self::Job(_)
        )
    }

    /// The error as it may be written to a file that is not secret (a job's event log):
    /// what failed and where, never values that may depend on the secret input or weights
    /// (an accumulator out of range, an activation). The full message goes to the user.
    pub fn public_summary(&self) -> String {
        match self {
            Self::Base(Base::BadInput { what, .. }) => {
                format!("{what}: rejected (details withheld: they may carry secret values)")
            }
            Self::Quant(_) => "quantized arithmetic rejected a value (details withheld: it may be secret)".into(),
            Self::AtLayer { layer, .. } => format!("folding layer {layer} failed"),
            Self::Base(_) | Self::Onnx { .. } | Self::Job(_) => self.to_string(),
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

/// Why an ONNX model cannot be imported.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OnnxError {
    /// The file is not a readable ONNX model.
    #[error("not a readable ONNX model: {0}")]
    Decode(String),
    /// Operators fold-ml has no circuit for (all of them, in graph order).
    #[error("{}: fold-ml supports {}", unsupported_list(.0), crate::model::onnx::graph::SUPPORTED_OPS.join(", "))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_summaries_carry_no_values() {
        let secret = "accumulator 123456789 is out of the 16-bit range";
        let errors = [
            Error::bad_input("model layers 3..4", secret),
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
