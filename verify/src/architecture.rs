//! The public description of a segment's step circuit: what its keys depend on.

use crate::artifact::hex;
use fold_ml_circuits::layer::BlockSpec;
use fold_ml_circuits::{CIRCUIT_VERSION, F};
use nova_snark::digest::{DigestComputer, SimpleDigestible};
use serde::{Deserialize, Serialize};

/// The public description of the circuit: everything public parameters depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// [`CIRCUIT_VERSION`] of the prover.
    pub circuit: String,
    /// The block every step applies (a plain layer is a block of one).
    pub block: BlockSpec,
    /// Layers folded per Nova step (a multi-layer block's size, or one-layer blocks).
    pub layers_per_step: usize,
}

impl SimpleDigestible for Architecture {}

impl Architecture {
    /// The architecture of `layers_per_step` layers of `block` per step, under this
    /// build's circuit.
    pub fn new(block: BlockSpec, layers_per_step: usize) -> Self {
        Self { circuit: CIRCUIT_VERSION.to_string(), block, layers_per_step }
    }

    /// Digest (nova-snark's SHA3-based digest of the canonical encoding), 32 bytes.
    pub fn digest(&self) -> [u8; 32] {
        digest32(self)
    }

    /// Digest as hex.
    pub fn digest_hex(&self) -> String {
        hex(&self.digest())
    }

    /// A short name for directories and messages.
    pub fn short_id(&self) -> String {
        self.digest_hex()[2..18].to_string()
    }
}

/// nova-snark's SHA3-based digest of a value's canonical encoding, 32 bytes. Only for
/// values whose encoding cannot fail (plain structs of integers, strings and bytes): a
/// failure is a bug and stops the program, never an all-zero digest that would make two
/// different values look alike.
pub fn digest32<T: SimpleDigestible>(value: &T) -> [u8; 32] {
    let f: F = DigestComputer::new(value).digest().expect("the canonical encoding of a plain value cannot fail");
    crate::field::to_bytes(&f)
}
