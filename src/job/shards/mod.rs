//! Sharded jobs: one network's layers cut into shards that different machines prove at the
//! same time (a Slurm job array, a Kubernetes Indexed Job), linked afterwards into one
//! statement.
//!
//! Nova folding is sequential, but a shard only needs the state it starts from, and that
//! state is cheap to compute natively: [`plan::plan`] runs the model once without proving,
//! cuts it (at every segment boundary, and inside long runs of one architecture at step
//! boundaries, balancing the estimated work), and fixes every cut's public state (layer
//! count, running model commitment, activation commitment) and secret opening
//! (activations, blind) before any proving. Each shard is then an ordinary
//! [`crate::prove::segment::SegmentTask`] from a fixed start to a fixed end: proven by
//! [`prove::prove_shard`] with its own checkpoints, lock and event log under
//! `shards/<i>/`, its compressed proof kept in `segments/seg-<i>.bin`. [`assemble::assemble`]
//! checks every shard against the plan and writes the statement, whose segments are the
//! shards (so the statement records the cuts) and whose links are the cut states.
//!
//! Soundness is the multi-segment statement's ([`fold_ml_circuits::state`]): the verifier
//! checks every shard's proof from the state the previous one ends in, starting from the
//! public model start. A missing, repeated, reordered or foreign shard cannot chain. What
//! a shard reveals publicly is what a segment link always did: a salted running model
//! commitment and a blinded activation commitment per cut.
//!
//! Trust between shards: a worker never uses another worker's files. Its start comes from
//! the plan's secrets, checked against the plan's public cut state (so a damaged or foreign
//! secrets file is named, not proven from); its checkpoints carry the plan's digest and are
//! verified before resuming; assemble decodes every shard result, checks its digest, index
//! and end state against the plan, and verifies every proof before writing anything.
//!
//! Layout (a job directory on shared storage): `shards.json` (the plan: job identity and
//! cuts; not secret), `shard-secrets.bin` and `secret.json` (owner-only: the input, every
//! cut's activations and blinds), `model.foldml` (an imported model, owner-only),
//! `shards/<i>/{checkpoints/, events.jsonl, lock}`, `segments/seg-<i>.bin`, and once
//! assembled `statement.json` and `proof.bin`.

pub mod assemble;
pub mod plan;
pub mod prove;

use super::checkpoint::SegmentDone;
use super::manifest::{CheckpointPolicy, JobIdentity};
use crate::artifact::{self, hex, Kind};
use crate::error::Error;
use crate::model::LayerSource;
use crate::statement::Link;
use fold_ml_circuits::layer::{BlockSpec, LayerWeights};
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::{read_file, write_atomic};
use nova_snark::digest::SimpleDigestible;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The plan file of a sharded job.
pub const PLAN_FILE: &str = "shards.json";
/// The owner-only file of every cut's opening.
pub const SECRETS_FILE: &str = "shard-secrets.bin";
/// `format` of a plan.
pub const PLAN_FORMAT: &str = "fold-ml shard plan";
/// Plan format version.
pub const PLAN_VERSION: u16 = 1;
/// Most shards a plan may have (a statement's segment limit).
pub const MAX_SHARDS: usize = crate::statement::MAX_SEGMENTS;
/// Environment variables a worker reads its shard index from, in order: Slurm's job
/// array, then Kubernetes' Indexed Job.
pub const INDEX_ENV: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// One shard: consecutive layers of one model segment, from one public cut state to the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// The model segment it belongs to.
    pub segment: usize,
    /// Its first layer, counted inside the segment.
    pub first: usize,
    /// Its layers.
    pub layers: usize,
    /// Layers of the model before it.
    pub offset: usize,
    /// The public state it starts from (the model start and the input for shard 0).
    pub start: Link,
    /// The public state it must end in.
    pub end: Link,
}

/// What the plan commits to: the job and its cuts.
#[derive(Serialize)]
struct Cuts<'a> {
    job: &'a JobIdentity,
    shards: &'a [Shard],
}
impl SimpleDigestible for Cuts<'_> {}

/// `shards.json`: the job and its shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardPlan {
    /// [`PLAN_FORMAT`].
    pub format: String,
    /// [`PLAN_VERSION`].
    pub version: u16,
    /// The tool that wrote it (informative).
    pub tool: String,
    /// What the job proves (its parameters digest is empty: each worker sets up or loads
    /// its shard's keys, and a checkpoint folded under other parameters fails verification).
    pub job: JobIdentity,
    /// Checkpoint policy of every shard.
    pub checkpoint_every: CheckpointPolicy,
    /// The shards, input to output.
    pub shards: Vec<Shard>,
    /// Digest of the job and the shards: what checkpoints, secrets and shard results are
    /// bound to.
    pub plan_digest: String,
}

impl ShardPlan {
    /// A plan of `shards` for `job`.
    pub fn new(job: JobIdentity, checkpoint_every: CheckpointPolicy, shards: Vec<Shard>) -> Self {
        let plan_digest = hex(&digest_of(&job, &shards));
        Self {
            format: PLAN_FORMAT.into(),
            version: PLAN_VERSION,
            tool: format!("fold-ml {}", env!("CARGO_PKG_VERSION")),
            job,
            checkpoint_every,
            shards,
            plan_digest,
        }
    }

    /// The digest checkpoints and shard results carry.
    pub fn digest(&self) -> [u8; 32] {
        digest_of(&self.job, &self.shards)
    }

    /// The architecture shard `i` is proven under.
    pub fn arch(&self, i: usize) -> &crate::model::Architecture {
        &self.job.architectures[self.shards[i].segment]
    }

