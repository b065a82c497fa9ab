//! Proving jobs: a job directory is the unit of work. It records a manifest before the
//! first fold, writes crash-safe checkpoints of the folded proof, appends an event log,
//! and resumes from its newest valid checkpoint when run again (here or on another
//! machine: nothing in it is an absolute path, and parameters are found by digest).
//!
//! Layout: `manifest.json`, `secret.json` (owner-only), `checkpoints/ckpt-<K>.bin`
//! (owner-only), `events.jsonl`, `lock`, and at the end `statement.json`, `proof.bin`,
//! `vk.bin`.

pub mod checkpoint;
pub mod events;
pub mod lock;
pub mod manifest;
pub mod results;
pub mod secret;
pub mod status;

use crate::artifact::hex;
use crate::error::Error;
use crate::fsutil::{read_file, write_atomic};
use crate::model::{Architecture, LayerSource};
use crate::nova::PublicParams;
use crate::params::{self, ProverKeys};
use crate::prove::{bad, check_model_and_input, compress, fold_layers, Event, Progress, Proven, Timings};
use crate::statement::{InputStatement, Statement};
use checkpoint::Checkpoint;
use events::EventLog;
use ff::Field;
use fold_ml_circuits::commit::{activation_commitment_native, model_iv_native};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use manifest::{CheckpointPolicy, JobIdentity, Manifest, ModelDescriptor};
use rand_core::OsRng;
use secret::JobSecret;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Default checkpoint policy: at most about a minute of folding is ever lost.
pub const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = CheckpointPolicy::Seconds(60);

/// What to prove, and how.
#[derive(Clone, Debug)]
pub struct JobRequest {
    /// The model.
    pub model: ModelDescriptor,
    /// Input activations; `None` reuses the job's own (resume).
    pub input: Option<Vec<u8>>,
    /// Publish the input in the statement.
    pub public_input: bool,
    /// Parameter cache.
    pub cache_dir: PathBuf,
    /// Checkpoint policy.
    pub checkpoint_every: CheckpointPolicy,
    /// Discard every checkpoint and start from the first layer.
    pub restart: bool,
    /// Layers folded per Nova step (`None`: chosen from the layer's size).
    pub layers_per_step: Option<usize>,
}

impl JobRequest {
    /// The architecture this request proves under (resolving the automatic choice of
    /// layers per step).
    pub fn architecture(&self, model: &dyn LayerSource) -> Architecture {
        let k = self.layers_per_step.unwrap_or_else(|| {
            crate::plan::auto_layers_per_step(&crate::plan::StepSizes::of(&model.spec()), model.num_layers())
        });
        Architecture::new(model.spec(), k)
    }
}

/// How a job run ended.
pub enum Outcome {
    /// Proven now (possibly after resuming).
    Proven(Box<Proven>),
    /// The job was already complete: nothing was re-proven.
    AlreadyComplete(Box<Statement>),
}

/// Reads a job's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let path = dir.join("manifest.json");
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
        input: None,
        public_input: m.job.public_input,
        cache_dir,
        checkpoint_every: m.checkpoint_every,
        restart,
        layers_per_step: Some(m.job.architecture.layers_per_step),
    })
}

fn z0_of(model: &dyn LayerSource, input: &[u8], blind: F) -> StepState {
    StepState {
        layer: 0,
        model: model_iv_native(model.salt()),
        activations: activation_commitment_native(input, blind),
    }
}

