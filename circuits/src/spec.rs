//! The public shape of a step's unit: a layer ([`LayerSpec`]: geometry, requantization,
//! shortcut terms, pooling and input zero point) and a block of layers ([`BlockSpec`],
//! e.g. a ResNet basic block); their canonical encoding and digests (what the model
//! commitment binds); and the one structural check of a chain of segments.

use crate::commit::{domain_tag, hash_native, Chunks, LayerUpdate, Layout, TAG_LAYER_SPEC};
use crate::gadgets::conv::ConvShape;
use crate::gadgets::linear::{Linear, LinearShape};
use crate::gadgets::pool::{Pool, PoolKind};
use crate::quant::{QuantError, RequantSpec};
use crate::F;
use serde::{Deserialize, Serialize};

/// Length of [`LayerSpec::encode`]: version, kind, 13 geometry slots, shift, accumulator
/// bits, skip, input zero point, pool kind, 8 pool slots, projection flag and 13
/// projection slots.
pub const SPEC_FIELDS: usize = 42;

/// Version of [`LayerSpec::encode`]'s meaning (the first encoded field).
pub const SPEC_ENCODING: u64 = 3;

/// Most layers in one block.
pub const MAX_STAGES: usize = 8;

/// The public shape of a layer: its geometry, requantization, shortcut terms and pooling.
///
/// A layer computes `y = pool(clamp(floor((bias + skip·xb + Σ w·x + Σ w_p·xb) / 2^shift),
/// 0, 127))`: the linear map of its input `x`, the optional shortcut terms of its block's
/// input `xb` (a residual `skip` multiplier, 0: none; a `projection` convolution, whose
/// weights follow the layer's own), requantize+ReLU+clamp, and the optional pooling of a
/// convolution's output. In a one-layer block `xb` is the layer's own input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Geometry.
    pub shape: LinearShape,
    /// Requantization.
    pub requant: RequantSpec,
    /// Residual multiplier: output `o` adds `skip · xb[o]` to its accumulator (0: none).
    pub skip: u32,
    /// Projection shortcut: a convolution of the block input into the accumulators.
    pub projection: Option<ConvShape>,
    /// Pooling of the requantized outputs (convolutions only).
    pub pool: Option<Pool>,
    /// Zero point of the input activations: a stored `a` stands for `a - zero_point` (0
    /// after a ReLU; the calibrated zero point of a signed model input).
    pub zero_point: u8,
}

impl LayerSpec {
    /// A plain linear layer: no shortcut, no pooling.
    pub fn new(shape: LinearShape, requant: RequantSpec) -> Self {
        Self { shape, requant, skip: 0, projection: None, pool: None, zero_point: 0 }
    }

    /// The linear map and requantization (before pooling), in a block whose input has
    /// the given zero point.
    pub fn linear(&self, block_zero_point: u8) -> Linear {
        Linear {
            shape: self.shape,
            requant: self.requant,
            skip: self.skip,
            projection: self.projection,
            zero_point: self.zero_point,
            block_zero_point,
        }
    }

    /// Input activations.
    pub fn num_inputs(&self) -> usize {
        self.shape.num_inputs()
    }

    /// Weights, the projection's included.
    pub fn num_weights(&self) -> usize {
        self.linear(0).num_weights()
    }

    /// Output activations (after pooling).
    pub fn num_outputs(&self) -> usize {
        self.output_dims().iter().product()
    }

    /// `[channels, height, width]` of the input (a dense layer's is `[n, 1, 1]`).
    pub fn input_dims(&self) -> [usize; 3] {
        match self.shape {
            LinearShape::Conv(c) => [c.channels_in, c.height, c.width],
            LinearShape::Dense(d) => [d.inputs, 1, 1],
        }
    }

