//! The job manifest (`manifest.json`): what the job proves, recorded before the first fold,
//! so that a resumed run can refuse to continue with anything else.

use crate::artifact::hex;
use crate::error::Error;
use crate::field::hex_serde;
use crate::model::Architecture;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::digest::{DigestComputer, SimpleDigestible};
use serde::{Deserialize, Serialize};

/// `format` of a manifest.
pub const MANIFEST_FORMAT: &str = "fold-ml job manifest";
/// Manifest format version.
pub const MANIFEST_VERSION: u16 = 1;

/// How the model is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelDescriptor {
    /// The built-in synthetic conv body.
    Synthetic {
        /// Channels.
        channels: usize,
        /// Image side.
        size: usize,
        /// Kernel side.
        kernel: usize,
        /// Depth.
        layers: usize,
        /// Weight seed.
        seed: u64,
    },
}

impl ModelDescriptor {
    /// The model it describes.
    pub fn model(&self) -> Result<SyntheticModel, Error> {
        let Self::Synthetic { channels, size, kernel, layers, seed } = *self;
        Ok(SyntheticModel::conv(channels, size, kernel, layers, seed)?)
    }
}

/// When to write checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointPolicy {
    /// After every `n` folds.
    Folds(usize),
    /// When this many seconds of folding have passed since the last checkpoint.
    Seconds(u64),
}

/// What identifies a job: every field that changes the proof. Checkpoints are bound to its
/// digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdentity {
    /// The model.
    pub model: ModelDescriptor,
    /// Its architecture.
    pub architecture: Architecture,
    /// Layers to prove.
    pub num_layers: usize,
    /// Commitment to the input (under the job's secret blind).
    #[serde(with = "hex_serde")]
    pub input_commitment: F,
    /// Whether the input is published in the statement.
    pub public_input: bool,
    /// Digest of the Nova public parameters.
    pub params_digest: String,
}

impl SimpleDigestible for JobIdentity {}

impl JobIdentity {
    /// The digest checkpoints are bound to.
    pub fn digest(&self) -> [u8; 32] {
        let f: F = DigestComputer::new(self).digest().unwrap_or_default();
        crate::field::to_bytes(&f)
    }

    /// The first field that differs from `other`, named as the user knows it, with both values.
    pub fn difference(&self, other: &Self) -> Option<String> {
        let d = |what: &str, a: String, b: String| Some(format!("{what} differs (job: {a}, now: {b})"));
        let (
            ModelDescriptor::Synthetic { channels: c1, size: s1, kernel: k1, seed: x1, .. },
            ModelDescriptor::Synthetic { channels: c2, size: s2, kernel: k2, seed: x2, .. },
        ) = (self.model, other.model);
        if self.num_layers != other.num_layers {
            return d("--layers", self.num_layers.to_string(), other.num_layers.to_string());
        }
        for (flag, a, b) in [("--channels", c1, c2), ("--size", s1, s2), ("--kernel", k1, k2)] {
            if a != b {
                return d(flag, a.to_string(), b.to_string());
            }
        }
        if x1 != x2 {
            return d("--seed (the model)", x1.to_string(), x2.to_string());
        }
        if self.architecture != other.architecture {
            return d("the architecture", self.architecture.digest_hex(), other.architecture.digest_hex());
        }
        if self.public_input != other.public_input {
            return d("--public-input", self.public_input.to_string(), other.public_input.to_string());
        }
        if self.input_commitment != other.input_commitment {
            return Some("--input differs from the job's input".into());
        }
        if self.params_digest != other.params_digest {
            return d(
                "the public parameters (another fold-ml build?)",
                self.params_digest.clone(),
                other.params_digest.clone(),
            );
        }
        None
    }
}

/// The manifest file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u16,
    /// The tool that started the job (informative).
    pub tool: String,
    /// What the job proves.
    pub job: JobIdentity,
    /// Digest of `job`, which checkpoints carry.
    pub job_digest: String,
    /// Checkpoint policy.
    pub checkpoint_every: CheckpointPolicy,
}

impl Manifest {
    /// A new manifest.
    pub fn new(job: JobIdentity, checkpoint_every: CheckpointPolicy) -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            tool: format!("fold-ml {}", env!("CARGO_PKG_VERSION")),
            job_digest: hex(&job.digest()),
            job,
            checkpoint_every,
        }
    }

    /// Checks the format tags and the digest.
    pub fn check(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!("format is {:?}, expected {MANIFEST_FORMAT:?}", self.format));
        }
        if self.version > MANIFEST_VERSION {
            return Err(format!("version {} is newer than the supported {MANIFEST_VERSION}", self.version));
        }
        if self.job_digest != hex(&self.job.digest()) {
            return Err("job_digest does not match the job".into());
        }
        Ok(())
    }
}
