//! # fold-ml
//!
//! Zero-knowledge proofs that a deep neural network produced a given output: each layer is
//! an R1CS step circuit ([`fold_ml_circuits`]) folded with Nova IVC on Pallas/Vesta, and
//! the folded proof is compressed with Spartan into a small zero-knowledge SNARK that
//! [`verify`] checks from the public [`statement::Statement`] alone.
//!
//! - [`prove`]: planning, folding, compression and the segment task; its [`prove::keys`]
//!   cache the prover's parameters;
//! - [`verify`]: the standalone verifier; [`statement`]: the public statement;
//! - [`artifact`]: binary files and their untrusted decoding; [`job`]: the job directory;
//! - [`model`]: model sources (synthetic models, the quantized model file, ONNX import)
//!   and inputs;
//! - [`error`]: the library's typed errors (the CLI maps them to flags and exit codes).
#![deny(missing_docs)]

pub mod error;
pub mod job;
pub mod mem;
pub mod model;
pub mod prove;

// The verifier's half lives in its own crate; these paths stay as they were.
pub use fold_ml_verify::{architecture, artifact, field, gpt, nova, statement, verify};

pub use error::{Error, VerifyError};
pub use fold_ml_circuits::F;
