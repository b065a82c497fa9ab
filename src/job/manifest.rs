//! The job manifest (`manifest.json`): what the job proves, recorded before the first fold,
//! so that a resumed run can refuse to continue with anything else.

use super::error::JobSetting;
use crate::artifact::hex;
use crate::error::Error;
use crate::field::hex_serde;
use crate::model::network::Network;
use crate::model::Architecture;
use crate::model::ModelSource;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::digest::SimpleDigestible;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `format` of a manifest.
pub const MANIFEST_FORMAT: &str = "fold-ml job manifest";
/// Manifest format version.
pub const MANIFEST_VERSION: u16 = 3;

/// How the model is obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelRecord {
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
    /// The built-in synthetic dense body (an MLP of square layers).
    SyntheticDense {
        /// Width of every layer.
        width: usize,
        /// Depth.
        layers: usize,
        /// Weight seed.
        seed: u64,
    },
    /// A model file (`fold-ml import`), copied into the job directory as `model.foldml`.
    File {
        /// The model's name.
        name: String,
        /// Checksum of the model file's content.
        digest: String,
    },
}

/// A model ready to prove.
pub enum LoadedModel {
    /// A built-in synthetic model.
    Synthetic(Box<SyntheticModel>),
    /// An imported network.
    Network(Box<Network>),
}

impl LoadedModel {
    /// The model as the prover streams it.
    pub fn source(&self) -> &dyn ModelSource {
        match self {
            Self::Synthetic(m) => m.as_ref(),
            Self::Network(n) => n.as_ref(),
        }
    }
}

/// The model file inside a job directory.
pub fn model_file(job: &Path) -> PathBuf {
    job.join("model.foldml")
}

impl ModelRecord {
    /// The descriptor of a model file.
    pub fn of_network(net: &Network) -> Self {
        Self::File { name: net.name.clone(), digest: hex(&net.digest()) }
    }

    /// The model it describes; a model file is read from the job directory `job`.
    pub fn load(&self, job: &Path) -> Result<LoadedModel, Error> {
        Ok(match self {
            &Self::Synthetic { channels, size, kernel, layers, seed } => {
                LoadedModel::Synthetic(Box::new(SyntheticModel::conv(channels, size, kernel, layers, seed)?))
            }
            &Self::SyntheticDense { width, layers, seed } => {
                LoadedModel::Synthetic(Box::new(SyntheticModel::dense(width, layers, seed)?))
            }
            Self::File { digest, .. } => {
                let path = model_file(job);
                let net = Network::read(&path)?;
                if hex(&net.digest()) != *digest {
                    return Err(Error::bad_input(
                        path.display().to_string(),
                        "is not the model this job was started with",
                    ));
                }
                LoadedModel::Network(Box::new(net))
            }
        })
    }

    /// The settings that define the model, with their values.
    pub fn settings(&self) -> Vec<(JobSetting, String)> {
        use JobSetting::*;
        match *self {
            Self::File { ref name, ref digest } => vec![(ModelFile, format!("{name} ({digest})"))],
            Self::Synthetic { channels, size, kernel, layers, seed } => vec![
                (Layers, layers.to_string()),
                (ModelKind, "conv".into()),
                (Channels, channels.to_string()),
                (Size, size.to_string()),
                (Kernel, kernel.to_string()),
                (Seed, seed.to_string()),
            ],
            Self::SyntheticDense { width, layers, seed } => {
                vec![(Layers, layers.to_string()), (ModelKind, format!("dense {width}")), (Seed, seed.to_string())]
            }
        }
    }

    /// A short name, for default job directories.
    pub fn name(&self) -> String {
        match *self {
            Self::File { ref name, ref digest } => format!("{name}-{}", &digest[2..14]),
            Self::Synthetic { channels, size, kernel, layers, seed } => {
                format!("conv{channels}x{size}-k{kernel}-L{layers}-seed{seed}")
            }
            Self::SyntheticDense { width, layers, seed } => format!("dense{width}-L{layers}-seed{seed}"),
        }
    }
}

/// When to write checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointPolicy {
    /// When this many layers of the model have been folded since the last checkpoint (the
    /// fold that reaches them writes it; with K layers per step, a multiple of K).
    /// Manifests before this name said `folds` for the same count.
    #[serde(alias = "folds")]
    Layers(usize),
    /// When this many seconds of folding have passed since the last checkpoint.
    Seconds(u64),
}

impl CheckpointPolicy {
    /// Whether a checkpoint is due after `folded` layers (or blocks) and `since` of
    /// folding since the last one.
    pub fn due(self, folded: usize, since: std::time::Instant) -> bool {
        match self {
            CheckpointPolicy::Layers(k) => folded >= k.max(1),
            CheckpointPolicy::Seconds(s) => since.elapsed().as_secs() >= s,
        }
    }
}

/// What identifies a job: every field that changes the proof. Checkpoints are bound to its
/// digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdentity {
    /// The model.
    pub model: ModelRecord,
    /// The architecture of each segment.
    pub architectures: Vec<Architecture>,
    /// Layers to prove.
    pub num_layers: usize,
    /// Commitment to the input (under the job's secret blind).
    #[serde(with = "hex_serde")]
    pub input_commitment: F,
    /// Whether the input is published in the statement.
    pub public_input: bool,
    /// Digest of Nova's public parameters, of every segment (named `params_digest` in the
    /// manifest, as manifests of version 2 always were).
    #[serde(rename = "params_digest")]
    pub pp_digest: String,
}

impl SimpleDigestible for JobIdentity {}

impl JobIdentity {
    /// The digest checkpoints are bound to.
    pub fn digest(&self) -> [u8; 32] {
        fold_ml_verify::architecture::digest32(self)
    }

    /// The first setting that differs from `other`, with both values (the job's, then
    /// `other`'s; empty for the secret input).
    pub fn difference(&self, other: &Self) -> Option<(JobSetting, String, String)> {
        let (mine, theirs) = (self.model.settings(), other.model.settings());
        for ((setting, a), (_, b)) in mine.iter().zip(&theirs) {
            if a != b {
                return Some((*setting, a.clone(), b.clone()));
            }
        }
        let steps = |a: &[Architecture]| a.iter().map(|a| a.layers_per_step.to_string()).collect::<Vec<_>>().join(",");
        let (k1, k2) = (steps(&self.architectures), steps(&other.architectures));
        if k1 != k2 {
            return Some((JobSetting::LayersPerStep, k1, k2));
        }
        if self.architectures != other.architectures {
            let digest = |a: &[Architecture]| hex(&crate::statement::architectures_digest(a.iter()));
            return Some((JobSetting::Architecture, digest(&self.architectures), digest(&other.architectures)));
        }
        if self.public_input != other.public_input {
            return Some((JobSetting::PublicInput, self.public_input.to_string(), other.public_input.to_string()));
        }
        if self.input_commitment != other.input_commitment {
            return Some((JobSetting::Input, String::new(), String::new()));
        }
        if self.pp_digest != other.pp_digest {
            return Some((JobSetting::Parameters, self.pp_digest.clone(), other.pp_digest.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_policies_count_layers_and_read_old_manifests() {
        let p: CheckpointPolicy = serde_json::from_str(r#"{"layers":3}"#).unwrap();
        assert_eq!(p, CheckpointPolicy::Layers(3));
        let old: CheckpointPolicy = serde_json::from_str(r#"{"folds":3}"#).unwrap();
        assert_eq!(old, p, "a manifest written before the rename means the same count");
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"layers":3}"#);
    }
}
