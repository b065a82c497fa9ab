//! Proving jobs: a job directory is the unit of work. It records a manifest before the
//! first fold, writes crash-safe checkpoints of the folded proof, appends an event log,
//! and resumes from its newest valid checkpoint when run again (here or on another
//! machine: nothing in it is an absolute path, and parameters are found by digest).
//!
//! A model of several segments is folded one segment at a time; each finished segment is
//! compressed at once and kept in `segments/seg-<j>.bin` (owner-only: it also holds the
//! activations the next segment starts from), so a resumed job never redoes one.
//!
//! Layout: `manifest.json`, `secret.json` (owner-only), `model.foldml` (an imported model,
//! owner-only), `checkpoints/ckpt-<K>.bin` (owner-only; `K` counts the model's layers),
//! `segments/`, `events.jsonl`, `lock`, and at the end `proof.bin` and `statement.json`.

pub mod checkpoint;
pub mod error;
pub mod eta;
pub mod events;
pub mod gpt;
pub mod lock;
pub mod manifest;
pub mod prefix;
pub mod results;
pub mod secret;
pub mod shards;
pub mod sink;
pub mod status;

pub use prefix::{compress_checkpoint, load_checkpoint, LoadedCheckpoint};

use crate::artifact::hex;
use crate::error::Error;
use crate::model::network::{argmax, Network};
use crate::model::{Architecture, ModelSource};
use crate::nova::{CompressedSnark, ProverKey, PublicParams, VerifierKey};
use crate::prove::keys::{self, ProverKeys};
use crate::prove::segment::{SegmentStart, SegmentTask};
use crate::prove::{bad, check_model_and_input, check_segment, seal, Event, Progress, Proven, Timings};
use crate::statement::{InputStatement, Link, OutputStatement, SegmentStatement, Statement};
use checkpoint::{Checkpoint, SegmentDone};
pub use error::{JobError, JobSetting};
use events::{EventLog, JobEvent};
use ff::Field;
use fold_ml_circuits::commit::{activation_commitment_native, Layout};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::{read_file, write_atomic};
use manifest::{CheckpointPolicy, JobIdentity, LoadedModel, Manifest, ModelRecord};
use rand_core::OsRng;
use secret::JobSecret;
use sink::JobCheckpoints;
use std::path::{Path, PathBuf};

/// Default checkpoint policy: at most about a minute of folding is ever lost.
pub const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = CheckpointPolicy::Seconds(60);

/// Primary constraints of the segments' keys a job keeps in memory besides the segment it
/// folds (about 0.6 KB each, so ~160 MB: the small segments of the digits CNNs are kept, a
/// ResNet's large ones are reloaded from the cache in turn, so they never add to the peak
/// of the segment being proven).
pub const HELD_KEYS_CONSTRAINTS: usize = 1 << 18;

/// What to prove, and how.
#[derive(Clone, Debug)]
pub struct JobRequest {
    /// The model.
    pub model: ModelRecord,
    /// For a model file: where to copy it from when the job starts.
    pub model_file: Option<PathBuf>,
    /// Input activations; `None` reuses the job's own (resume).
    pub input: Option<Vec<u8>>,
    /// Publish the input in the statement.
    pub public_input: bool,
    /// The blind of the input commitment, when the input's owner chose it
    /// (`fold-ml commit-input`); `None` draws a fresh one.
    pub input_blind: Option<F>,
    /// Parameter cache.
    pub cache_dir: PathBuf,
    /// Checkpoint policy.
    pub checkpoint_every: CheckpointPolicy,
    /// Discard every checkpoint and finished segment and start from the first layer.
    pub restart: bool,
    /// Layers folded per Nova step in segments that can stack them (`None`: chosen from
    /// each segment's size, or the job's own choice when resuming).
    pub layers_per_step: Option<usize>,
    /// Step-circuit constraints above which a layer is tiled (`None`: the default, or the
    /// job's own choice when resuming).
    pub fold_budget: Option<usize>,
    /// Primary constraints of other segments' keys kept in memory besides the folding
    /// segment's (`None`: [`HELD_KEYS_CONSTRAINTS`]); the rest are reloaded in turn.
    pub keys_in_memory: Option<usize>,
    /// Refuse, before any setup, a job whose estimated peak memory exceeds this many MiB
    /// ([`memory_check`]; `None`: no check).
    pub memory_limit_mib: Option<u64>,
}