/// Finds the newest checkpoint that decodes, belongs to this job and verifies; reports
/// each one skipped. `Ok(None)` when there is none at all.
fn newest_valid_checkpoint(
    dir: &Path,
    manifest: &Manifest,
    pp: &PublicParams,
    z0: &StepState,
    log: &EventLog,
    on_event: &mut dyn FnMut(Event),
) -> Result<Option<Checkpoint>, Error> {
    let arch = manifest.job.architecture.digest();
    let job_digest = manifest.job.digest();
    let per_step = manifest.job.architecture.layers_per_step;
    let files = checkpoint::list(dir);
    for (k, path) in &files {
        let verdict = checkpoint::read(path, &arch).map_err(|e| e.to_string()).and_then(|c| {
            c.check(&job_digest, manifest.job.num_layers, per_step)?;
            verify_checkpoint_proof(pp, &c, per_step, z0)?;
            Ok(c)
        });
        match verdict {
            Ok(c) => return Ok(Some(c)),
            Err(reason) => {
                log.append("checkpoint_rejected", json!({ "layers": k, "reason": reason }))?;
                on_event(Event::CheckpointSkipped { layers: *k, reason });
            }
        }
    }
    if files.is_empty() {
        Ok(None)
    } else {
        Err(bad(
            &dir.display().to_string(),
            format!(
                "all {} checkpoints are damaged; run again with --restart to start over from the first layer",
                files.len()
            ),
        ))
    }
}

/// Runs (or resumes, or recognizes as complete) the job in `dir`.
pub fn run(dir: &Path, req: &JobRequest, on_event: &mut dyn FnMut(Event)) -> Result<Outcome, Error> {
    let model = req.model.model()?;
    if req.layers_per_step.is_some_and(|k| k == 0 || k > crate::statement::MAX_LAYERS_PER_STEP) {
        return Err(bad("--layers-per-step", format!("must be in 1..={}", crate::statement::MAX_LAYERS_PER_STEP)));
    }
    let arch = req.architecture(&model);
    let has_manifest = dir.join("manifest.json").exists();
    if dir.join("statement.json").exists() && has_manifest {
        let m = read_manifest(dir)?;
        let wanted = JobIdentity {
            params_digest: m.job.params_digest.clone(),
            input_commitment: m.job.input_commitment,
            ..identity(&req.model, &arch, &model, F::ZERO, req.public_input, String::new())
        };
        if let Some(diff) = m.job.difference(&wanted) {
            return Err(bad(&dir.display().to_string(), format!("holds a finished job for another request: {diff}")));
        }
        if req.input.as_ref().is_some_and(|input| *input != JobSecret::read(dir).map(|s| s.input).unwrap_or_default()) {
            return Err(bad(
                &dir.display().to_string(),
                "holds a finished job for another request: --input differs from the job's input".into(),
            ));
        }
        let s = crate::verify::read_statement(&dir.join("statement.json"))?
            .map_err(|e| bad("statement.json", e.to_string()))?;
        return Ok(Outcome::AlreadyComplete(Box::new(s)));
    }
    if dir.join("statement.json").exists() {
        return Err(bad(
            &dir.display().to_string(),
            "already holds a proof that is not a job of this tool; choose another --job".into(),
        ));
    }

    // The secret input and blind: the job's own when resuming.
    let secret = if has_manifest {
        let s = JobSecret::read(dir)?;
        if let Some(input) = &req.input {
            if input != &s.input {
                return Err(bad(&dir.display().to_string(), "--input differs from the job's input".into()));
            }
        }
        s
    } else {
        let input = req
            .input
            .clone()
            .ok_or_else(|| bad(&dir.display().to_string(), "is not a fold-ml job (no manifest.json)".into()))?;
        let blind = if req.public_input { F::ZERO } else { F::random(OsRng) };
        JobSecret::new(input, blind)
    };
    check_model_and_input(&model, &secret.input)?;

    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.into(), source })?;
    let _lock = lock::JobLock::acquire(dir)?;
    let log = EventLog::new(dir);
    let result = run_locked(dir, req, &model, &arch, &secret, has_manifest, &log, on_event);
    if let Err(e) = &result {
        let _ = log.append("failed", json!({ "error": e.to_string() }));
    }
    result
}

/// Verifies the recursive proof inside a checkpoint.
pub fn verify_checkpoint_proof(
    pp: &PublicParams,
    c: &Checkpoint,
    layers_per_step: usize,
    z0: &StepState,
) -> Result<(), String> {
    let steps = crate::prove::num_steps(c.layers_done, layers_per_step);
    c.snark.verify(pp, steps, &z0.to_vec()).map(|_| ()).map_err(|e| format!("recursive proof does not verify: {e}"))
}

