//! Argument groups shared by several commands: the model, the cache, the run policy and
//! the layers per step, each declared once.

use clap::Args;
use fold_ml::error::Error;
use fold_ml::job::manifest::{CheckpointPolicy, LoadedModel, ModelRecord};
use fold_ml::job::DEFAULT_CHECKPOINT_POLICY;
use fold_ml::model::network::Network;
use fold_ml::prove::keys::default_cache_dir;
use std::path::{Path, PathBuf};

/// The parameter cache (`--cache`), resolved to its default once, here.
#[derive(Args, Clone)]
pub struct CacheArg {
    /// Parameter cache directory (default: $FOLD_ML_CACHE or ~/.cache/fold-ml).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

impl CacheArg {
    /// The cache directory.
    pub fn dir(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(default_cache_dir)
    }
}

/// The model: a model file from `fold-ml import`, or the built-in synthetic model (a
/// Zator-shaped CNN body by default).
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A model file written by `fold-ml import` (instead of the synthetic model).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["layers", "channels", "size", "kernel", "seed", "dense"])]
    pub model: Option<PathBuf>,
    /// Number of layers.
    #[arg(long, default_value_t = 512)]
    pub layers: usize,
    /// Channels of every layer.
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// Image side (size × size).
    #[arg(long, default_value_t = 28)]
    pub size: usize,
    /// Kernel side (odd).
    #[arg(long, default_value_t = 3)]
    pub kernel: usize,
    /// Seed of the synthetic weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use the synthetic dense model (an MLP of WIDTH×WIDTH layers) instead of the conv body.
    #[arg(long, value_name = "WIDTH", conflicts_with_all = ["channels", "size", "kernel"])]
    pub dense: Option<usize>,
}

impl ModelArgs {
    /// The model, its descriptor, and the model file it was read from.
    pub fn load(&self) -> Result<(ModelRecord, LoadedModel), Error> {
        if let Some(path) = &self.model {
            let net = Network::read(path)?;
            return Ok((ModelRecord::of_network(&net), LoadedModel::Network(Box::new(net))));
        }
        let descriptor = self.descriptor()?;
        let model = descriptor.load(Path::new("."))?;
        Ok((descriptor, model))
    }

    pub fn descriptor(&self) -> Result<ModelRecord, Error> {
        let bad = |what: &str, reason: &str| Error::bad_input(what, reason);
        if self.layers == 0 {
            return Err(bad("--layers", "must be at least 1"));
        }
        if let Some(width) = self.dense {
            if width == 0 || width > 4096 {
                return Err(bad("--dense", "the width must be in 1..=4096"));
            }
            return Ok(ModelRecord::SyntheticDense { width, layers: self.layers, seed: self.seed });
        }
        if self.channels == 0 || self.channels > 64 {
            return Err(bad("--channels", "must be in 1..=64"));
        }
        if self.size == 0 || self.size > 512 {
            return Err(bad("--size", "must be in 1..=512"));
        }
        if self.kernel.is_multiple_of(2) || self.kernel > 15 {
            return Err(bad("--kernel", "must be odd and at most 15"));
        }
        Ok(ModelRecord::Synthetic {
            channels: self.channels,
            size: self.size,
            kernel: self.kernel,
            layers: self.layers,
            seed: self.seed,
        })
    }
}

#[derive(Args)]
pub struct CheckpointArgs {
    /// Write a checkpoint every N layers (default: every 60 s of folding).
    #[arg(long, value_name = "N", conflicts_with = "checkpoint_seconds")]
    pub checkpoint_every: Option<usize>,
    /// Write a checkpoint every S seconds of folding, inside a tiled layer too (0: after
    /// every fold).
    #[arg(long, value_name = "S")]
    pub checkpoint_seconds: Option<u64>,
}

impl CheckpointArgs {
    /// The checkpoint policy these flags ask for.
    pub fn policy(&self) -> CheckpointPolicy {
        self.given().unwrap_or(DEFAULT_CHECKPOINT_POLICY)
    }

    /// The checkpoint policy these flags ask for, if any is given.
    pub fn given(&self) -> Option<CheckpointPolicy> {
        match (self.checkpoint_every, self.checkpoint_seconds) {
            (Some(n), _) => Some(CheckpointPolicy::Layers(n)),
            (None, Some(s)) => Some(CheckpointPolicy::Seconds(s)),
            (None, None) => None,
        }
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub cache: CacheArg,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    /// Discard the job's checkpoints and start again from the first layer.
    #[arg(long)]
    pub restart: bool,
    /// Start even when the largest step's estimated peak memory exceeds what this machine
    /// has available (by default such a job is refused before any setup).
    #[arg(long)]
    pub ignore_memory_estimate: bool,
}

impl RunArgs {
    /// The memory a job may be estimated to need, MiB: what this machine (or its
    /// container) has available, unless the check is off or the amount unknown.
    pub fn memory_limit_mib(&self) -> Option<u64> {
        fold_ml::mem::available_bytes().filter(|_| !self.ignore_memory_estimate).map(|b| b >> 20)
    }
}

/// The input of a job and how it is published.
#[derive(Args)]
pub struct InputArgs {
    /// Input. For a model file: a JSON array of the real input values (in the ONNX model's
    /// layout), quantized with the model's input scale. For the synthetic model: a JSON
    /// array of integers in [0, 127], a size×size image or the whole channels×size×size
    /// tensor (default: a built-in image of a "7").
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Put the input itself in the statement (default: only a hiding commitment to it).
    #[arg(long, conflicts_with = "input_commitment")]
    pub public_input: bool,
    /// Prove under the input owner's commitment (a file from `fold-ml commit-input`): the
    /// input must open it, and the statement's input commitment is the owner's.
    #[arg(long, value_name = "FILE")]
    pub input_commitment: Option<PathBuf>,
}

#[derive(Args)]
pub struct StepArgs {
    /// Layers folded per Nova step (default: chosen from the layer's size so that Nova's
    /// own per-fold cost is amortized; see `fold-ml inspect`).
    #[arg(long, value_name = "K")]
    pub layers_per_step: Option<usize>,
    /// The most step-circuit constraints per fold: a larger layer is proven in tiles of
    /// output rows, one tile per fold (so is a layer of 131072 or more when tiles are
    /// estimated faster) (default: 262144; see `fold-ml inspect`).
    #[arg(long, value_name = "CONSTRAINTS", value_parser = clap::value_parser!(u64).range(10_000..=(1 << 23)))]
    pub fold_budget: Option<u64>,
}
