//! # fold-ml-circuits
//!
//! R1CS gadgets and layer step circuits for proving quantized neural-network inference with
//! Nova IVC, written against `nova_snark::frontend`. Every gadget sits beside its bit-exact
//! native reference, and the property tests hold them equal.
//!
//! - [`quant`]: value ranges and integer semantics (the single source of truth).
//! - [`gadgets`]: range checks, requantize+ReLU+clamp, dot product, convolution and dense
//!   geometry, Poseidon commitments.
//! - [`spec`]: the public layer and block specs and their digests; [`layer`]: the [`layer::LayerStep`]
//!   step circuit; [`state`]: its IVC state and why it binds the whole computation.
//! - [`mux`]: several segments' step circuits multiplexed into one (one proof per network;
//!   measured, not used by the prover yet).
//! - [`reference`]: the native executor of a stack of layers; [`synthetic`]: the
//!   deterministic Zator-shaped model generator.
//!
//! This crate knows nothing of files, jobs or the command line.
#![deny(missing_docs)]

pub mod baseline;
pub mod cost;
mod count_cs;
pub mod gadgets;
pub mod layer;
pub mod mux;
pub mod quant;
pub mod reference;
pub mod spec;
pub mod state;
pub mod step;
pub mod synthetic;
pub mod tile;
pub mod transformer;

pub use gadgets::commit;

/// Version of the step circuit and its proving system; bump whenever a constraint or the
/// keys' encoding changes (`raw-point-keys`: vendor/halo2curves/PATCHED.md),
/// so that cached parameters and old statements are never mixed with a different circuit.
pub const CIRCUIT_VERSION: &str = "fold-ml-circuits/15 nova-snark/0.76 pallas-vesta spartan-ipa raw-point-keys";

/// The circuit field: the scalar field of Pallas (the primary curve of the Pallas/Vesta cycle).
pub type F = nova_snark::provider::pasta::pallas::Scalar;