impl JobRequest {
    /// The architecture of each segment (resolving the automatic choice of layers per
    /// step). A resumed job is not planned again (ResNet-18 takes minutes to plan): the
    /// choices recorded in its manifest stand when they are for the same layers.
    pub fn architectures(&self, model: &dyn ModelSource, manifest: Option<&Manifest>) -> Vec<Architecture> {
        let segments = model.segments();
        match manifest.map(|m| &m.job.architectures) {
            Some(recorded)
                if self.layers_per_step.is_none()
                    && self.fold_budget.is_none()
                    && recorded.len() == segments.len()
                    && recorded.iter().zip(&segments).all(|(r, s)| r.block.stages == s.spec().stages) =>
            {
                recorded.clone()
            }
            _ => crate::prove::plan::architectures(model, self.layers_per_step, self.fold_budget),
        }
    }

    /// Refuses layers per step outside `1..=MAX_LAYERS_PER_STEP`.
    pub fn check_layers_per_step(&self) -> Result<(), Error> {
        match self.layers_per_step {
            Some(k) if k == 0 || k > crate::statement::MAX_LAYERS_PER_STEP => {
                Err(JobError::LayersPerStep { max: crate::statement::MAX_LAYERS_PER_STEP }.into())
            }
            _ => Ok(()),
        }
    }

    /// [`Self::architectures`], refused before any setup when a step is larger than any
    /// verifier derives keys for (setting its keys up would otherwise run out of memory
    /// first).
    pub fn checked_architectures(
        &self,
        model: &dyn ModelSource,
        manifest: Option<&Manifest>,
    ) -> Result<Vec<Architecture>, Error> {
        let archs = self.architectures(model, manifest);
        for (j, arch) in archs.iter().enumerate() {
            fold_ml_verify::statement::check_size(arch).map_err(|e| bad("model", format!("segment {j}: {e}")))?;
        }
        Ok(archs)
    }

    /// The model to prove in `dir`: for a new job (`fresh`) read from the request's model
    /// file, else the job's own copy (or the synthetic model the record describes).
    pub fn load_model(&self, dir: &Path, fresh: bool) -> Result<LoadedModel, Error> {
        Ok(match (&self.model, &self.model_file) {
            (ModelRecord::File { .. }, Some(src)) if fresh => LoadedModel::Network(Box::new(Network::read(src)?)),
            (m, _) => m.load(dir)?,
        })
    }

    /// The blind of a new job's input commitment: 0 for a public input, the owner's when
    /// given (`commit-input`), else fresh.
    pub fn new_input_blind(&self) -> Result<F, Error> {
        match (self.public_input, self.input_blind) {
            (true, Some(_)) => Err(JobError::PublicInputWithBlind.into()),
            (true, None) => Ok(F::ZERO),
            (false, Some(b)) => Ok(b),
            (false, None) => Ok(F::random(OsRng)),
        }
    }
}

/// How a job run ended.
pub enum Outcome {
    /// Proven now (possibly after resuming).
    Proven(Box<Proven>),
    /// The job was already complete: nothing was re-proven.
    AlreadyComplete(Box<Statement>),
}

/// The refusal of a whole-job command on a sharded job directory.
fn sharded_job(dir: &Path) -> Error {
    bad(
        &dir.display().to_string(),
        "is a sharded job: prove its shards with `fold-ml prove-shard`, then `fold-ml assemble` it".into(),
    )
}

/// Reads a job's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let path = dir.join("manifest.json");
    if !path.exists() && dir.join(shards::PLAN_FILE).exists() {
        return Err(sharded_job(dir));
    }
    let m: Manifest =
        serde_json::from_slice(&read_file(&path)?).map_err(|e| bad(&path.display().to_string(), e.to_string()))?;
    m.check().map_err(|reason| bad(&path.display().to_string(), reason))?;
    Ok(m)
}

/// The request that continues the job in `dir` as it was started.
pub fn resume_request(dir: &Path, cache_dir: PathBuf, restart: bool) -> Result<JobRequest, Error> {
    let m = read_manifest(dir)?;
    Ok(JobRequest {
        model: m.job.model,
        model_file: None,
        input: None,
        public_input: m.job.public_input,
        input_blind: None,
        cache_dir,
        checkpoint_every: m.checkpoint_every,
        restart,
        layers_per_step: None,
        fold_budget: None,
        keys_in_memory: None,
        memory_limit_mib: None,
    })
}

