//! The public statement: what a proof proves, in a human-readable JSON file.

use crate::architecture::Architecture;
use crate::error::VerifyError;
use crate::field::hex_serde;
use ff::Field;
use fold_ml_circuits::commit::{activation_commitment_native, model_start, Layout};
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{check_chain, LayerSpec, MAX_STAGES};
use fold_ml_circuits::quant::check_activations;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::Tiling;
use fold_ml_circuits::CIRCUIT_VERSION;
use fold_ml_circuits::F;
use nova_snark::digest::SimpleDigestible;
use serde::{Deserialize, Serialize};

/// The `format` tag of a statement file.
pub const STATEMENT_FORMAT: &str = "fold-ml statement";
/// Largest number of layers folded in one step.
pub const MAX_LAYERS_PER_STEP: usize = 256;
/// Statement format version (3: architecture-bound, hiding model commitment from a fixed
/// start; public outputs opened with their blind).
pub const STATEMENT_VERSION: u16 = 6;
/// Largest number of segments in a statement.
pub const MAX_SEGMENTS: usize = 4096;
/// Largest `statement.json` the verifier reads, in bytes.
pub const MAX_STATEMENT_BYTES: u64 = 32 << 20;
/// Largest number of activations a layer may take or give.
pub const MAX_ACTIVATIONS: u128 = 1 << 20;
/// Largest number of weights of one layer.
pub const MAX_WEIGHTS: u128 = 1 << 22;
/// Largest size, stride or padding of any axis or channel count (the circuits' bound).
pub const MAX_DIMENSION: u128 = fold_ml_circuits::gadgets::conv::MAX_DIMENSION as u128;
/// Largest number of layers of a statement.
pub const MAX_LAYERS: usize = 1 << 32;
/// Largest (estimated, from above) number of constraints of one step circuit: what the
/// verifier agrees to derive a key for. Far above any model fold-ml proves today (the
/// default layer has 71,842), far below what would exhaust a verifier's memory.
pub const MAX_STEP_CONSTRAINTS: u128 = 1 << 23;

/// The input side of the statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputStatement {
    /// Commitment to the input activations (blinded unless the input is public).
    #[serde(with = "hex_serde")]
    pub commitment: F,
    /// The input itself, when it is public (then the commitment uses blind 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<u8>>,
}

/// The output side of the statement: a commitment (always under a random blind), and,
/// when the output is public, the activations with the blind that opens the commitment.
/// A proof of a prefix of the layers (from a checkpoint) keeps its output committed only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputStatement {
    /// Commitment to the output activations.
    #[serde(with = "hex_serde")]
    pub commitment: F,
    /// The output activations, in the layer's layout, when public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<u8>>,
    /// The blind that opens `commitment` to `values` (given with them).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::field::opt_hex_serde")]
    pub blind: Option<F>,
    /// For a classifier with a public output: the predicted class, the first index of the
    /// largest output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
}

/// One segment of the network: a run of layers of one architecture, proven by one
/// compressed proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentStatement {
    /// The segment's public architecture.
    pub architecture: Architecture,
    /// Its digest (checked against `architecture`).
    pub architecture_digest: String,
    /// Layers in the segment.
    pub num_layers: usize,
}

/// The public IVC state between two segments: the running model commitment and the
/// (blinded) activation commitment. Segment `j` must end, and segment `j + 1` start, here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Running model commitment after the earlier segment.
    #[serde(with = "hex_serde")]
    pub model: F,
    /// Commitment to the activations between the segments.
    #[serde(with = "hex_serde")]
    pub activations: F,
}

/// A public statement: "the network made of these segments, whose layer specs and
/// weights are committed as `model_commitment`, maps the input committed as
/// `input.commitment` to `output.values` in `num_layers` layers". Segment `j` runs from the
/// state after segment `j - 1` (the fixed model start and the input for the first) to
/// `links[j]` (the model commitment and the output for the last).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always [`STATEMENT_FORMAT`].
    pub format: String,
    /// [`STATEMENT_VERSION`].
    pub version: u16,
    /// Number of layers proven, all segments together.
    pub num_layers: usize,
    /// Model commitment: the running commitment after the last layer.
    #[serde(with = "hex_serde")]
    pub model_commitment: F,
    /// Input.
    pub input: InputStatement,
    /// Output.
    pub output: OutputStatement,
    /// The segments, input to output.
    pub segments: Vec<SegmentStatement>,
    /// The states between consecutive segments (one fewer than the segments).
    pub links: Vec<Link>,
}

