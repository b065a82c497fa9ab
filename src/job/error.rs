//! Why a job refuses to run: typed, so that each front end names the setting the user must
//! change in its own words (the CLI maps [`JobSetting`] to its flags).

use std::path::PathBuf;
use thiserror::Error;

/// A setting of a job request that the job directory records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobSetting {
    /// The model file.
    ModelFile,
    /// The depth of a synthetic model.
    Layers,
    /// Which synthetic model (conv, or dense of some width).
    ModelKind,
    /// Channels of the synthetic conv model.
    Channels,
    /// Image side of the synthetic conv model.
    Size,
    /// Kernel side of the synthetic conv model.
    Kernel,
    /// Weight seed of a synthetic model.
    Seed,
    /// Layers folded per step, per segment.
    LayersPerStep,
    /// The architecture as a whole (a change not covered by the settings above).
    Architecture,
    /// Whether the input is public.
    PublicInput,
    /// The secret input.
    Input,
    /// The committed input (its blind).
    InputCommitment,
    /// Nova's public parameters (another build of fold-ml).
    Parameters,
}

impl JobSetting {
    /// The setting in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ModelFile => "the model file",
            Self::Layers => "the number of layers",
            Self::ModelKind => "the model kind",
            Self::Channels => "the number of channels",
            Self::Size => "the image size",
            Self::Kernel => "the kernel size",
            Self::Seed => "the model seed",
            Self::LayersPerStep => "the layers per step",
            Self::Architecture => "the architecture",
            Self::PublicInput => "whether the input is public",
            Self::Input => "the input",
            Self::InputCommitment => "the input commitment",
            Self::Parameters => "the public parameters (another fold-ml build?)",
        }
    }
}

/// A request that the job directory cannot serve.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The request differs from the job the directory holds.
    #[error("{}: {} a job for another request: {} differs{}", dir.display(), if *finished { "holds a finished" } else { "cannot resume" }, setting.describe(), values(job, now))]
    Differs {
        /// The job directory.
        dir: PathBuf,
        /// Whether the job there is finished (else it is resumable).
        finished: bool,
        /// The first setting that differs.
        setting: JobSetting,
        /// Its value in the job (empty when secret).
        job: String,
        /// Its value in the request (empty when secret).
        now: String,
    },
    /// Every checkpoint of the job is damaged: only a restart can go on.
    #[error("{}: all {count} checkpoints are damaged; restart the job from the first layer", dir.display())]
    AllCheckpointsDamaged {
        /// The job directory.
        dir: PathBuf,
        /// How many there are.
        count: usize,
    },
    /// Layers per step outside the supported range.
    #[error("layers per step must be in 1..={max}")]
    LayersPerStep {
        /// The largest supported.
        max: usize,
    },
    /// A segment's steps are estimated to need more memory than the machine has left.
    #[error(
        "segment {segment} folds steps of {constraints} constraints: estimated peak memory {estimated_mib} MiB, \
         more than the {available_mib} MiB available; lower --fold-budget if its layers can be tiled smaller (see \
         `fold-ml inspect`), prove on a larger machine, or pass --ignore-memory-estimate to try anyway"
    )]
    Memory {
        /// The first segment over the limit.
        segment: usize,
        /// Primary constraints of one of its folds.
        constraints: usize,
        /// Estimated peak resident memory, MiB.
        estimated_mib: u64,
        /// What the machine has available, MiB.
        available_mib: u64,
    },
    /// A GPT segment's steps are estimated to need more memory than the machine has left.
    #[error(
        "the GPT's {segment} fold steps of {constraints} constraints: estimated peak memory {estimated_mib} MiB, \
         more than the {available_mib} MiB available; prove on a larger machine, or pass \
         --ignore-memory-estimate to try anyway"
    )]
    GptMemory {
        /// The segment's name.
        segment: &'static str,
        /// Primary constraints of one of its steps.
        constraints: usize,
        /// Estimated peak resident memory, MiB.
        estimated_mib: u64,
        /// What the machine has available, MiB.
        available_mib: u64,
    },
    /// A public input was given with a commitment blind.
    #[error("a public input is committed without a blind: it cannot also have an input commitment")]
    PublicInputWithBlind,
    /// The directory holds a proof that no job of this tool made.
    #[error("{}: already holds a proof that is not a job of this tool", dir.display())]
    ForeignProof {
        /// The directory.
        dir: PathBuf,
    },
    /// No checkpoint at the requested depth.
    #[error("{}: the job has no checkpoint at {layers} layers", dir.display())]
    NoCheckpointAt {
        /// The job directory.
        dir: PathBuf,
        /// The depth asked for.
        layers: usize,
    },
    /// A sharded job has shards that are missing, failed, damaged or foreign.
    #[error("{}: cannot assemble: {}", dir.display(), problems.join("; "))]
    ShardsNotReady {
        /// The job directory.
        dir: PathBuf,
        /// Each shard that is not ready, named, with why.
        problems: Vec<String>,
    },
}

fn values(job: &str, now: &str) -> String {
    if job.is_empty() && now.is_empty() {
        String::new()
    } else {
        format!(" (job: {job}, now: {now})")
    }
}
