//! The public shape of a layer ([`LayerSpec`]): geometry, requantization, residual
//! connection, pooling and input zero point; its canonical encoding and digest (what the
//! model commitment binds); and the one structural check of a chain of segments.

use crate::commit::{domain_tag, hash_native, TAG_LAYER_SPEC};
use crate::gadgets::linear::{check_skip, Linear, LinearShape};
use crate::gadgets::pool::{Pool, PoolKind};
use crate::quant::{QuantError, RequantSpec};
use crate::F;
use serde::{Deserialize, Serialize};

/// Length of [`LayerSpec::encode`]: version, kind, 13 geometry slots, shift, accumulator
/// bits, skip, input zero point, pool kind and 8 pool slots.
pub const SPEC_FIELDS: usize = 28;

/// Version of [`LayerSpec::encode`]'s meaning (the first encoded field).
pub const SPEC_ENCODING: u64 = 2;

/// The public shape of a layer: its geometry, requantization, residual connection and
/// pooling. All layers folded with one set of public parameters share one spec.
///
/// A layer computes `y = pool(clamp(floor((bias + skip·x_o + Σ w·x) / 2^shift), 0, 127))`:
/// the linear map, the optional residual term (`skip = 0`: none), requantize+ReLU+clamp,
/// and the optional pooling of a convolution's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Geometry.
    pub shape: LinearShape,
    /// Requantization.
    pub requant: RequantSpec,
    /// Residual multiplier: output `o` adds `skip · input[o]` to its accumulator (0: none).
    pub skip: u32,
    /// Pooling of the requantized outputs (convolutions only).
    pub pool: Option<Pool>,
    /// Zero point of the input activations: a stored `a` stands for `a - zero_point` (0
    /// after a ReLU; the calibrated zero point of a signed model input).
    pub zero_point: u8,
}

impl LayerSpec {
    /// A plain linear layer: no residual connection, no pooling.
    pub fn new(shape: LinearShape, requant: RequantSpec) -> Self {
        Self { shape, requant, skip: 0, pool: None, zero_point: 0 }
    }

    /// The linear map and requantization (before pooling).
    pub fn linear(&self) -> Linear {
        Linear { shape: self.shape, requant: self.requant, skip: self.skip, zero_point: self.zero_point }
    }

    /// Input activations.
    pub fn num_inputs(&self) -> usize {
        self.shape.num_inputs()
    }

    /// Output activations (after pooling).
    pub fn num_outputs(&self) -> usize {
        match (self.pool, self.shape) {
            (Some(pool), LinearShape::Conv(c)) => {
                let (ch, h, w) = pool.output_dims(c.output_dims());
                ch * h * w
            }
            _ => self.shape.num_outputs(),
        }
    }

    /// Checks what the type cannot: a valid convolution geometry, a skip connection only
    /// with as many inputs as outputs, and pooling of a convolution with windows that fit.
    pub fn check(&self) -> Result<(), QuantError> {
        self.shape.check().map_err(QuantError::BadSpec)?;
        check_skip(&self.shape, self.skip)?;
        match (self.pool, self.shape) {
            (None, _) => Ok(()),
            (Some(pool), LinearShape::Conv(c)) => pool.check(c.output_dims()).map_err(QuantError::BadSpec),
            (Some(_), _) => Err(QuantError::BadSpec("only convolution outputs can be pooled".into())),
        }
    }

    /// The spec's digest: a Poseidon hash of its canonical encoding ([`Self::encode`]).
    /// Each layer's model-commitment update absorbs it as a circuit constant, so the
    /// commitment binds the function (geometry, requantization, residual, pooling), not
    /// only the weights.
    pub fn digest(&self) -> F {
        let fields = self.encode();
        let mut items = vec![domain_tag(TAG_LAYER_SPEC, fields.len())];
        items.extend(fields.iter().map(|&v| F::from(v)));
        hash_native(&items)
    }

