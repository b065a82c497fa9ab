//! The public statement: what a proof proves, in a human-readable JSON file.

use crate::error::VerifyError;
use crate::field::hex_serde;
use crate::model::Architecture;
use ff::Field;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::quant::{check_activations, RequantParams};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use nova_snark::digest::{DigestComputer, SimpleDigestible};
use serde::{Deserialize, Serialize};

/// The `format` tag of a statement file.
pub const STATEMENT_FORMAT: &str = "fold-ml statement";
/// Largest number of layers folded in one step.
pub const MAX_LAYERS_PER_STEP: usize = 256;
/// Statement format version (2: networks of segments).
pub const STATEMENT_VERSION: u16 = 2;
/// Largest number of segments in a statement.
pub const MAX_SEGMENTS: usize = 4096;

/// Commitment to the model: the initial value (from the salt) and the final value after
/// absorbing every layer's weights in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCommitment {
    /// `H(TAG_MODEL_IV, salt)`.
    #[serde(with = "hex_serde")]
    pub iv: F,
    /// The running commitment after the last layer.
    #[serde(with = "hex_serde", rename = "final")]
    pub last: F,
}

/// The input side of the statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputStatement {
    /// Commitment to the input activations (blinded unless the input is public).
    #[serde(with = "hex_serde")]
    pub commitment: F,
    /// The input itself, when it is public (then the commitment uses blind 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<u8>>,
}

/// The output side of the statement: a commitment, and the activations themselves when
/// they are public (then the commitment uses blind 0 and must match them). A proof of a
/// prefix of the layers (from a checkpoint) keeps its output committed only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputStatement {
    /// Commitment to the output activations.
    #[serde(with = "hex_serde")]
    pub commitment: F,
    /// The output activations, in the layer's layout, when public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<u8>>,
    /// For a classifier with a public output: the predicted class, the first index of the
    /// largest output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
}

/// One segment of the network: a run of layers of one architecture, proven by one
/// compressed proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct Link {
    /// Running model commitment after the earlier segment.
    #[serde(with = "hex_serde")]
    pub model: F,
    /// Commitment to the activations between the segments.
    #[serde(with = "hex_serde")]
    pub activations: F,
}

/// A public statement: "the network made of these segments, with the model committed as
/// `model_commitment`, maps the input committed as `input.commitment` to `output.values`
/// in `num_layers` layers". Segment `j` runs from the state after segment `j - 1` (the
/// input for the first) to `links[j]` (the output for the last).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_FORMAT`].
    pub format: String,
    /// [`STATEMENT_VERSION`].
    pub version: u16,
    /// Number of layers proven, all segments together.
    pub num_layers: usize,
    /// Model commitment.
    pub model_commitment: ModelCommitment,
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
/// commitment with blind 0.
fn check_public(values: &Option<Vec<u8>>, what: &str, len: usize, commitment: &F) -> Result<(), VerifyError> {
    let Some(v) = values else { return Ok(()) };
    let bad = |m: String| Err(VerifyError::BadStatement(m));
    if v.len() != len {
        return bad(format!("{what} has {} values, the architecture has {len}", v.len()));
    }
    check_activations(v).or_else(|e| bad(format!("{what}: {e}")))?;
    if activation_commitment_native(v, F::ZERO) != *commitment {
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
    /// Builds a statement.
    pub fn new(
        segments: Vec<SegmentStatement>,
        links: Vec<Link>,
        model_commitment: ModelCommitment,
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
        let mut total = 0usize;
        let mut width = self.segments[0].architecture.layer.num_inputs();
        for (j, seg) in self.segments.iter().enumerate() {
            let arch = &seg.architecture;
            if seg.architecture_digest != arch.digest_hex() {
                return bad(format!("segment {j}: architecture_digest does not match the architecture"));
            }
            if seg.num_layers == 0 {
                return bad(format!("segment {j} has no layer"));
            }
            if arch.layers_per_step == 0 || arch.layers_per_step > MAX_LAYERS_PER_STEP {
                return bad(format!("segment {j}: layers_per_step must be in 1..={MAX_LAYERS_PER_STEP}"));
            }
            let spec = &arch.layer;
            spec.check().or_else(|e| bad(format!("segment {j}: {e}")))?;
            // Deserialization does not run the validating constructor: run it here.
            let p = spec.requant;
            RequantParams::new(p.shift(), p.acc_bits())
                .map_err(|e| VerifyError::BadStatement(format!("segment {j}: {e}")))?;
            if (seg.num_layers > 1 || arch.layers_per_step > 1) && spec.num_inputs() != spec.num_outputs() {
                return bad(format!("segment {j}: layers whose input and output sizes differ cannot be stacked"));
            }
            if spec.num_inputs() != width {
                return bad(format!(
                    "segment {j} takes {} activations, the previous segment gives {width}",
                    spec.num_inputs()
                ));
            }
            width = spec.num_outputs();
            total = total.saturating_add(seg.num_layers);
        }
        if total != self.num_layers {
            return bad(format!("num_layers is {}, the segments have {total}", self.num_layers));
        }
        check_public(&self.output.values, "output", width, &self.output.commitment)?;
        let first = self.segments[0].architecture.layer.num_inputs();
        check_public(&self.input.values, "input", first, &self.input.commitment)?;
        match (&self.output.class, &self.output.values) {
            (None, _) => {}
            (Some(c), Some(v)) if *c == crate::network::argmax(v) => {}
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
            0 => (self.model_commitment.iv, self.input.commitment),
            _ => (self.links[j - 1].model, self.links[j - 1].activations),
        };
        StepState { layer: self.layers_before(j), model, activations }
    }

    /// The IVC final state segment `j`'s proof must reach.
    pub fn zn(&self, j: usize) -> StepState {
        let (model, activations) = match self.links.get(j) {
            Some(l) => (l.model, l.activations),
            None => (self.model_commitment.last, self.output.commitment),
        };
        StepState { layer: self.layers_before(j + 1), model, activations }
    }

    /// Digest of the segments' architectures, in order: what `proof.bin` and `vk.bin` are
    /// bound to.
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

#[derive(Serialize)]
struct Architectures<'a>(Vec<&'a Architecture>);
impl SimpleDigestible for Architectures<'_> {}

/// Digest of a sequence of architectures (nova-snark's SHA3-based digest), 32 bytes.
pub fn architectures_digest<'a>(archs: impl Iterator<Item = &'a Architecture>) -> [u8; 32] {
    let f: F = DigestComputer::new(&Architectures(archs.collect())).digest().unwrap_or_default();
    crate::field::to_bytes(&f)
}
