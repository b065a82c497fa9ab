//! `fold-ml status DIR`: where a running or stopped job stands, from its files alone.

use super::eta::{eta, position, Eta};
use super::events::{EventLog, JobEvent, Logged};
use super::{checkpoint, lock, read_manifest};
use crate::error::Error;
use std::path::Path;

/// A job's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    /// Total layers.
    pub total: usize,
    /// Layers folded (by the latest run, or in the newest checkpoint).
    pub done: usize,
    /// Layers in the newest checkpoint file, and tiles of the next layer.
    pub last_checkpoint: Option<(usize, usize)>,
    /// Tiles of the next layer folded and its tile count, when a tiled layer is under way.
    pub tile: Option<[usize; 2]>,
    /// Layers per second of the latest run, if it folded anything.
    pub rate: Option<f64>,
    /// Folds done and the time left by the logged plan ([`eta`]; `None` for a job whose
    /// runs logged none).
    pub plan: Option<Eta>,
    /// Process proving it now, if any.
    pub running_pid: Option<u32>,
    /// The final proof exists.
    pub finished: bool,
    /// The last event's name.
    pub last_event: Option<String>,
}

impl JobStatus {
    /// Seconds left: by the logged plan (folds weighed by their size, and the compressions
    /// left), else at the latest run's layers per second.
    pub fn eta_seconds(&self) -> Option<f64> {
        seconds_left(self.plan.as_ref(), self.rate, self.total - self.done)
    }
}

/// Seconds left: by a logged plan, else `layers_left` at `rate` layers per second.
pub(crate) fn seconds_left(plan: Option<&Eta>, rate: Option<f64>, layers_left: usize) -> Option<f64> {
    match plan {
        Some(p) => p.seconds(),
        None => rate.filter(|r| *r > 0.0).map(|r| layers_left as f64 / r),
    }
}

/// Reads the status of the job in `dir`.
pub fn status(dir: &Path) -> Result<JobStatus, Error> {
    let manifest = read_manifest(dir)?;
    let events = EventLog::read(dir);
    let last_checkpoint = checkpoint::list(dir).first().map(|(k, _)| *k);
    let tile = match events.last().map(|e| &e.event) {
        Some(JobEvent::Folded { tile, .. }) => *tile,
        _ => None,
    };
    let (done_in_log, rate) = latest_run(&events);
    let finished = dir.join("statement.json").exists();
    let total = manifest.job.num_layers;
    Ok(JobStatus {
        total,
        done: if finished { total } else { done_in_log.unwrap_or(0).max(last_checkpoint.map_or(0, |k| k.0)) },
        last_checkpoint,
        tile: tile.filter(|_| !finished),
        rate,
        plan: last_fold(&events).or(last_checkpoint).and_then(|at| eta(&events, at)),
        running_pid: lock::holder(dir),
        finished,
        last_event: events.last().map(|e| e.event.name().to_string()),
    })
}

/// Where the last logged fold left the job: layers done, and tiles of the next layer.
pub(crate) fn last_fold(events: &[Logged]) -> Option<(usize, usize)> {
    events.iter().rev().find_map(position)
}

/// The layers folded by the latest run (the events after the last start or resume), and
/// its rate in layers (not folds: a fold covers K layers) per second.
pub(crate) fn latest_run(events: &[Logged]) -> (Option<usize>, Option<f64>) {
    let run_start = events
        .iter()
        .rposition(|e| matches!(e.event, JobEvent::Started { .. } | JobEvent::Resumed { .. }))
        .unwrap_or(0);
    let folds: Vec<(f64, usize)> = events[run_start..]
        .iter()
        .filter_map(|e| match e.event {
            JobEvent::Folded { done, .. } => Some((e.t, done)),
            _ => None,
        })
        .collect();
    let rate = match (folds.first(), folds.last()) {
        (Some(&(t0, d0)), Some(&(t1, d1))) if t1 > t0 && d1 > d0 => Some((d1 - d0) as f64 / (t1 - t0)),
        _ => None,
    };
    (folds.last().map(|&(_, done)| done), rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: f64, event: JobEvent) -> Logged {
        Logged { t, event }
    }

    #[test]
    fn the_rate_counts_layers_not_folds() {
        // K = 4: one fold every 2 s covers 4 layers, so 2 layers/s (not 0.5 folds/s).
        let folded = |t, done| at(t, JobEvent::Folded { done, total: 64, tile: None });
        let events = [
            at(0.0, JobEvent::Started { layers: 64, segments: 1 }),
            folded(10.0, 4),
            folded(12.0, 8),
            folded(14.0, 12),
            at(20.0, JobEvent::Resumed { from: 8, tiles: 0 }),
            folded(30.0, 12),
            folded(32.0, 16),
            folded(34.0, 20),
        ];
        let (done, rate) = latest_run(&events[..4]);
        assert_eq!((done, rate), (Some(12), Some(2.0)));
        // After a resume only the new run counts.
        let (done, rate) = latest_run(&events);
        assert_eq!((done, rate), (Some(20), Some(2.0)));
        assert_eq!(latest_run(&events[..1]), (None, None));
    }
}
