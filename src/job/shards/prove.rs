//! `fold-ml prove-shard`: one worker proves one shard, resumable from its own checkpoints.

use super::{read_plan, read_result, read_secrets, shard_dir, state_at, LayerRange, ShardPlan};
use crate::error::Error;
use crate::job::checkpoint::{self, corrupted, SegmentDone};
use crate::job::eta::PlannedSegment;
use crate::job::events::{EventLog, JobEvent};
use crate::job::sink::JobCheckpoints;
use crate::job::{lock, resume_progress, CheckpointScope};
use crate::prove::segment::{SegmentStart, SegmentTask};
use crate::prove::{bad, keys, Event, Timings};
use fold_ml_circuits::commit::activation_commitment_native;
use std::path::Path;

/// How a shard run ended.
pub enum ShardOutcome {
    /// Proven now (possibly after resuming), with this run's timings and folded layers.
    Proven {
        /// Phase timings.
        timings: Timings,
        /// Layers folded by this run.
        layers_folded: usize,
    },
    /// Its result was already there: nothing was re-proven.
    AlreadyDone,
}

/// Proves shard `index` of the sharded job in `dir` (or resumes it from its newest valid
/// checkpoint), then writes its result `segments/seg-<index>.bin` atomically.
pub fn prove_shard(
    dir: &Path,
    index: usize,
    cache: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<ShardOutcome, Error> {
    let plan = read_plan(dir)?;
    if index >= plan.shards.len() {
        let n = plan.shards.len();
        return Err(bad("--shard", format!("shard {index} does not exist: the plan has shards 0..={}", n - 1)));
    }
    let work = shard_dir(dir, index);
    fold_ml_verify::fsutil::create_private_dir(&work)?;
    let _lock = lock::JobLock::acquire(&work)?;
    if read_result(dir, &plan, index)?.is_some() {
        return Ok(ShardOutcome::AlreadyDone);
    }
    let log = EventLog::new(&work);
    let result = run(dir, &plan, index, cache, &log, on_event);
    if let Err(e) = &result {
        let _ = log.append(JobEvent::Failed { error: e.public_summary() });
    }
    result
}

fn run(
    dir: &Path,
    plan: &ShardPlan,
    index: usize,
    cache: &Path,
    log: &EventLog,
    on_event: &mut dyn FnMut(Event),
) -> Result<ShardOutcome, Error> {
    let (shard, arch, digest) = (&plan.shards[index], plan.arch(index), plan.digest());
    let loaded = plan.job.model.load(dir)?;
    let model = loaded.source();
    let segments = model.segments();
    let secrets = read_secrets(dir, plan)?;
    let (activations, blind) = (secrets.starts[index].clone(), secrets.blinds[index]);
    let secrets_path = dir.join(super::SECRETS_FILE);
    if fold_ml_circuits::quant::check_activations(&activations).is_err()
        || activation_commitment_native(&activations, arch.block.input_layout(), blind) != shard.start.activations
    {
        return Err(corrupted(&secrets_path, format!("shard {index}'s start does not open the plan's cut state")));
    }
    let source = segments.get(shard.segment).filter(|s| shard.first + shard.layers <= s.num_layers());
    let Some(&source) = source else { return Err(bad("model", format!("has no layers for shard {index}"))) };
    let range = LayerRange { inner: source, first: shard.first, len: shard.layers };
    let mut timings = Timings::default();
    let k = keys::prover_keys(cache, arch)?;
    on_event(Event::KeysReady { cached: k.cached, seconds: k.seconds, constraints: k.pp.num_constraints() });
    timings.setup = k.seconds;
    let planned = PlannedSegment::of(arch, shard.offset, shard.layers, k.pp.num_constraints());
    log.append(JobEvent::Planned { segments: vec![planned] })?;
    let task = SegmentTask {
        index,
        layers: &range,
        arch,
        layer_offset: shard.offset,
        model_layers: plan.job.num_layers,
        salt: model.salt(),
        start: SegmentStart { state: state_at(shard.offset, &shard.start), activations, blind },
        end_blind: secrets.blinds[index + 1],
    };
    on_event(Event::SegmentStarted { index, total: plan.shards.len(), layers: shard.layers, offset: shard.offset });
    let work = shard_dir(dir, index);
    let scope =
        CheckpointScope { dir: &work, job_digest: digest, index, arch, offset: shard.offset, layers: shard.layers };
    let progress = resume_progress(&task, &scope, &k.pp, log, on_event)?;
    let arch_digest = arch.digest();
    let mut sink = JobCheckpoints::new(&work, digest, arch_digest, plan.checkpoint_every, progress.layers_done, log);
    let proven = task.prove(&k.pp, &k.pk, progress, &mut sink, on_event)?;
    let expected = state_at(shard.offset + shard.layers, &shard.end);
    if proven.end != expected {
        return Err(bad(
            &format!("shard {index}"),
            "ends in another state than the plan fixed (the model or its secrets changed since planning)".into(),
        ));
    }
    (timings.fold, timings.checkpoint, timings.compress) = proven.seconds;
    let done = SegmentDone {
        job_digest: digest,
        segment: index,
        end: proven.end.to_vec(),
        activations: proven.activations,
        blind: proven.blind,
        proof: proven.proof,
        checked: false,
    };
    checkpoint::write_segment(dir, &arch_digest, &done)?;
    log.append(JobEvent::SegmentCompressed { segment: index, seconds: timings.compress })?;
    Ok(ShardOutcome::Proven { timings, layers_folded: proven.layers_folded })
}