/// Public activations, when given, must have the right length and range and open their
/// commitment with `blind`.
fn check_public(
    values: &Option<Vec<u8>>,
    blind: F,
    what: &str,
    layout: Layout,
    commitment: &F,
) -> Result<(), VerifyError> {
    let Some(v) = values else { return Ok(()) };
    let bad = |m: String| Err(VerifyError::BadStatement(m));
    let len = layout.len();
    if v.len() != len {
        return bad(format!("{what} has {} values, the architecture has {len}", v.len()));
    }
    check_activations(v).or_else(|e| bad(format!("{what}: {e}")))?;
    if activation_commitment_native(v, layout, blind) != *commitment {
        return bad(format!("the public {what} does not match the {what} commitment"));
    }
    Ok(())
}

impl SegmentStatement {
    /// The statement of a segment of `num_layers` layers of `architecture`.
    pub fn new(architecture: Architecture, num_layers: usize) -> Self {
        Self { architecture_digest: architecture.digest_hex(), architecture, num_layers }
    }
}

impl Statement {
    /// How the output is committed (the last segment's block output); a statement with
    /// no segment (refused by [`Self::check`]) reads as an empty vector.
    pub fn output_layout(&self) -> Layout {
        self.segments.last().map_or(Layout::whole([0, 1, 1]), |s| s.architecture.block.output_layout())
    }

    /// Builds a statement.
    pub fn new(
        segments: Vec<SegmentStatement>,
        links: Vec<Link>,
        model_commitment: F,
        input: InputStatement,
        output: OutputStatement,
    ) -> Self {
        Self {
            format: STATEMENT_FORMAT.into(),
            version: STATEMENT_VERSION,
            num_layers: segments.iter().map(|s| s.num_layers).sum(),
            model_commitment,
            input,
            output,
            segments,
            links,
        }
    }

    /// Checks everything that can be checked without the proofs.
    pub fn check(&self) -> Result<(), VerifyError> {
        let bad = |m: String| Err(VerifyError::BadStatement(m));
        if self.format != STATEMENT_FORMAT {
            return bad(format!("format is {:?}, expected {STATEMENT_FORMAT:?}", self.format));
        }
        if self.version < STATEMENT_VERSION {
            return bad(format!(
                "made by an older version of fold-ml (statement version {}; this verifier reads version \
                 {STATEMENT_VERSION}): prove again with this version",
                self.version
            ));
        }
        if self.version != STATEMENT_VERSION {
            return bad(format!("version {} is not the supported {STATEMENT_VERSION}", self.version));
        }
        if self.segments.is_empty() || self.segments.len() > MAX_SEGMENTS {
            return bad(format!("a statement has 1 to {MAX_SEGMENTS} segments"));
        }
        if self.links.len() + 1 != self.segments.len() {
            return bad(format!(
                "{} segments need {} links, found {}",
                self.segments.len(),
                self.segments.len() - 1,
                self.links.len()
            ));
        }
        // Sizes first, with overflow-free arithmetic: nothing below may multiply a hostile
        // dimension, allocate for it or derive a key for it before this passes.
        for (j, seg) in self.segments.iter().enumerate() {
            check_size(&seg.architecture).or_else(|e| bad(format!("segment {j}: {e}")))?;
            if seg.num_layers > MAX_LAYERS {
                return bad(format!("segment {j} has more than {MAX_LAYERS} layers"));
            }
        }
        for (j, seg) in self.segments.iter().enumerate() {
            let arch = &seg.architecture;
            if arch.circuit != CIRCUIT_VERSION {
                return bad(format!(
                    "segment {j} was proven with the circuit {:?}; this verifier checks {CIRCUIT_VERSION:?} \
                     (made by another version of fold-ml: prove again with this version)",
                    arch.circuit
                ));
            }
            if seg.architecture_digest != arch.digest_hex() {
                return bad(format!("segment {j}: architecture_digest does not match the architecture"));
            }
            arch.check().or_else(|e| bad(format!("segment {j}: {e}")))?;
        }
        check_chain(
            self.segments.iter().map(|s| (&s.architecture.block, s.num_layers, s.architecture.layers_per_step)),
        )
        .or_else(|e| bad(e.to_string()))?;
        let total: usize = self.segments.iter().map(|s| s.num_layers).sum();
        let output = self.segments[self.segments.len() - 1].architecture.block.output_layout();
        if total != self.num_layers {
            return bad(format!("num_layers is {}, the segments have {total}", self.num_layers));
        }
        match (&self.output.values, self.output.blind) {
            (Some(_), None) => return bad("a public output needs the blind that opens its commitment".into()),
            (None, Some(_)) => return bad("a blind is given for a committed output".into()),
            (_, blind) => {
                check_public(&self.output.values, blind.unwrap_or(F::ZERO), "output", output, &self.output.commitment)?
            }
        }
        let input = self.segments[0].architecture.block.input_layout();
        check_public(&self.input.values, F::ZERO, "input", input, &self.input.commitment)?;
        match (&self.output.class, &self.output.values) {
            (None, _) => {}
            (Some(c), Some(v)) if *c == argmax(v) => {}
            (Some(_), Some(_)) => return bad("the class is not the largest output".into()),
            (Some(_), None) => return bad("a class is given for a committed output".into()),
        }
        Ok(())
    }

