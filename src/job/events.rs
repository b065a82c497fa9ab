//! The job's machine-readable event log: `events.jsonl`, one JSON object per line
//! (`{"t": unix seconds, "event": ..., ...}`), appended and never rewritten.

use crate::error::Error;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends events to a job's log.
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    /// The log of the job in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { path: dir.join("events.jsonl") }
    }

    /// Appends `{"t", "event": name, ...fields}`.
    pub fn append(&self, name: &str, fields: Value) -> Result<(), Error> {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let mut line = json!({ "t": t, "event": name });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let io = |source| Error::Io { path: self.path.clone(), source };
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        writeln!(f, "{line}").map_err(io)
    }

    /// Every well-formed event in the log (a torn last line is skipped).
    pub fn read(dir: &Path) -> Vec<Value> {
        std::fs::read_to_string(dir.join("events.jsonl"))
            .map(|s| s.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
            .unwrap_or_default()
    }
}