/// The state before the first segment: the input committed as that segment's block reads it.
pub(crate) fn z0_of(archs: &[Architecture], input: &[u8], blind: F) -> StepState {
    let layout = archs.first().map_or(Layout::whole([input.len(), 1, 1]), |a| a.block.input_layout());
    StepState::initial(activation_commitment_native(input, layout, blind))
}

/// Layers before each segment.
pub(crate) fn offsets(model: &dyn ModelSource) -> Vec<usize> {
    model.segments().iter().scan(0, |acc, s| Some(std::mem::replace(acc, *acc + s.num_layers()))).collect()
}

/// A state this job wrote itself (checked when its file was read).
pub(crate) fn state_of(v: &[F]) -> StepState {
    StepState::from_z(v).expect("a checked checkpoint or segment holds a well-formed state")
}

/// The finished segments `0..j` of a job, in order, up to the first one missing.
pub(crate) fn finished_segments(dir: &Path, manifest: &Manifest) -> Result<Vec<SegmentDone>, Error> {
    let job_digest = manifest.job.digest();
    let mut done = Vec::new();
    for (j, arch) in manifest.job.architectures.iter().enumerate() {
        match checkpoint::read_segment(dir, arch, &job_digest, j)? {
            Some(d) => done.push(d),
            None => break,
        }
    }
    Ok(done)
}

/// Where a segment's checkpoints are looked for: in `dir`, bound to `job_digest`, of
/// segment `index` (of `arch`, `layers` layers after `offset`), verified from `z0`.
#[derive(Clone, Copy)]
pub(crate) struct CheckpointScope<'a> {
    pub dir: &'a Path,
    pub job_digest: [u8; 32],
    pub index: usize,
    pub arch: &'a Architecture,
    pub offset: usize,
    pub layers: usize,
}

/// Finds the newest checkpoint of a segment that decodes, belongs to this job and
/// verifies; reports each one skipped. `Ok(None)` when there is none at all.
pub(crate) fn newest_valid_checkpoint(
    scope: &CheckpointScope<'_>,
    pp: &PublicParams,
    z0: &StepState,
    log: &EventLog,
    on_event: &mut dyn FnMut(Event),
) -> Result<Option<Checkpoint>, Error> {
    let CheckpointScope { dir, job_digest, index: segment, arch, offset, layers: seg_layers } = *scope;
    let files: Vec<_> =
        checkpoint::list(dir).into_iter().filter(|(k, _)| *k > (offset, 0) && k.0 <= offset + seg_layers).collect();
    for ((k, _), path) in &files {
        let verdict = checkpoint::read(path, &arch.digest()).map_err(|e| e.to_string()).and_then(|c| {
            c.check(&job_digest, segment, offset, seg_layers, arch)?;
            verify_checkpoint_proof(pp, &c, arch, z0)?;
            Ok(c)
        });
        match verdict {
            Ok(c) => return Ok(Some(c)),
            Err(reason) => {
                log.append(JobEvent::CheckpointRejected { layers: *k, reason: reason.clone() })?;
                on_event(Event::CheckpointSkipped { layers: *k, reason });
            }
        }
    }
    if files.is_empty() {
        Ok(None)
    } else {
        Err(JobError::AllCheckpointsDamaged { dir: dir.into(), count: files.len() }.into())
    }
}

/// Refuses architectures whose folds are estimated to need more than `limit_mib` of
/// memory at their peak ([`crate::prove::plan::Estimate::peak_mib`], the setup and
/// compression of the largest step): better a clear refusal before any setup than a job
/// the kernel kills hours in. The first such segment is named. A step whose parameters
/// are cached is sized by them (a resumed ResNet-18 spent ~25 s measuring its tiles again).
fn memory_check(archs: &[Architecture], cache: &Path, limit_mib: u64) -> Result<(), JobError> {
    let mut seen: Vec<&Architecture> = Vec::new();
    for (segment, arch) in archs.iter().enumerate() {
        if seen.contains(&arch) {
            continue;
        }
        seen.push(arch);
        let constraints = keys::cached_summary(cache, arch)
            .map_or_else(|| crate::prove::plan::step_constraints(arch), |s| s.constraints.0);
        let estimated_mib = crate::prove::plan::estimate_steps(constraints, 1).peak_mib.ceil() as u64;
        if estimated_mib > limit_mib {
            return Err(JobError::Memory { segment, constraints, estimated_mib, available_mib: limit_mib });
        }
    }
    Ok(())
}