    /// The layer count before segment `j`.
    fn layers_before(&self, j: usize) -> u64 {
        self.segments[..j].iter().map(|s| s.num_layers as u64).sum()
    }

    /// The IVC start state of segment `j` (`j < segments.len()`).
    pub fn z0(&self, j: usize) -> StepState {
        let (model, activations) = match j {
            // A constant, not a statement field: no proof of a suffix passes as the model.
            0 => (model_start(), self.input.commitment),
            _ => (self.links[j - 1].model, self.links[j - 1].activations),
        };
        StepState { layer: self.layers_before(j), model, activations }
    }

    /// The IVC final state segment `j`'s proof must reach.
    pub fn zn(&self, j: usize) -> StepState {
        let (model, activations) = match self.links.get(j) {
            Some(l) => (l.model, l.activations),
            None => (self.model_commitment, self.output.commitment),
        };
        StepState { layer: self.layers_before(j + 1), model, activations }
    }

    /// Digest of the segments' architectures, in order: what `proof.bin` is bound to.
    pub fn architectures_digest(&self) -> [u8; 32] {
        architectures_digest(self.segments.iter().map(|s| &s.architecture))
    }

    /// The distinct architectures, in order of first use (one verifier key each).
    pub fn distinct_architectures(&self) -> Vec<&Architecture> {
        let mut out: Vec<&Architecture> = Vec::new();
        for s in &self.segments {
            if !out.contains(&&s.architecture) {
                out.push(&s.architecture);
            }
        }
        out
    }
}

/// Checks an architecture's sizes against the documented limits without overflowing:
/// layers per block, activations, weights and an upper estimate of the step's constraints.
pub fn check_size(arch: &Architecture) -> Result<(), String> {
    let k = arch.layers_per_step as u128;
    if k == 0 || k > MAX_LAYERS_PER_STEP as u128 {
        return Err(format!("layers_per_step must be in 1..={MAX_LAYERS_PER_STEP}"));
    }
    let stages = &arch.block.stages;
    if stages.is_empty() || stages.len() > MAX_STAGES {
        return Err(format!("a block has 1 to {MAX_STAGES} layers, not {}", stages.len()));
    }
    // Every geometry field is bounded first, so that nothing below can overflow.
    if let Some(v) = arch.block.dimensions().into_iter().find(|&v| u128::from(v) > MAX_DIMENSION) {
        return Err(format!("a dimension of {v} is larger than {MAX_DIMENSION}"));
    }
    // Layers of one kind per step: all of a multi-layer block's, or k one-layer blocks.
    let copies = if stages.len() == 1 { k } else { 1 };
    // A row tile of a tiled convolution reads `(rows·pool stride + pool kernel)·stride +
    // kernel` of its `height` input rows: an upper bound on its share of the layer's work
    // and input (and it holds all the weights). A channel tile computes, and holds the
    // weights of, `channels` of each layer's output channels (and reads the whole input).
    // A grid tile is both: one output row's window, `channels` output channels.
    let rows = match arch.tiling {
        Some(Tiling::Rows(rows)) => Some(rows),
        Some(Tiling::Grid(_) | Tiling::Pair(_)) => Some(1),
        _ => None,
    };
    let share = |v: u128| match (rows, stages[0].shape) {
        (Some(rows), LinearShape::Conv(c)) => {
            let (pk, ps) = stages[0].pool.map_or((1, 1), |p| (p.kernel[0] as u128, p.stride[0] as u128));
            let window = (rows as u128 * ps + pk) * c.stride[0] as u128 + c.kernel[0] as u128;
            (v * window / (c.height as u128).max(1)).min(v)
        }
        _ => v,
    };
    let group_share = |spec: &LayerSpec, v: u128| match (arch.tiling, spec.shape) {
        (Some(Tiling::Channels(g) | Tiling::Grid(g) | Tiling::Pair(g)), LinearShape::Conv(c)) => {
            (v * g as u128 / (c.channels_out as u128).max(1)).min(v)
        }
        (Some(Tiling::Channels(g)), LinearShape::Dense(d)) => (v * g as u128 / (d.outputs as u128).max(1)).min(v),
        _ => v,
    };
    let mut estimate = 10_000u128;
    for spec in stages {
        let (inputs, outputs, weights, per_layer) = layer_size(spec);
        if inputs > MAX_ACTIVATIONS || outputs > MAX_ACTIVATIONS {
            return Err(format!("a layer takes or gives more than {MAX_ACTIVATIONS} activations"));
        }
        if weights > MAX_WEIGHTS {
            return Err(format!("a layer has more than {MAX_WEIGHTS} weights"));
        }
        estimate += group_share(spec, share(per_layer) + weights * 10) * copies;
    }
    estimate += share(arch.block.num_inputs() as u128 * 10);
    if estimate > MAX_STEP_CONSTRAINTS {
        return Err(format!(
            "a step of about {estimate} constraints is larger than the {MAX_STEP_CONSTRAINTS} this verifier derives keys for"
        ));
    }
    Ok(())
}

