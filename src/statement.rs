//! The public statement: what a proof proves, in a human-readable JSON file.

use crate::error::VerifyError;
use crate::field::hex_serde;
use crate::model::Architecture;
use ff::Field;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::quant::check_activations;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use serde::{Deserialize, Serialize};

/// The `format` tag of a statement file.
pub const STATEMENT_FORMAT: &str = "fold-ml statement";
/// Largest number of layers folded in one step.
pub const MAX_LAYERS_PER_STEP: usize = 256;
/// Statement format version.
pub const STATEMENT_VERSION: u16 = 1;

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
}

/// A public statement: "this architecture, with the model committed as `model_commitment`,
/// maps the input committed as `input.commitment` to `output.values` in `num_layers` layers".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_FORMAT`].
    pub format: String,
    /// [`STATEMENT_VERSION`].
    pub version: u16,
    /// The public architecture.
    pub architecture: Architecture,
    /// Its digest (checked against `architecture`).
    pub architecture_digest: String,
    /// Number of layers proven.
    pub num_layers: usize,
    /// Model commitment.
    pub model_commitment: ModelCommitment,
    /// Input.
    pub input: InputStatement,
    /// Output.
    pub output: OutputStatement,
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

impl Statement {
    /// Builds a statement.
    pub fn new(
        architecture: Architecture,
        num_layers: usize,
        model_commitment: ModelCommitment,
        input: InputStatement,
        output: OutputStatement,
    ) -> Self {
        Self {
            format: STATEMENT_FORMAT.into(),
            version: STATEMENT_VERSION,
            architecture_digest: architecture.digest_hex(),
            architecture,
            num_layers,
            model_commitment,
            input,
            output,
        }
    }

    /// Checks everything that can be checked without the proof.
    pub fn check(&self) -> Result<(), VerifyError> {
        let bad = |m: String| Err(VerifyError::BadStatement(m));
        if self.format != STATEMENT_FORMAT {
            return bad(format!("format is {:?}, expected {STATEMENT_FORMAT:?}", self.format));
        }
        if self.version != STATEMENT_VERSION {
            return bad(format!("version {} is not the supported {STATEMENT_VERSION}", self.version));
        }
        if self.architecture_digest != self.architecture.digest_hex() {
            return bad("architecture_digest does not match the architecture".into());
        }
        if self.num_layers == 0 {
            return bad("num_layers is 0".into());
        }
        if self.architecture.layers_per_step == 0 || self.architecture.layers_per_step > MAX_LAYERS_PER_STEP {
            return bad(format!("layers_per_step must be in 1..={MAX_LAYERS_PER_STEP}"));
        }
        let shape = &self.architecture.layer.shape;
        if shape.num_inputs() != shape.num_outputs() {
            return bad("layers whose input and output sizes differ cannot be stacked".into());
        }
        check_public(&self.output.values, "output", shape.num_outputs(), &self.output.commitment)?;
        check_public(&self.input.values, "input", shape.num_inputs(), &self.input.commitment)?;
        Ok(())
    }

    /// The IVC start state `z0`.
    pub fn z0(&self) -> StepState {
        StepState { layer: 0, model: self.model_commitment.iv, activations: self.input.commitment }
    }

    /// The IVC final state the proof must reach.
    pub fn zn(&self) -> StepState {
        StepState {
            layer: self.num_layers as u64,
            model: self.model_commitment.last,
            activations: self.output.commitment,
        }
    }
}