/// Runs (or resumes, or recognizes as complete) the job in `dir`.
pub fn run(dir: &Path, req: &JobRequest, on_event: &mut dyn FnMut(Event)) -> Result<Outcome, Error> {
    req.check_layers_per_step()?;
    if dir.join(shards::PLAN_FILE).exists() {
        return Err(sharded_job(dir));
    }
    let has_manifest = dir.join("manifest.json").exists();
    let loaded = req.load_model(dir, !has_manifest)?;
    let model = loaded.source();
    let manifest = if has_manifest { Some(read_manifest(dir)?) } else { None };
    let planning = std::time::Instant::now();
    let archs = req.checked_architectures(model, manifest.as_ref())?;
    // planning synthesized many candidate tiles on every core: hand their arenas back
    crate::mem::release_free_memory();
    if !has_manifest {
        let folds = archs.iter().zip(model.segments()).map(|(a, s)| a.steps(s.num_layers())).sum();
        on_event(Event::Planned { segments: archs.len(), folds, seconds: planning.elapsed().as_secs_f64() });
    }
    if dir.join("statement.json").exists() && has_manifest {
        let m = manifest.expect("read above");
        let wanted = JobIdentity {
            pp_digest: m.job.pp_digest.clone(),
            input_commitment: m.job.input_commitment,
            ..identity(&req.model, &archs, model, F::ZERO, req.public_input, String::new())
        };
        let differs = |(setting, job, now)| JobError::Differs { dir: dir.into(), finished: true, setting, job, now };
        if let Some(diff) = m.job.difference(&wanted) {
            return Err(differs(diff).into());
        }
        if req.input.as_ref().is_some_and(|input| *input != JobSecret::read(dir).map(|s| s.input).unwrap_or_default()) {
            return Err(differs((JobSetting::Input, String::new(), String::new())).into());
        }
        let s = crate::verify::read_statement(&dir.join("statement.json"))?
            .map_err(|e| bad("statement.json", e.to_string()))?;
        return Ok(Outcome::AlreadyComplete(Box::new(s)));
    }
    if dir.join("statement.json").exists() {
        return Err(JobError::ForeignProof { dir: dir.into() }.into());
    }
    if let Some(limit) = req.memory_limit_mib {
        memory_check(&archs, &req.cache_dir, limit)?;
    }

    // The secret input and blind: the job's own when resuming.
    let secret = if has_manifest {
        let s = JobSecret::read(dir)?;
        let differs = |setting| JobError::Differs {
            dir: dir.into(),
            finished: false,
            setting,
            job: String::new(),
            now: String::new(),
        };
        if req.input.as_ref().is_some_and(|input| input != &s.input) {
            return Err(differs(JobSetting::Input).into());
        }
        if req.input_blind.is_some_and(|b| b != s.input_blind) {
            return Err(differs(JobSetting::InputCommitment).into());
        }
        s
    } else {
        let input = req
            .input
            .clone()
            .ok_or_else(|| bad(&dir.display().to_string(), "is not a fold-ml job (no manifest.json)".into()))?;
        JobSecret::new(input, req.new_input_blind()?)
    };
    check_model_and_input(model, &secret.input)?;

    std::fs::create_dir_all(dir).map_err(|source| Error::io(dir, source))?;
    let _lock = lock::JobLock::acquire(dir)?;
    if let (LoadedModel::Network(net), false) = (&loaded, has_manifest) {
        net.write(&manifest::model_file(dir))?;
    }
    let log = EventLog::new(dir);
    let result = run_locked(dir, req, model, &archs, manifest, &secret, &log, on_event);
    if let Err(e) = &result {
        // The event log is not secret: record what failed, never the values involved.
        let _ = log.append(JobEvent::Failed { error: e.public_summary() });
    }
    result
}

