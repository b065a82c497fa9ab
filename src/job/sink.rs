//! The job's [`CheckpointSink`]: writes a crash-safe checkpoint when the policy says it is
//! due (and always at the end of a segment), and logs every fold and checkpoint.

use super::checkpoint::{self, Checkpoint};
use super::events::{EventLog, JobEvent};
use super::manifest::CheckpointPolicy;
use crate::error::Error;
use crate::prove::segment::{CheckpointSink, Persisted, SegmentTask};
use crate::prove::Progress;
use std::path::Path;
use std::time::Instant;

/// Checkpoints of one segment of a job.
pub struct JobCheckpoints<'a> {
    dir: &'a Path,
    job_digest: [u8; 32],
    arch_digest: [u8; 32],
    policy: CheckpointPolicy,
    /// Layers of the segment and the time at the last checkpoint (or the start).
    last: (usize, Instant),
    log: &'a EventLog,
}

impl<'a> JobCheckpoints<'a> {
    /// A sink for a segment whose folding starts (or resumes) at `layers_done`.
    pub fn new(
        dir: &'a Path,
        job_digest: [u8; 32],
        arch_digest: [u8; 32],
        policy: CheckpointPolicy,
        layers_done: usize,
        log: &'a EventLog,
    ) -> Self {
        Self { dir, job_digest, arch_digest, policy, last: (layers_done, Instant::now()), log }
    }
}

impl CheckpointSink for JobCheckpoints<'_> {
    fn after_fold(&mut self, task: &SegmentTask<'_>, p: &Progress) -> Result<Option<Persisted>, Error> {
        let total_done = task.layer_offset + p.layers_done;
        let tile = p.in_layer.as_ref().map(|l| [l.tiles_done, task.arch.tiles()]);
        self.log.append(JobEvent::Folded { done: total_done, total: task.model_layers, tile })?;
        if !self.policy.due(p.layers_done - self.last.0, self.last.1) && p.layers_done < task.layers.num_layers() {
            return Ok(None);
        }
        let t = Instant::now();
        let ckpt = Checkpoint {
            job_digest: self.job_digest,
            segment: task.index,
            layers_done: p.layers_done,
            state: p.state.to_vec(),
            activations: p.activations.clone(),
            blind: p.blind,
            snark: p.snark.clone().ok_or_else(|| crate::prove::bad("checkpoint", "no layer was folded".into()))?,
            in_layer: p.in_layer.clone(),
        };
        let (path, bytes) = checkpoint::write(self.dir, &self.arch_digest, total_done, &ckpt)?;
        let seconds = t.elapsed().as_secs_f64();
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let tiles = p.in_layer.as_ref().map_or(0, |l| l.tiles_done);
        self.log.append(JobEvent::Checkpoint { layers: total_done, tiles, bytes, seconds, file })?;
        self.last = (p.layers_done, Instant::now());
        Ok(Some(Persisted { bytes, seconds }))
    }
}