fn identity(
    model: &ModelDescriptor,
    arch: &Architecture,
    m: &dyn LayerSource,
    input_commitment: F,
    public_input: bool,
    params_digest: String,
) -> JobIdentity {
    JobIdentity {
        model: *model,
        architecture: arch.clone(),
        num_layers: m.num_layers(),
        input_commitment,
        public_input,
        params_digest,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_locked(
    dir: &Path,
    req: &JobRequest,
    model: &(dyn LayerSource + Sync),
    arch: &Architecture,
    secret: &JobSecret,
    has_manifest: bool,
    log: &EventLog,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, Error> {
    let ProverKeys { pp, pk, vk, cached, seconds } = params::prover_keys(&req.cache_dir, arch)?;
    on_event(Event::KeysReady { cached, seconds, constraints: pp.num_constraints() });
    let mut timings = Timings { setup: seconds, ..Timings::default() };

    let z0 = z0_of(model, &secret.input, secret.input_blind);
    let wanted =
        identity(&req.model, arch, model, z0.activations, req.public_input, hex(&crate::field::to_bytes(&pp.digest())));
    let manifest = if has_manifest {
        let m = read_manifest(dir)?;
        if let Some(diff) = m.job.difference(&wanted) {
            return Err(bad(&dir.display().to_string(), format!("cannot resume: {diff}")));
        }
        Manifest { checkpoint_every: req.checkpoint_every, ..m }
    } else {
        secret.write(dir)?;
        let m = Manifest::new(wanted, req.checkpoint_every);
        write_atomic(&dir.join("manifest.json"), &serde_json::to_vec_pretty(&m).expect("serializes"), false)?;
        log.append("started", json!({ "layers": model.num_layers(), "architecture": arch.digest_hex() }))?;
        m
    };

    if req.restart {
        for (_, path) in checkpoint::list(dir) {
            std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
        }
    }
    let start = match newest_valid_checkpoint(dir, &manifest, &pp, &z0, log, on_event)? {
        Some(c) => {
            log.append("resumed", json!({ "from": c.layers_done }))?;
            on_event(Event::Resumed { from: c.layers_done });
            let state = StepState { layer: c.layers_done as u64, model: c.state[1], activations: c.state[2] };
            Progress {
                layers_done: c.layers_done,
                state,
                activations: c.activations,
                blind: c.blind,
                snark: Some(c.snark),
            }
        }
        None => Progress {
            layers_done: 0,
            state: z0,
            activations: secret.input.clone(),
            blind: secret.input_blind,
            snark: None,
        },
    };
    let first = start.layers_done;
    let n = model.num_layers();
    let arch_digest = arch.digest();
    let job_digest = manifest.job.digest();

    let fold_start = Instant::now();
    let mut last_checkpoint = (first, Instant::now());
    let mut checkpoint_seconds = 0.0;
    let done = fold_layers(&pp, model, arch.layers_per_step, &z0, start, &mut |p| {
        log.append("folded", json!({ "done": p.layers_done, "total": n }))?;
        on_event(Event::Folded { done: p.layers_done, total: n });
        let due = match req.checkpoint_every {
            CheckpointPolicy::Folds(k) => p.layers_done - last_checkpoint.0 >= k.max(1),
            CheckpointPolicy::Seconds(s) => last_checkpoint.1.elapsed().as_secs() >= s,
        };
        if due || p.layers_done == n {
            let t = Instant::now();
            let ckpt = Checkpoint {
                job_digest,
                layers_done: p.layers_done,
                state: p.state.to_vec(),
                activations: p.activations.clone(),
                blind: p.blind,
                snark: p.snark.clone().expect("a layer was folded"),
            };
            let (path, bytes) = checkpoint::write(dir, &arch_digest, &ckpt)?;
            let secs = t.elapsed().as_secs_f64();
            checkpoint_seconds += secs;
            log.append("checkpoint", json!({ "layers": p.layers_done, "bytes": bytes, "seconds": secs, "file": path.file_name().map(|f| f.to_string_lossy().into_owned()) }))?;
            on_event(Event::Checkpointed { layers: p.layers_done, bytes, seconds: secs });
            last_checkpoint = (p.layers_done, Instant::now());
        }
        Ok(())
    })?;
    timings.fold = fold_start.elapsed().as_secs_f64() - checkpoint_seconds;
    timings.checkpoint = checkpoint_seconds;

    on_event(Event::Compressing);
    let snark = done.snark.as_ref().ok_or_else(|| bad("job", "no layer was folded".into()))?;
    let input = InputStatement { commitment: z0.activations, values: req.public_input.then(|| secret.input.clone()) };
    let (statement, proof, compress_s, check_s) =
        compress(&pp, &pk, &vk, arch, snark, done.layers_done, &z0, input, Some(&done.activations))?;
    timings.compress = compress_s;
    timings.self_check = check_s;
    let vk = params::encode_vk(arch, &vk)?;
    results::write_proof_dir(dir, &statement, &proof, &vk)?;
    log.append("compressed", json!({ "proof_bytes": proof.len(), "seconds": compress_s }))?;
    Ok(Outcome::Proven(Box::new(Proven {
        statement,
        proof,
        vk,
        timings,
        layers_folded: n - first,
        constraints: pp.num_constraints(),
    })))
}

/// Loads and fully verifies the checkpoint of a job at `at` layers (or the newest one).
pub fn load_checkpoint(
    dir: &Path,
    cache: &Path,
    at: Option<usize>,
) -> Result<(Manifest, Checkpoint, ProverKeys, StepState), Error> {
    let manifest = read_manifest(dir)?;
    let model = manifest.job.model.model()?;
    let secret = JobSecret::read(dir)?;
    let arch = &manifest.job.architecture;
    let files = checkpoint::list(dir);
    let (k, path) = match at {
        Some(k) => files
            .into_iter()
            .find(|(n, _)| *n == k)
            .ok_or_else(|| bad("--at", format!("the job has no checkpoint at {k} layers")))?,
        None => files.into_iter().next().ok_or_else(|| bad(&dir.display().to_string(), "has no checkpoint".into()))?,
    };
    let keys = params::prover_keys(cache, arch)?;
    let ckpt = checkpoint::read(&path, &arch.digest())?;
    ckpt.check(&manifest.job.digest(), manifest.job.num_layers, arch.layers_per_step)
        .map_err(|r| checkpoint::corrupted(&path, r))?;
    if ckpt.layers_done != k {
        return Err(checkpoint::corrupted(
            &path,
            format!("file name says {k} layers, content says {}", ckpt.layers_done),
        ));
    }
    let z0 = z0_of(&model, &secret.input, secret.input_blind);
    Ok((manifest, ckpt, keys, z0))
}

/// Compresses the checkpoint at `at` layers into a shareable zero-knowledge proof of that
/// prefix (output committed, not revealed), written to `out`.
pub fn compress_checkpoint(dir: &Path, cache: &Path, at: usize, out: &Path) -> Result<Statement, Error> {
    let (manifest, ckpt, keys, z0) = load_checkpoint(dir, cache, Some(at))?;
    verify_checkpoint_proof(&keys.pp, &ckpt, manifest.job.architecture.layers_per_step, &z0)
        .map_err(|r| checkpoint::corrupted(&dir.join("checkpoints"), r))?;
    let arch = &manifest.job.architecture;
    let public_input = manifest.job.public_input;
    let secret = JobSecret::read(dir)?;
    let input = InputStatement { commitment: z0.activations, values: public_input.then_some(secret.input) };
    let (statement, proof, _, _) =
        compress(&keys.pp, &keys.pk, &keys.vk, arch, &ckpt.snark, ckpt.layers_done, &z0, input, None)?;
    results::write_proof_dir(out, &statement, &proof, &params::encode_vk(arch, &keys.vk)?)?;
    EventLog::new(dir).append(
        "compressed",
        json!({ "prefix_layers": at, "out": out.file_name().map(|f| f.to_string_lossy().into_owned()) }),
    )?;
    Ok(statement)
}