    /// Checks the tags, the digest, and that the shards tile the model's layers in order.
    pub fn check(&self) -> Result<(), String> {
        if self.format != PLAN_FORMAT {
            return Err(format!("format is {:?}, expected {PLAN_FORMAT:?}", self.format));
        }
        if self.version != PLAN_VERSION {
            return Err(format!("version {} is not the supported {PLAN_VERSION}", self.version));
        }
        if self.plan_digest != hex(&self.digest()) {
            return Err("plan_digest does not match the plan".into());
        }
        if self.shards.is_empty() || self.shards.len() > MAX_SHARDS {
            return Err(format!("a plan has 1 to {MAX_SHARDS} shards"));
        }
        let mut offset = 0;
        for (i, s) in self.shards.iter().enumerate() {
            if s.segment >= self.job.architectures.len() || s.layers == 0 || s.offset != offset {
                return Err(format!("shard {i} does not follow the one before it"));
            }
            offset += s.layers;
        }
        if offset != self.job.num_layers {
            return Err(format!("the shards cover {offset} layers, the model has {}", self.job.num_layers));
        }
        Ok(())
    }
}

fn digest_of(job: &JobIdentity, shards: &[Shard]) -> [u8; 32] {
    fold_ml_verify::architecture::digest32(&Cuts { job, shards })
}

/// The openings of the cuts: secret (they open every cut's activation commitment).
#[derive(Clone, Serialize, Deserialize)]
pub struct ShardSecrets {
    /// The activations each shard starts from.
    pub starts: Vec<Vec<u8>>,
    /// The blind of each cut's activation commitment: shard `i` starts under `blinds[i]`
    /// and ends under `blinds[i + 1]` (so there is one more than the shards).
    pub blinds: Vec<F>,
}

/// The IVC state at a cut of `layer` layers.
pub fn state_at(layer: usize, link: &Link) -> fold_ml_circuits::state::StepState {
    fold_ml_circuits::state::StepState { layer: layer as u64, model: link.model, activations: link.activations }
}

/// The result of shard `i` (`segments/seg-<i>.bin`) checked against the plan: its digest,
/// index and end state. `Ok(None)` when it is not there.
pub fn read_result(dir: &Path, plan: &ShardPlan, i: usize) -> Result<Option<SegmentDone>, Error> {
    let done = super::checkpoint::read_segment(dir, plan.arch(i), &plan.digest(), i)?;
    let s = &plan.shards[i];
    match done {
        Some(d) if d.end != state_at(s.offset + s.layers, &s.end).to_vec() => Err(super::checkpoint::corrupted(
            &super::checkpoint::segment_path(dir, i),
            "ends in another state than the plan's".into(),
        )),
        other => Ok(other),
    }
}

/// Reads and checks the plan of the sharded job in `dir`.
pub fn read_plan(dir: &Path) -> Result<ShardPlan, Error> {
    let path = dir.join(PLAN_FILE);
    let what = path.display().to_string();
    let plan: ShardPlan =
        serde_json::from_slice(&read_file(&path)?).map_err(|e| Error::bad_input(&what, e.to_string()))?;
    plan.check().map_err(|reason| Error::bad_input(what, reason))?;
    Ok(plan)
}

/// Reads the cut openings of `plan` (bound to its digest).
pub fn read_secrets(dir: &Path, plan: &ShardPlan) -> Result<ShardSecrets, Error> {
    let path = dir.join(SECRETS_FILE);
    let s: ShardSecrets = artifact::decode(Kind::Checkpoint, &plan.digest(), &read_file(&path)?)
        .map_err(|reason| Error::artifact(path.clone(), reason))?;
    if s.starts.len() != plan.shards.len() || s.blinds.len() != plan.shards.len() + 1 {
        return Err(super::checkpoint::corrupted(&path, "holds another number of shards than the plan".into()));
    }
    Ok(s)
}

fn write_secrets(dir: &Path, plan: &ShardPlan, secrets: &ShardSecrets) -> Result<(), Error> {
    let path = dir.join(SECRETS_FILE);
    let bytes = artifact::encode(Kind::Checkpoint, &plan.digest(), secrets)
        .map_err(|reason| Error::artifact(path.clone(), reason))?;
    Ok(write_atomic(&path, &bytes, true)?)
}

/// The working directory of shard `i`: its checkpoints, event log and lock.
pub fn shard_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join("shards").join(i.to_string())
}

/// The shard index of this worker: `explicit`, else the first of [`INDEX_ENV`] set.
pub fn worker_index(explicit: Option<usize>) -> Result<usize, Error> {
    if let Some(i) = explicit {
        return Ok(i);
    }
    for var in INDEX_ENV {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map_err(|_| Error::bad_input(var, format!("{v:?} is not a shard index")));
        }
    }
    Err(Error::bad_input("--shard", format!("give the shard index, or set {} or {}", INDEX_ENV[0], INDEX_ENV[1])))
}

/// Layers `first..first + len` of a segment, streamed as a segment of their own.
pub struct LayerRange<'a> {
    /// The whole segment.
    pub inner: &'a dyn LayerSource,
    /// Its first layer in the range.
    pub first: usize,
    /// Layers in the range.
    pub len: usize,
}

impl LayerSource for LayerRange<'_> {
    fn spec(&self) -> BlockSpec {
        self.inner.spec()
    }
    fn num_layers(&self) -> usize {
        self.len
    }
    fn layer(&self, i: usize) -> LayerWeights {
        self.inner.layer(self.first + i)
    }
}