    /// `[channels, height, width]` of the output, after pooling.
    pub fn output_dims(&self) -> [usize; 3] {
        match (self.pool, self.shape) {
            (Some(pool), LinearShape::Conv(c)) => pool.output_dims(c.output_dims()).into(),
            (None, LinearShape::Conv(c)) => c.output_dims().into(),
            (_, LinearShape::Dense(d)) => [d.outputs, 1, 1],
        }
    }

    /// Checks what the type cannot, apart from the shortcut terms (which depend on the
    /// block: [`BlockSpec::check`]): a valid geometry and pooling of a convolution with
    /// windows that fit.
    pub fn check(&self) -> Result<(), QuantError> {
        self.shape.check().map_err(QuantError::BadSpec)?;
        match (self.pool, self.shape) {
            (None, _) => Ok(()),
            (Some(pool), LinearShape::Conv(c)) => pool.check(c.output_dims()).map_err(QuantError::BadSpec),
            (Some(_), _) => Err(QuantError::BadSpec("only convolution outputs can be pooled".into())),
        }
    }

    /// The digest of stage `stage` of a block of `stages` layers: a Poseidon hash of the
    /// canonical encoding ([`Self::encode`]) and the position. Each layer's
    /// model-commitment update absorbs it as a circuit constant, so the commitment binds
    /// the function (geometry, requantization, shortcut, pooling, and which block input
    /// the shortcut reads), not only the weights.
    pub fn digest_at(&self, stage: usize, stages: usize) -> F {
        let fields = self.encode();
        let mut items = vec![domain_tag(TAG_LAYER_SPEC, fields.len() + 2)];
        items.extend(fields.iter().map(|&v| F::from(v)));
        items.extend([stage, stages].map(|v| F::from(v as u64)));
        hash_native(&items)
    }

    /// How this layer's parameters are chunked in its model-commitment update.
    pub fn chunks(&self) -> Chunks {
        let outputs = self.shape.num_biases();
        let per = |n: usize| n / outputs.max(1);
        Chunks::new(outputs, per(self.shape.num_weights()), per(self.projection.map_or(0, |p| p.num_weights())))
    }

    /// The model-commitment update of stage `stage` of a block of `stages` layers: its
    /// digest ([`Self::digest_at`]) and chunks.
    pub fn update_at(&self, stage: usize, stages: usize) -> LayerUpdate {
        LayerUpdate { digest: self.digest_at(stage, stages), chunks: self.chunks() }
    }

    /// Every size, stride and padding of the layer (geometry, pooling, projection), as
    /// encoded.
    pub fn dimensions(&self) -> Vec<u64> {
        let e = self.encode();
        e[2..15].iter().chain(&e[20..28]).chain(&e[29..]).copied().collect()
    }

