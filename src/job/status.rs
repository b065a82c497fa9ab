//! `fold-ml status DIR`: where a running or stopped job stands, from its files alone.

use super::events::EventLog;
use super::{checkpoint, lock, read_manifest};
use crate::error::Error;
use serde_json::Value;
use std::path::Path;

/// A job's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    /// Total layers.
    pub total: usize,
    /// Layers folded (by the latest run, or in the newest checkpoint).
    pub done: usize,
    /// Layers in the newest checkpoint file.
    pub last_checkpoint: Option<usize>,
    /// Layers per second of the latest run, if it folded anything.
    pub rate: Option<f64>,
    /// Process proving it now, if any.
    pub running_pid: Option<u32>,
    /// The final proof exists.
    pub finished: bool,
    /// The last event's name.
    pub last_event: Option<String>,
}

impl JobStatus {
    /// Seconds left at the current rate.
    pub fn eta_seconds(&self) -> Option<f64> {
        self.rate.filter(|r| *r > 0.0).map(|r| (self.total - self.done) as f64 / r)
    }
}

/// Reads the status of the job in `dir`.
pub fn status(dir: &Path) -> Result<JobStatus, Error> {
    let manifest = read_manifest(dir)?;
    let events = EventLog::read(dir);
    let last_checkpoint = checkpoint::list(dir).first().map(|(k, _)| *k);
    // The latest run starts at the last "started" or "resumed" event.
    let run_start =
        events.iter().rposition(|e| matches!(e["event"].as_str(), Some("started" | "resumed"))).unwrap_or(0);
    let folds: Vec<&Value> = events[run_start..].iter().filter(|e| e["event"] == "folded").collect();
    let done_in_log = folds.last().and_then(|e| e["done"].as_u64()).map(|d| d as usize);
    let rate = match (folds.first(), folds.last()) {
        (Some(a), Some(b)) if folds.len() > 1 => {
            let dt = b["t"].as_f64().unwrap_or(0.0) - a["t"].as_f64().unwrap_or(0.0);
            (dt > 0.0).then(|| (folds.len() - 1) as f64 / dt)
        }
        _ => None,
    };
    let finished = dir.join("statement.json").exists();
    let total = manifest.job.num_layers;
    Ok(JobStatus {
        total,
        done: if finished { total } else { done_in_log.unwrap_or(0).max(last_checkpoint.unwrap_or(0)) },
        last_checkpoint,
        rate,
        running_pid: lock::holder(dir),
        finished,
        last_event: events.last().and_then(|e| e["event"].as_str()).map(String::from),
    })
}