    /// Every size, stride and padding of the layer (geometry and pooling), as encoded.
    pub fn dimensions(&self) -> Vec<u64> {
        let e = self.encode();
        e[2..15].iter().chain(&e[20..]).copied().collect()
    }

    /// Canonical encoding of every public parameter, led by [`SPEC_ENCODING`] (bumped
    /// whenever a parameter's meaning changes). Injective: fixed length, one slot per field
    /// (a dense layer's and an absent pool's unused slots are 0, and their kind slots differ).
    pub fn encode(&self) -> [u64; SPEC_FIELDS] {
        let (kind, dims) = match self.shape {
            LinearShape::Conv(c) => {
                let ([kh, kw], [sh, sw], [t, l, b, r]) = (c.kernel, c.stride, c.pads);
                (0, [c.channels_in, c.channels_out, c.height, c.width, kh, kw, sh, sw, t, l, b, r, c.groups])
            }
            LinearShape::Dense(d) => (1, [d.inputs, d.outputs, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        };
        let (pool_kind, pool) = match self.pool {
            None => (0, [0; 8]),
            Some(p) => {
                let ([kh, kw], [sh, sw], [t, l, b, r]) = (p.kernel, p.stride, p.pads);
                let kind = match p.kind {
                    PoolKind::Max => 1,
                    PoolKind::Average => 2,
                };
                (kind, [kh, kw, sh, sw, t, l, b, r])
            }
        };
        let mut out = [0u64; SPEC_FIELDS];
        let fields = [SPEC_ENCODING, kind]
            .into_iter()
            .chain(dims.map(|v| v as u64))
            .chain([self.requant.shift(), self.requant.acc_bits(), self.skip, self.zero_point.into()].map(u64::from))
            .chain([pool_kind])
            .chain(pool.map(|v| v as u64));
        for (slot, v) in out.iter_mut().zip(fields) {
            *slot = v;
        }
        out
    }

    /// The input indices (into the linear outputs) of every pooled output.
    pub fn pool_windows(&self) -> Option<(PoolKind, Vec<Vec<usize>>)> {
        match (self.pool, self.shape) {
            (Some(pool), LinearShape::Conv(c)) => Some((pool.kind, pool.windows(c.output_dims()))),
            _ => None,
        }
    }
}

/// Checks a chain of segments, input to output, each `(spec, layers, layers_per_step)`:
/// at least one segment, every spec valid ([`LayerSpec::check`], requantization through
/// its validating constructor), at least one layer each, sizes that chain from one
/// segment to the next, and input size = output size wherever layers are stacked (several
/// in a segment or in a step). The one check of a network's structure that the model file,
/// the prover and the verifier's statement all use.
pub fn check_chain<'a>(segments: impl IntoIterator<Item = (&'a LayerSpec, usize, usize)>) -> Result<(), QuantError> {
    let bad = |j: usize, m: String| Err(QuantError::BadSpec(format!("segment {j}: {m}")));
    let mut width: Option<usize> = None;
    for (j, (spec, layers, layers_per_step)) in segments.into_iter().enumerate() {
        spec.check().or_else(|e| bad(j, e.to_string()))?;
        if let Err(e) = RequantSpec::new(spec.requant.shift(), spec.requant.acc_bits()) {
            return bad(j, e.to_string());
        }
        if layers == 0 {
            return bad(j, "has no layer".into());
        }
        if (layers > 1 || layers_per_step > 1) && spec.num_inputs() != spec.num_outputs() {
            return bad(j, "layers whose input and output sizes differ cannot be stacked".into());
        }
        if let Some(w) = width.filter(|&w| w != spec.num_inputs()) {
            return bad(j, format!("takes {} activations, the previous segment gives {w}", spec.num_inputs()));
        }
        width = Some(spec.num_outputs());
    }
    match width {
        Some(_) => Ok(()),
        None => Err(QuantError::BadSpec("a network has at least one segment".into())),
    }
}
