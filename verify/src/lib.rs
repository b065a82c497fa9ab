//! # fold-ml-verify
//!
//! Everything a verifier of fold-ml proofs needs, and nothing else: the public
//! [`statement::Statement`] and its checks, the [`architecture::Architecture`] of a segment,
//! binary [`artifact`]s and their untrusted decoding, field encodings, the verifier's own
//! [`keys`] (derived from the public architecture, authenticated when handed over), the
//! Nova instantiation ([`nova`]) and [`verify`] itself, plus the `fold-ml-verify` command
//! ([`cli`]). It never imports models, folds, or draws progress bars: `cargo tree -p
//! fold-ml-verify` has no tract and no indicatif. A wasm or EVM verifier builds from here.
#![deny(missing_docs)]

pub mod architecture;
pub mod artifact;
pub mod cli;
pub mod error;
pub mod field;
pub mod fsutil;
pub mod gpt;
pub mod keys;
pub mod nova;
pub mod statement;
pub mod verify;

pub use error::{ArtifactError, Error, VerifyError};
pub use fold_ml_circuits::F;
