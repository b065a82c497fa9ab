//! `fold-ml assemble`: link the shards into one statement; and where each shard stands.

use super::{read_plan, read_result, shard_dir, ShardPlan};
use crate::error::Error;
use crate::job::checkpoint::{self, SegmentDone};
use crate::job::eta::eta;
use crate::job::events::{EventLog, JobEvent};
use crate::job::status::{last_fold, latest_run, seconds_left};
use crate::job::{finish, lock, JobError};
use crate::statement::{InputStatement, Statement};
use std::path::Path;

/// Where one shard stands.
#[derive(Clone, Debug, PartialEq)]
pub enum ShardState {
    /// Its result is there and belongs to the plan.
    Done,
    /// Its result file is there but damaged, foreign or ends elsewhere than the plan says.
    Damaged(String),
    /// A worker is proving it now (process id on this machine).
    Running(u32),
    /// Its last run failed (the public summary of the error).
    Failed(String),
    /// Not proven yet (possibly part-way, see its report's layers).
    Pending,
}

/// One shard's report.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardReport {
    /// Where it stands.
    pub state: ShardState,
    /// Layers of the shard folded (by its latest run or in its newest checkpoint).
    pub done: usize,
    /// Its layers.
    pub layers: usize,
    /// Seconds left by its latest run's plan and rate ([`crate::job::status::seconds_left`]).
    pub eta_s: Option<f64>,
}

/// Where every shard of `plan` stands, each with its checked result when it is done.
fn survey(dir: &Path, plan: &ShardPlan) -> Vec<(ShardReport, Option<SegmentDone>)> {
    (0..plan.shards.len())
        .map(|i| {
            let work = shard_dir(dir, i);
            let layers = plan.shards[i].layers;
            let events = EventLog::read(&work);
            let (folded, rate) = latest_run(&events);
            let checkpointed = checkpoint::list(&work).first().map_or(0, |(k, _)| k.0);
            let done = folded.max(Some(checkpointed)).map_or(0, |d| d.saturating_sub(plan.shards[i].offset));
            let (state, result) =
                match (read_result(dir, plan, i), lock::holder(&work), events.last().map(|e| &e.event)) {
                    (Ok(Some(d)), _, _) => (ShardState::Done, Some(d)),
                    (Err(e), _, _) => (ShardState::Damaged(e.to_string()), None),
                    (Ok(None), Some(pid), _) => (ShardState::Running(pid), None),
                    (Ok(None), None, Some(JobEvent::Failed { error })) => (ShardState::Failed(error.clone()), None),
                    (Ok(None), None, _) => (ShardState::Pending, None),
                };
            let done = if result.is_some() { layers } else { done.min(layers) };
            let at = last_fold(&events).unwrap_or((done + plan.shards[i].offset, 0));
            let eta_s = seconds_left(eta(&events, at).as_ref(), rate, layers - done);
            (ShardReport { state, done, layers, eta_s }, result)
        })
        .collect()
}

/// Where every shard of the sharded job in `dir` stands, and the plan.
pub fn shard_status(dir: &Path) -> Result<(ShardPlan, Vec<ShardReport>), Error> {
    let plan = read_plan(dir)?;
    let reports = survey(dir, &plan).into_iter().map(|(report, _)| report).collect();
    Ok((plan, reports))
}

/// What `assemble` wrote.
pub struct Assembled {
    /// The statement.
    pub statement: Statement,
    /// `proof.bin`'s size.
    pub proof_bytes: usize,
    /// Seconds verifying the linked proof before writing it.
    pub check_seconds: f64,
}

/// Checks every shard of the sharded job in `dir` against its plan and writes the proof
/// directory (`statement.json`, `proof.bin`) into `dir`. Names every shard that
/// is missing, failed, damaged or foreign; writes nothing unless all shards verify.
pub fn assemble(dir: &Path, cache: &Path) -> Result<Assembled, Error> {
    let plan = read_plan(dir)?;
    let mut problems = Vec::new();
    let mut done = Vec::new();
    for (i, (report, result)) in survey(dir, &plan).into_iter().enumerate() {
        match &report.state {
            ShardState::Done => done.extend(result),
            ShardState::Damaged(reason) => problems.push(format!("shard {i} is damaged or foreign: {reason}")),
            ShardState::Running(pid) => problems.push(format!("shard {i} is still being proven (process {pid})")),
            ShardState::Failed(e) => problems.push(format!("shard {i} failed: {e}")),
            ShardState::Pending => {
                problems.push(format!("shard {i} is missing ({} of {} layers folded)", report.done, report.layers))
            }
        }
    }
    if !problems.is_empty() {
        return Err(JobError::ShardsNotReady { dir: dir.into(), problems }.into());
    }
    let secret = crate::job::secret::JobSecret::read(dir)?;
    let archs: Vec<_> = (0..plan.shards.len()).map(|i| plan.arch(i).clone()).collect();
    let input = InputStatement {
        commitment: plan.shards[0].start.activations,
        values: plan.job.public_input.then(|| secret.input.clone()),
    };
    let last = done.last().expect("a plan has a shard");
    let (output, blind) = (last.activations.clone(), last.blind);
    let classifier = plan.job.model.load(dir)?.source().is_classifier();
    let (statement, proof, check_seconds) =
        finish(dir, cache, &archs, done, None, None, input, Some((&output, blind, classifier)))?;
    EventLog::new(dir).append(JobEvent::Compressed { proof_bytes: proof.len(), segments: statement.segments.len() })?;
    Ok(Assembled { statement, proof_bytes: proof.len(), check_seconds })
}