/// One layer's inputs, outputs, weights and an upper estimate of its constraints, from
/// dimensions already bounded by [`MAX_DIMENSION`] (so in `u128` nothing overflows).
fn layer_size(spec: &LayerSpec) -> (u128, u128, u128, u128) {
    let n = |v: usize| v as u128;
    // Output side of a window sliding over a padded axis (floor mode), as the circuit counts.
    let span = |len: u128, pad: u128, k: u128, s: u128| (len + pad).saturating_sub(k) / s.max(1) + 1;
    // A convolution's output dimensions and weights per output.
    let conv = |c: &ConvShape| {
        let ([kh, kw], [sh, sw], [t, l, b, r]) = (c.kernel.map(n), c.stride.map(n), c.pads.map(n));
        let (oh, ow) = (span(n(c.height), t + b, kh, sh), span(n(c.width), l + r, kw, sw));
        (oh, ow, n(c.channels_in) / n(c.groups).max(1) * kh * kw)
    };
    let (inputs, outputs, weights, macs, pool) = match &spec.shape {
        LinearShape::Conv(c) => {
            let (oh, ow, per_out) = conv(c);
            let outputs = n(c.channels_out) * oh * ow;
            let pool = spec.pool.map_or(0, |p| {
                let ([kh, kw], [sh, sw], [t, l, b, r]) = (p.kernel.map(n), p.stride.map(n), p.pads.map(n));
                let pooled = n(c.channels_out) * span(oh, t + b, kh, sh) * span(ow, l + r, kw, sw);
                pooled * (kh * kw * 9 + 64)
            });
            (n(c.channels_in) * n(c.height) * n(c.width), outputs, n(c.channels_out) * per_out, outputs * per_out, pool)
        }
        LinearShape::Dense(d) => {
            let w = n(d.inputs) * n(d.outputs);
            (n(d.inputs), n(d.outputs), w, w, 0)
        }
    };
    let (weights, macs) = match &spec.projection {
        Some(p) => {
            let (oh, ow, per_out) = conv(p);
            (weights + n(p.channels_out) * per_out, macs + n(p.channels_out) * oh * ow * per_out)
        }
        None => (weights, macs),
    };
    // A product per MAC, at most 64 constraints to requantize an output, 9 per pooled
    // cell and 64 per pooled output, 8 per weight; the commitments.
    (inputs, outputs, weights, macs + outputs * 66 + pool + weights * 9)
}

#[derive(Serialize)]
struct Architectures<'a>(Vec<&'a Architecture>);
impl SimpleDigestible for Architectures<'_> {}

/// Digest of a sequence of architectures (nova-snark's SHA3-based digest), 32 bytes.
pub fn architectures_digest<'a>(archs: impl Iterator<Item = &'a Architecture>) -> [u8; 32] {
    crate::architecture::digest32(&Architectures(archs.collect()))
}

/// The predicted class of some outputs: the first index of the largest value.
pub fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Nova steps needed for `layers` layers at `layers_per_step` per step.
pub fn num_steps(layers: usize, layers_per_step: usize) -> usize {
    layers.div_ceil(layers_per_step.max(1))
}