/// Where `task` continues: its newest valid checkpoint in `scope` (logged as a resumption),
/// else its start.
pub(crate) fn resume_progress(
    task: &SegmentTask<'_>,
    scope: &CheckpointScope<'_>,
    pp: &PublicParams,
    log: &EventLog,
    on_event: &mut dyn FnMut(Event),
) -> Result<Progress, Error> {
    Ok(match newest_valid_checkpoint(scope, pp, &task.start.state, log, on_event)? {
        Some(c) => {
            let from = task.layer_offset + c.layers_done;
            let tiles = c.in_layer.as_ref().map_or(0, |l| l.tiles_done);
            log.append(JobEvent::Resumed { from, tiles })?;
            on_event(Event::Resumed { from, tiles });
            Progress {
                layers_done: c.layers_done,
                state: state_of(&c.state),
                activations: c.activations,
                blind: c.blind,
                snark: Some(c.snark),
                in_layer: c.in_layer,
            }
        }
        None => task.fresh(),
    })
}

/// Verifies the recursive proof inside a checkpoint, from its segment's start state `z0`.
pub fn verify_checkpoint_proof(
    pp: &PublicParams,
    c: &Checkpoint,
    arch: &Architecture,
    z0: &StepState,
) -> Result<(), String> {
    let steps = c.steps(arch);
    c.snark.verify(pp, steps, &arch.z(z0)).map(|_| ()).map_err(|e| format!("recursive proof does not verify: {e}"))
}

pub(crate) fn identity(
    model: &ModelRecord,
    archs: &[Architecture],
    m: &dyn ModelSource,
    input_commitment: F,
    public_input: bool,
    pp_digest: String,
) -> JobIdentity {
    JobIdentity {
        model: model.clone(),
        architectures: archs.to_vec(),
        num_layers: m.num_layers(),
        input_commitment,
        public_input,
        pp_digest,
    }
}

/// Digest of the public parameters of every segment, in order.
fn pp_digest(pps: &[F]) -> String {
    let bytes: Vec<u8> = pps.iter().flat_map(crate::field::to_bytes).collect();
    hex(&crate::artifact::checksum(&bytes))
}

/// The self-check's key source: the `k`-th distinct architecture's verifier key is the one
/// at hand (the last segment's, already in memory) when it is that architecture's, else
/// the cached one, else derived; each is asked for once and dropped after its segments are
/// checked, so the check holds one key at a time besides the one at hand.
fn key_source<'a>(
    cache: &'a Path,
    statement: &'a Statement,
    mut at_hand: Option<(Architecture, VerifierKey)>,
) -> impl FnMut(usize) -> Result<VerifierKey, Error> + 'a {
    let archs = statement.distinct_architectures();
    move |k| {
        let arch = archs[k];
        match at_hand.take_if(|(a, _)| a == arch) {
            Some((_, vk)) => Ok(vk),
            None => match keys::cached_vk(cache, arch) {
                Some(vk) => Ok(vk),
                None => Ok(fold_ml_verify::keys::verifier_key(cache, arch)?),
            },
        }
    }
}

/// Assembles the statement of segments `0..proofs.len()` (the last possibly a prefix of
/// `last_layers` layers ending in `end`), seals the proof and writes the proof directory.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    out: &Path,
    cache: &Path,
    archs: &[Architecture],
    done: Vec<SegmentDone>,
    last: Option<(usize, &[F], CompressedSnark)>,
    vk_at_hand: Option<(Architecture, VerifierKey)>,
    input: InputStatement,
    output: Option<(&[u8], F, bool)>,
) -> Result<(Statement, Vec<u8>, f64), Error> {
    let mut segments: Vec<SegmentStatement> =
        done.iter().map(|d| SegmentStatement::new(archs[d.segment].clone(), 0)).collect();
    let mut ends: Vec<StepState> = done.iter().map(|d| state_of(&d.end)).collect();
    let mut checked: Vec<bool> = done.iter().map(|d| d.checked).collect();
    let mut proofs: Vec<CompressedSnark> = done.into_iter().map(|d| d.proof).collect();
    if let Some((layers, end, proof)) = last {
        segments.push(SegmentStatement::new(archs[segments.len()].clone(), layers));
        ends.push(state_of(end));
        proofs.push(proof);
        checked.push(false);
    }
    // Layer counts from the states: each segment ends where its counter stopped.
    let mut before = 0u64;
    for (seg, end) in segments.iter_mut().zip(&ends) {
        if seg.num_layers == 0 {
            seg.num_layers = (end.layer - before) as usize;
        }
        before = end.layer;
    }
    let final_state = *ends.last().ok_or_else(|| bad("job", "no layer was folded".into()))?;
    let links = ends[..ends.len() - 1].iter().map(|e| Link { model: e.model, activations: e.activations }).collect();
    let (values, blind, classifier) = match output {
        Some((v, b, c)) => (Some(v.to_vec()), Some(b), c),
        None => (None, None, false),
    };
    let class = values.as_ref().filter(|_| classifier).map(|v| argmax(v));
    let statement = Statement::new(
        segments,
        links,
        final_state.model,
        input,
        OutputStatement { commitment: final_state.activations, values, blind, class },
    );
    let (proof, check_s) = seal(&statement, &proofs, &mut key_source(cache, &statement, vk_at_hand), &checked)?;
    results::write_proof_dir(out, &statement, &proof)?;
    Ok((statement, proof, check_s))
}

