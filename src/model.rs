//! Models as the prover sees them: a public [`Architecture`] (what the circuit is) and a
//! private stream of layers (what the weights are), read one layer at a time.

use crate::artifact::hex;
use fold_ml_circuits::layer::{LayerParams, LayerSpec};
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::digest::{DigestComputer, SimpleDigestible};
use serde::{Deserialize, Serialize};

/// Version of the step circuit; bump whenever a constraint changes, so that cached
/// parameters and old statements are never mixed with a different circuit.
pub const CIRCUIT_VERSION: &str = "fold-ml-circuits/2 nova-snark/0.76 pallas-vesta spartan-ipa";

/// The public description of the circuit: everything public parameters depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// [`CIRCUIT_VERSION`] of the prover.
    pub circuit: String,
    /// The shape of every layer.
    pub layer: LayerSpec,
    /// Layers folded per Nova step.
    pub layers_per_step: usize,
}

impl SimpleDigestible for Architecture {}

impl Architecture {
    /// The architecture of `layers_per_step` layers of `layer` per step, under this
    /// build's circuit.
    pub fn new(layer: LayerSpec, layers_per_step: usize) -> Self {
        Self { circuit: CIRCUIT_VERSION.to_string(), layer, layers_per_step }
    }

    /// Digest (nova-snark's SHA3-based digest of the canonical encoding), 32 bytes.
    pub fn digest(&self) -> [u8; 32] {
        let f: F = DigestComputer::new(self).digest().unwrap_or_default();
        crate::field::to_bytes(&f)
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

/// A model the prover can stream layer by layer.
pub trait LayerSource {
    /// The shared layer spec.
    fn spec(&self) -> LayerSpec;
    /// Depth.
    fn num_layers(&self) -> usize;
    /// Layer `i` (generated or read on demand).
    fn layer(&self, i: usize) -> LayerParams;
    /// The model commitment's salt.
    fn salt(&self) -> F;
}

impl LayerSource for SyntheticModel {
    fn spec(&self) -> LayerSpec {
        SyntheticModel::spec(self)
    }
    fn num_layers(&self) -> usize {
        self.layers()
    }
    fn layer(&self, i: usize) -> LayerParams {
        SyntheticModel::layer(self, i)
    }
    fn salt(&self) -> F {
        SyntheticModel::salt(self)
    }
}

/// The model commitment `(iv, final)` of a streamed model, computed natively.
pub fn model_commitment(model: &dyn LayerSource) -> (F, F) {
    fold_ml_circuits::reference::model_commitment(model.salt(), (0..model.num_layers()).map(|i| model.layer(i)))
}