    /// Canonical encoding of every public parameter, led by [`SPEC_ENCODING`] (bumped
    /// whenever a parameter's meaning changes). Injective: fixed length, one slot per field
    /// (a dense layer's, an absent pool's and an absent projection's unused slots are 0,
    /// and their kind or flag slots differ).
    pub fn encode(&self) -> [u64; SPEC_FIELDS] {
        let conv = |c: &ConvShape| {
            let ([kh, kw], [sh, sw], [t, l, b, r]) = (c.kernel, c.stride, c.pads);
            [c.channels_in, c.channels_out, c.height, c.width, kh, kw, sh, sw, t, l, b, r, c.groups]
        };
        let (kind, dims) = match &self.shape {
            LinearShape::Conv(c) => (0, conv(c)),
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
        let (has_projection, projection) = self.projection.as_ref().map_or((0, [0; 13]), |p| (1, conv(p)));
        let mut out = [0u64; SPEC_FIELDS];
        let fields = [SPEC_ENCODING, kind]
            .into_iter()
            .chain(dims.map(|v| v as u64))
            .chain([self.requant.shift(), self.requant.acc_bits(), self.skip, self.zero_point.into()].map(u64::from))
            .chain([pool_kind])
            .chain(pool.map(|v| v as u64))
            .chain([has_projection])
            .chain(projection.map(|v| v as u64));
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

/// The public shape of a block: layers applied in order within one step, the first to the
/// block's input, each next one to its predecessor's output; any layer's shortcut terms
/// read the block's input (a ResNet basic block is `[conv1, conv2 + shortcut]`). A plain
/// layer is a block of one.
///
/// `links` says how the block's input and output tensors are committed ([`Layout`]): the
/// whole tensor in one link (cheapest), one row per link (next to a row-tiled layer, which
/// reads or writes them a band at a time) or one group of channels per link (the output
/// of a channel-tiled layer, written a group at a time). The neighbouring block must agree
/// ([`check_chain`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    /// The layers, in order (1 to [`MAX_STAGES`]).
    pub stages: Vec<LayerSpec>,
    /// How the input and the output are committed.
    pub links: [Links; 2],
}

/// How a block's input or output tensor is cut into the links of its commitment
/// ([`Layout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Links {
    /// The whole tensor in one link.
    Whole,
    /// One row (every channel) per link.
    Rows,
    /// One group of this many channels (every row) per link.
    Channels(usize),
    /// One row of one group of this many channels per link.
    RowGroups(usize),
}

impl Links {
    /// One row per link, or whole.
    pub fn rows(by_rows: bool) -> Self {
        if by_rows {
            Self::Rows
        } else {
            Self::Whole
        }
    }

    /// The layout of a tensor of `dims` committed so.
    pub fn layout(self, dims: [usize; 3]) -> Layout {
        match self {
            Self::Whole => Layout::whole(dims),
            Self::Rows => Layout::by_rows(dims),
            Self::Channels(g) => Layout::by_channels(dims, g),
            Self::RowGroups(g) => Layout::by_row_groups(dims, g),
        }
    }
}

impl BlockSpec {
    /// A block of the given layers, its input and output committed whole.
    pub fn new(stages: Vec<LayerSpec>) -> Self {
        Self { stages, links: [Links::Whole; 2] }
    }

    /// A block of one layer.
    pub fn layer(spec: LayerSpec) -> Self {
        Self::new(vec![spec])
    }

    /// The same block with its input and output committed one row per link or whole.
    pub fn with_row_links(self, [input, output]: [bool; 2]) -> Self {
        self.with_links([Links::rows(input), Links::rows(output)])
    }

    /// The same block with its input and output committed as given.
    pub fn with_links(mut self, links: [Links; 2]) -> Self {
        self.links = links;
        self
    }

    /// How the block's input is committed.
    pub fn input_layout(&self) -> Layout {
        self.links[0].layout(self.stages.first().map_or([0, 1, 1], LayerSpec::input_dims))
    }

    /// How the block's output is committed.
    pub fn output_layout(&self) -> Layout {
        self.links[1].layout(self.stages.last().map_or([0, 1, 1], LayerSpec::output_dims))
    }

    /// Layers in the block.
    pub fn num_stages(&self) -> usize {
        self.stages.len()
    }

    /// Input activations of the block.
    pub fn num_inputs(&self) -> usize {
        self.stages.first().map_or(0, LayerSpec::num_inputs)
    }

    /// Output activations of the block.
    pub fn num_outputs(&self) -> usize {
        self.stages.last().map_or(0, LayerSpec::num_outputs)
    }

    /// Zero point of the block input.
    pub fn zero_point(&self) -> u8 {
        self.stages.first().map_or(0, |s| s.zero_point)
    }

    /// Stage `i`'s linear map, its shortcut reading the block input.
    pub fn linear(&self, i: usize) -> Linear {
        self.stages[i].linear(self.zero_point())
    }

    /// Multiply-accumulates of the whole block (padding taps excluded).
    pub fn macs(&self) -> usize {
        (0..self.num_stages()).map(|i| self.linear(i).macs()).sum()
    }