#[allow(clippy::too_many_arguments)]
fn run_locked(
    dir: &Path,
    req: &JobRequest,
    model: &dyn ModelSource,
    archs: &[Architecture],
    manifest: Option<Manifest>,
    secret: &JobSecret,
    log: &EventLog,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, Error> {
    let segments = model.segments();
    let offsets = offsets(model);
    let n = model.num_layers();
    let z0 = z0_of(archs, &secret.input, secret.input_blind);
    let mut timings = Timings::default();

    // The job's parameters: every segment's named (set up, or found in the cache) before
    // the manifest is written, which records their digest. The next segment to fold keeps
    // its keys in memory, and so do others while they add up to at most `keys_in_memory`
    // constraints; the rest are loaded when their turn comes (a cached entry is named by
    // its summary alone, never loaded twice). So memory holds a bounded amount of keys
    // whatever the network (their size depends on the segments' shapes, never on the depth).
    let next = match &manifest {
        Some(m) if !req.restart => finished_segments(dir, m)?.len(),
        _ => 0,
    };
    let mut summaries: Vec<Option<keys::ParamsSummary>> = vec![None; archs.len()];
    let mut constraints = (0, 0);
    let mut held: Vec<Option<(PublicParams, ProverKey)>> = archs.iter().map(|_| None).collect();
    let mut held_constraints = 0;
    let budget = req.keys_in_memory.unwrap_or(HELD_KEYS_CONSTRAINTS);
    for (j, arch) in archs.iter().enumerate().skip(next).chain(archs.iter().enumerate().take(next)) {
        if let Some(k) = (0..archs.len()).find(|&k| archs[k] == *arch && summaries[k].is_some()) {
            summaries[j] = summaries[k];
            continue;
        }
        let keys::Named { summary, set_up, keys: obtained } = keys::summary(&req.cache_dir, arch)?;
        if let Some(seconds) = set_up {
            on_event(Event::KeysReady { cached: false, seconds, constraints: summary.constraints });
            timings.setup += seconds;
            crate::mem::release_free_memory();
        }
        constraints = constraints.max(summary.constraints);
        summaries[j] = Some(summary);
        let size = summary.constraints.0;
        let hold = j >= next && (j == next || held_constraints + size <= budget);
        let keys = match (obtained, hold) {
            (Some(k), _) => Some(k),
            (None, true) => Some(keys::prover_keys_as(&req.cache_dir, arch, &summary)?),
            (None, false) => None,
        };
        if let Some(ProverKeys { pp, pk, cached, seconds }) = keys {
            on_event(Event::KeysReady { cached, seconds, constraints: pp.num_constraints() });
            timings.setup += seconds;
            if hold {
                held_constraints += if j == next { 0 } else { size };
                held[j] = Some((pp, pk));
            }
        }
    }
    let pp_digests: Vec<F> = summaries.iter().map(|s| s.expect("every segment named").digest).collect();
    let wanted = identity(&req.model, archs, model, z0.activations, req.public_input, pp_digest(&pp_digests));
    let manifest = match manifest {
        Some(m) => {
            if let Some((setting, job, now)) = m.job.difference(&wanted) {
                return Err(JobError::Differs { dir: dir.into(), finished: false, setting, job, now }.into());
            }
            Manifest { checkpoint_every: req.checkpoint_every, ..m }
        }
        None => {
            secret.write(dir)?;
            let m = Manifest::new(wanted, req.checkpoint_every);
            write_atomic(&dir.join("manifest.json"), &serde_json::to_vec_pretty(&m).expect("serializes"), false)?;
            log.append(JobEvent::Started { layers: n, segments: archs.len() })?;
            m
        }
    };

    let planned = (0..archs.len()).map(|j| {
        let constraints = summaries[j].expect("every segment named").constraints;
        eta::PlannedSegment::of(&archs[j], offsets[j], segments[j].num_layers(), constraints)
    });
    log.append(JobEvent::Planned { segments: planned.collect() })?;

    if req.restart {
        for (_, path) in checkpoint::list(dir) {
            std::fs::remove_file(&path).map_err(|source| Error::io(path, source))?;
        }
        let segs = dir.join("segments");
        if segs.exists() {
            std::fs::remove_dir_all(&segs).map_err(|source| Error::io(segs, source))?;
        }
    }
    let mut done = finished_segments(dir, &manifest)?;
    let job_digest = manifest.job.digest();
    let mut layers_folded = 0;
    let mut last_vk: Option<(Architecture, VerifierKey)> = None;
    while done.len() < segments.len() {
        let j = done.len();
        let (seg, arch, offset) = (segments[j], &archs[j], offsets[j]);
        let start = match done.last() {
            None => SegmentStart { state: z0, activations: secret.input.clone(), blind: secret.input_blind },
            Some(d) => SegmentStart { state: state_of(&d.end), activations: d.activations.clone(), blind: d.blind },
        };
        on_event(Event::SegmentStarted { index: j, total: segments.len(), layers: seg.num_layers(), offset });
        // Each segment's keys are dropped once it is compressed, its verifier key when the
        // next segment starts (the last segment's serves the self-check).
        drop(last_vk.take());
        let (pp, pk) = match held[j].take() {
            Some(keys) => keys,
            None => {
                let summary = summaries[j].as_ref().expect("every segment named");
                let k = keys::prover_keys_as(&req.cache_dir, arch, summary)?;
                on_event(Event::KeysReady {
                    cached: k.cached,
                    seconds: k.seconds,
                    constraints: k.pp.num_constraints(),
                });
                timings.setup += k.seconds;
                (k.pp, k.pk)
            }
        };
        let task = SegmentTask {
            index: j,
            layers: seg,
            arch,
            layer_offset: offset,
            model_layers: n,
            salt: model.salt(),
            start,
            end_blind: F::random(OsRng),
        };
        let scope = CheckpointScope { dir, job_digest, index: j, arch, offset, layers: seg.num_layers() };
        let progress = resume_progress(&task, &scope, &pp, log, on_event)?;
        let arch_digest = arch.digest();
        let mut sink =
            JobCheckpoints::new(dir, job_digest, arch_digest, req.checkpoint_every, progress.layers_done, log);
        let start_state = task.start.state;
        let proven = task.prove(&pp, &pk, progress, &mut sink, on_event)?;
        drop(pk);
        let derived = std::time::Instant::now();
        let vk = keys::verifier_key_of(&pp)?;
        timings.setup += derived.elapsed().as_secs_f64();
        drop(pp);
        crate::mem::release_free_memory();
        // its self-check, with its key at hand
        let layers = (j, seg.num_layers());
        timings.self_check += check_segment(arch, layers, (&start_state, &proven.end), &proven.proof, &vk)?;
        last_vk = Some((arch.clone(), vk));
        let (fold_s, checkpoint_s, compress_s) = proven.seconds;
        timings.fold += fold_s;
        timings.checkpoint += checkpoint_s;
        timings.compress += compress_s;
        layers_folded += proven.layers_folded;
        let finished = SegmentDone {
            job_digest,
            segment: j,
            end: proven.end.to_vec(),
            activations: proven.activations,
            blind: proven.blind,
            proof: proven.proof,
            checked: true,
        };
        checkpoint::write_segment(dir, &arch_digest, &finished)?;
        log.append(JobEvent::SegmentCompressed { segment: j, seconds: compress_s })?;
        done.push(finished);
    }

    let input = InputStatement { commitment: z0.activations, values: req.public_input.then(|| secret.input.clone()) };
    let (output, output_blind) = done.last().map(|d| (d.activations.clone(), d.blind)).unwrap_or_default();
    let segments_done = done.len();
    let (statement, proof, check_s) = finish(
        dir,
        &req.cache_dir,
        archs,
        done,
        None,
        last_vk,
        input,
        Some((&output, output_blind, model.is_classifier())),
    )?;
    timings.self_check += check_s;
    log.append(JobEvent::Compressed { proof_bytes: proof.len(), segments: segments_done })?;
    Ok(Outcome::Proven(Box::new(Proven { statement, proof, timings, layers_folded, constraints })))
}
