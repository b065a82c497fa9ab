//! The job's machine-readable event log: `events.jsonl`, one [`Logged`] event per line
//! (`{"t": unix seconds, "event": "folded", ...}`), appended and never rewritten, and read
//! back by `status`. The log is not secret: no event carries a value that depends on the
//! input or the weights.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// A new job: its manifest is written.
    Started {
        /// Layers of the model.
        layers: usize,
        /// Segments of the model.
        segments: usize,
    },
    /// A run's plan (logged when it starts or resumes): what `status` weighs folds by.
    Planned {
        /// Every segment the run proves.
        segments: Vec<super::eta::PlannedSegment>,
    },
    /// A fold is done.
    Folded {
        /// Layers of the model folded so far.
        done: usize,
        /// Layers of the model.
        total: usize,
        /// Tiles of the next layer folded, and its tiles (a tiled layer part-way).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tile: Option<[usize; 2]>,
    },
    /// A checkpoint is durable.
    Checkpoint {
        /// Layers of the model it covers.
        layers: usize,
        /// Tiles of the next layer it covers.
        #[serde(default, skip_serializing_if = "is_zero")]
        tiles: usize,
        /// Its size.
        bytes: usize,
        /// Seconds spent writing it.
        seconds: f64,
        /// Its file name.
        file: Option<String>,
    },
    /// A damaged or foreign checkpoint was skipped.
    CheckpointRejected {
        /// Its layer count.
        layers: usize,
        /// Why.
        reason: String,
    },
    /// A run continues from a checkpoint.
    Resumed {
        /// Layers of the model already folded.
        from: usize,
        /// Tiles of the next layer already folded (0 when it starts whole; absent in logs
        /// written before this field).
        #[serde(default)]
        tiles: usize,
    },
    /// A segment is compressed and kept.
    SegmentCompressed {
        /// The segment.
        segment: usize,
        /// Seconds compressing.
        seconds: f64,
    },
    /// The proof directory is written.
    Compressed {
        /// Size of `proof.bin`.
        proof_bytes: usize,
        /// Segments proven.
        segments: usize,
    },
    /// A prefix proof was made from a checkpoint (`compress --at`).
    PrefixCompressed {
        /// Layers it covers.
        layers: usize,
        /// Its directory's name.
        out: Option<String>,
    },
    /// The run failed ([`Error::public_summary`]: no secret values).
    Failed {
        /// What failed, and where.
        error: String,
    },
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl JobEvent {
    /// The event's name, as in the log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Started { .. } => "started",
            Self::Planned { .. } => "planned",
            Self::Folded { .. } => "folded",
            Self::Checkpoint { .. } => "checkpoint",
            Self::CheckpointRejected { .. } => "checkpoint_rejected",
            Self::Resumed { .. } => "resumed",
            Self::SegmentCompressed { .. } => "segment_compressed",
            Self::Compressed { .. } => "compressed",
            Self::PrefixCompressed { .. } => "prefix_compressed",
            Self::Failed { .. } => "failed",
        }
    }
}

/// An event with its time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// Unix time, seconds.
    pub t: f64,
    /// The event.
    #[serde(flatten)]
    pub event: JobEvent,
}

/// Appends events to a job's log.
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    /// The log of the job in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { path: dir.join("events.jsonl") }
    }

    /// Appends an event, stamped with the current time.
    pub fn append(&self, event: JobEvent) -> Result<(), Error> {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let line = serde_json::to_string(&Logged { t, event }).expect("an event serializes");
        let io = |source| Error::io(self.path.clone(), source);
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        writeln!(f, "{line}").map_err(io)
    }

    /// Every well-formed event in the log (a torn last line is skipped).
    pub fn read(dir: &Path) -> Vec<Logged> {
        std::fs::read_to_string(dir.join("events.jsonl"))
            .map(|s| s.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_log() {
        let dir = std::env::temp_dir().join(format!("fold-ml-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = EventLog::new(&dir);
        let events = [
            JobEvent::Started { layers: 8, segments: 1 },
            JobEvent::Folded { done: 4, total: 8, tile: None },
            JobEvent::Failed { error: "x".into() },
        ];
        for e in &events {
            log.append(e.clone()).unwrap();
        }
        let read: Vec<JobEvent> = EventLog::read(&dir).into_iter().map(|l| l.event).collect();
        assert_eq!(read, events);
        let line = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        assert!(line.starts_with(r#"{"t":"#) && line.contains(r#""event":"started""#), "{line}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
