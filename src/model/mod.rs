//! Models as the prover sees them: a public [`Architecture`] (what the circuit is) and a
//! private stream of layers (what the weights are), read one layer at a time.
//!
//! Owns every source of a model and of its input: the built-in synthetic models
//! ([`SyntheticModel`], generated layer by layer), the model file ([`network::Network`],
//! written by `import`), ONNX import ([`onnx`]: graph → [`onnx::graph::FloatLayers`] →
//! quantized network, checked against tract's [`onnx::accuracy::TractModel`]), input
//! readers ([`input`]) and input commitments ([`input_commitment`]).
//!
//! Words, one per concept: a *model* is anything that is a [`ModelSource`] (segments of
//! layers); a *network* is an imported, quantized model file; a layer's *weights*
//! ([`LayerWeights`]: weight matrix and bias) are secret, its *spec* (`LayerSpec`, with its
//! [`fold_ml_circuits::quant::RequantSpec`]) is public; a *block* ([`BlockSpec`]: one
//! layer, or a residual block's layers) is what one step applies; a job's *model record*
//! ([`crate::job::manifest::ModelRecord`]) says which model a job proves; Nova's *public
//! parameters* (`PublicParams`, "pp") and *keys* belong to [`crate::prove::keys`]; *K* is
//! "layers per step".

pub mod fuse;
pub mod gpt_file;
pub mod input;
pub mod input_commitment;
pub mod network;
pub mod onnx;

use fold_ml_circuits::layer::{BlockSpec, LayerWeights};
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use network::{Network, Segment};

pub use fold_ml_circuits::CIRCUIT_VERSION;
pub use fold_ml_verify::architecture::Architecture;

/// A run of blocks of one spec that the prover can stream layer by layer.
pub trait LayerSource: Sync {
    /// The shared block spec (a plain layer is a block of one).
    fn spec(&self) -> BlockSpec;
    /// Depth in layers (whole blocks).
    fn num_layers(&self) -> usize;
    /// Layer `i` (generated or read on demand).
    fn layer(&self, i: usize) -> LayerWeights;
}

/// A model: its segments, in order, and the salt of its commitment.
pub trait ModelSource: Sync {
    /// The segments, input to output.
    fn segments(&self) -> Vec<&dyn LayerSource>;
    /// The model commitment's salt.
    fn salt(&self) -> F;
    /// Whether the outputs are class scores (the statement then names the class).
    fn is_classifier(&self) -> bool;
    /// Total depth.
    fn num_layers(&self) -> usize {
        self.segments().iter().map(|s| s.num_layers()).sum()
    }
}

impl LayerSource for SyntheticModel {
    fn spec(&self) -> BlockSpec {
        BlockSpec::layer(SyntheticModel::spec(self))
    }
    fn num_layers(&self) -> usize {
        self.layers()
    }
    fn layer(&self, i: usize) -> LayerWeights {
        SyntheticModel::layer(self, i)
    }
}

impl ModelSource for SyntheticModel {
    fn segments(&self) -> Vec<&dyn LayerSource> {
        vec![self]
    }
    fn salt(&self) -> F {
        SyntheticModel::salt(self)
    }
    fn is_classifier(&self) -> bool {
        false
    }
}

impl LayerSource for Segment {
    fn spec(&self) -> BlockSpec {
        self.spec.clone()
    }
    fn num_layers(&self) -> usize {
        self.layers.len()
    }
    fn layer(&self, i: usize) -> LayerWeights {
        self.layers[i].clone()
    }
}

impl ModelSource for Network {
    fn segments(&self) -> Vec<&dyn LayerSource> {
        self.segments.iter().map(|s| s as &dyn LayerSource).collect()
    }
    fn salt(&self) -> F {
        self.salt
    }
    fn is_classifier(&self) -> bool {
        true
    }
}

/// The model commitment of a streamed model (every layer's spec and parameters under the
/// model's salt), computed natively.
pub fn model_commitment(model: &dyn ModelSource) -> F {
    let layers = model.segments().into_iter().flat_map(|s| {
        let updates = s.spec().updates();
        (0..s.num_layers()).map(move |i| (updates[i % updates.len()], s.layer(i)))
    });
    fold_ml_circuits::reference::model_commitment(model.salt(), layers)
}