    /// Every stage's digest ([`LayerSpec::digest_at`]), in order.
    pub fn digests(&self) -> Vec<F> {
        self.updates().iter().map(|u| u.digest).collect()
    }

    /// Every stage's model-commitment update ([`LayerSpec::update_at`]), in order.
    pub fn updates(&self) -> Vec<LayerUpdate> {
        let n = self.stages.len();
        self.stages.iter().enumerate().map(|(i, s)| s.update_at(i, n)).collect()
    }

    /// Every size, stride and padding of every stage.
    pub fn dimensions(&self) -> Vec<u64> {
        self.stages.iter().flat_map(LayerSpec::dimensions).collect()
    }

    /// Checks what the types cannot: 1 to [`MAX_STAGES`] valid stages whose sizes chain,
    /// shortcut terms that fit the block input, and valid input and output layouts.
    pub fn check(&self) -> Result<(), QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        if !(1..=MAX_STAGES).contains(&self.stages.len()) {
            return bad(format!("a block has 1 to {MAX_STAGES} layers, not {}", self.stages.len()));
        }
        let inputs = self.num_inputs();
        let mut width = inputs;
        for (i, stage) in self.stages.iter().enumerate() {
            let at = |e: QuantError| QuantError::BadSpec(format!("block layer {i}: {e}"));
            stage.check().map_err(at)?;
            if stage.num_inputs() != width {
                return bad(format!("block layer {i} takes {} activations, it is given {width}", stage.num_inputs()));
            }
            self.linear(i).check_shortcut(inputs).map_err(at)?;
            width = stage.num_outputs();
        }
        for (side, layout) in [("input", self.input_layout()), ("output", self.output_layout())] {
            layout.check().or_else(|e| bad(format!("the block's {side}: {e}")))?;
        }
        Ok(())
    }
}

/// Checks a chain of segments, input to output, each `(block, layers, layers_per_step)`:
/// at least one segment, every block valid ([`BlockSpec::check`], requantization through
/// its validating constructor), whole blocks (a multi-layer block is one step: its
/// `layers_per_step` is its size), tensors that chain from one segment to the next (the
/// same dimensions and commitment [`Layout`]), and input = output wherever blocks are
/// stacked (several in a segment or in a step). The one check of a network's structure that the model file, the prover and the
/// verifier's statement all use.
pub fn check_chain<'a>(segments: impl IntoIterator<Item = (&'a BlockSpec, usize, usize)>) -> Result<(), QuantError> {
    let bad = |j: usize, m: String| Err(QuantError::BadSpec(format!("segment {j}: {m}")));
    let mut previous: Option<Layout> = None;
    for (j, (block, layers, layers_per_step)) in segments.into_iter().enumerate() {
        block.check().or_else(|e| bad(j, e.to_string()))?;
        for s in &block.stages {
            if let Err(e) = RequantSpec::new(s.requant.shift(), s.requant.acc_bits()) {
                return bad(j, e.to_string());
            }
        }
        let n = block.num_stages();
        if layers == 0 {
            return bad(j, "has no layer".into());
        }
        if layers % n != 0 {
            return bad(j, format!("has {layers} layers, not a whole number of {n}-layer blocks"));
        }
        if n > 1 && layers_per_step != n {
            return bad(j, format!("a {n}-layer block is one step; layers per step is {layers_per_step}"));
        }
        let (input, output) = (block.input_layout(), block.output_layout());
        if (layers > n || layers_per_step > n) && input != output {
            return bad(j, format!("blocks whose input {input:?} and output {output:?} differ cannot be stacked"));
        }
        if let Some(p) = previous.filter(|p| *p != input) {
            return bad(j, format!("takes a tensor {input:?}, the previous segment gives {p:?}"));
        }
        previous = Some(output);
    }
    match previous {
        Some(_) => Ok(()),
        None => Err(QuantError::BadSpec("a network has at least one segment".into())),
    }
}
