//! Checkpoints: the folded `RecursiveSNARK` after K layers, with the state, activations and
//! blind needed to carry on. A checkpoint holds the folded witness and its blinding: it is
//! secret (written owner-only) and never a proof to hand out — `fold-ml compress --at K`
//! turns one into a shareable zero-knowledge proof.
//!
//! Files are `checkpoints/ckpt-<K>.bin`, written atomically; the previous one is deleted
//! only once the new one is durable. Loading checks the envelope (kind, version, checksum),
//! the job digest, and the consistency of state, step count, activations and blind, before
//! the caller verifies the recursive proof itself.

use crate::artifact::{self, Kind};
use crate::error::{ArtifactError, Error};
use crate::model::Architecture;
use crate::nova::{CompressedSnark, RecursiveSnark};
use crate::prove::InLayer;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::quant::check_activations;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::tile::TileState;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::{read_file, write_atomic, write_atomic_with};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable of the crash test hook (feature `test-hooks` only): the process aborts half-way through
/// writing the checkpoint at this layer count.
pub const CRASH_HOOK_ENV: &str = "FOLD_ML_TEST_ABORT_WRITING_CHECKPOINT";

/// Environment variable of the failing-disk test hook (feature `test-hooks` only): writing the checkpoint at this layer
/// count fails as on a full disk.
pub const FAIL_HOOK_ENV: &str = "FOLD_ML_TEST_FAIL_WRITING_CHECKPOINT";

/// A checkpoint's content.
#[derive(Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Digest of the job identity it belongs to.
    pub job_digest: [u8; 32],
    /// The segment being folded.
    pub segment: usize,
    /// Layers of the segment folded.
    pub layers_done: usize,
    /// IVC state after `layers_done` layers.
    pub state: Vec<F>,
    /// Activations after `layers_done` layers.
    pub activations: Vec<u8>,
    /// Blind of their commitment in `state`.
    pub blind: F,
    /// The folded proof of the first `layers_done` layers (and `in_layer`'s tiles).
    pub snark: RecursiveSnark,
    /// A tiled layer part-way (its input is `activations`).
    pub in_layer: Option<InLayer>,
}

/// Where a checkpoint stands: layers of the model done, and tiles of the next one.
pub type Position = (usize, usize);

impl Checkpoint {
    /// Nova steps its folded proof holds under `arch`: its layers' and the tiles of a
    /// layer under way.
    pub fn steps(&self, arch: &Architecture) -> usize {
        arch.steps(self.layers_done) + self.in_layer.as_ref().map_or(0, |l| l.tiles_done)
    }

    /// Consistency checks that need no public parameters: `segment` has `num_layers`
    /// layers and starts after `offset` layers.
    pub fn check(
        &self,
        job_digest: &[u8; 32],
        segment: usize,
        offset: usize,
        num_layers: usize,
        arch: &Architecture,
    ) -> Result<(), String> {
        if &self.job_digest != job_digest {
            return Err("belongs to another job".into());
        }
        if self.segment != segment {
            return Err(format!("is for segment {}, not {segment}", self.segment));
        }
        let tiles = self.in_layer.as_ref().map_or(0, |l| l.tiles_done);
        if (self.layers_done, tiles) == (0, 0) || self.layers_done > num_layers {
            return Err(format!("claims {} layers of {num_layers}", self.layers_done));
        }
        let steps = self.steps(arch);
        if self.snark.num_steps() != steps {
            return Err(format!(
                "holds {} folds but claims {} layers and {tiles} tiles ({steps} folds)",
                self.snark.num_steps(),
                self.layers_done
            ));
        }
        let z = match (&self.in_layer, arch.tiling) {
            (None, _) => arch.z(&StepState::from_z(&self.state).ok_or("a malformed state")?),
            (Some(l), Some(tiling)) if l.tiles_done < arch.tiles() => {
                let t = TileState::from_z(&l.state).ok_or("a malformed tile state")?;
                let layers = offset + self.layers_done + tiling.layers_before(&arch.block, l.tiles_done);
                if t.tile != l.tiles_done as u64 || t.base.layer != layers as u64 {
                    return Err("tile state differs from its tile count".into());
                }
                l.state.clone()
            }
            (Some(_), _) => return Err("claims a tile of a layer that is not tiled".into()),
        };
        if self.state.len() != 3 || self.snark.outputs() != z.as_slice() {
            return Err("state differs from the folded proof's".into());
        }
        if self.state[0] != F::from((offset + self.layers_done) as u64) {
            return Err("state's layer counter differs from its layer count".into());
        }
        check_activations(&self.activations).map_err(|e| e.to_string())?;
        let block = &arch.block;
        let layout = if self.layers_done == 0 { block.input_layout() } else { block.output_layout() };
        if activation_commitment_native(&self.activations, layout, self.blind) != self.state[2] {
            return Err("activations do not open the state's commitment".into());
        }
        Ok(())
    }
}

/// The checkpoint directory of a job.
pub fn dir(job: &Path) -> PathBuf {
    job.join("checkpoints")
}

fn path_for(job: &Path, (layers, tiles): Position) -> PathBuf {
    match tiles {
        0 => dir(job).join(format!("ckpt-{layers:08}.bin")),
        _ => dir(job).join(format!("ckpt-{layers:08}.{tiles:06}.bin")),
    }
}

/// Checkpoint files by the position they reach (layers of the model, tiles of the next
/// layer), newest first.
pub fn list(job: &Path) -> Vec<(Position, PathBuf)> {
    let mut found: Vec<(Position, PathBuf)> = std::fs::read_dir(dir(job))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_prefix("ckpt-")?.strip_suffix(".bin")?;
            let position = match stem.split_once('.') {
                None => (stem.parse().ok()?, 0),
                Some((k, t)) => (k.parse().ok()?, t.parse().ok().filter(|&t| t > 0)?),
            };
            Some((position, e.path()))
        })
        .collect();
    found.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
    found
}

/// Writes a checkpoint (reaching `layers` layers of the model) durably, then removes all
/// but the previous one.
pub fn write(job: &Path, arch: &[u8; 32], layers: usize, ckpt: &Checkpoint) -> Result<(PathBuf, usize), Error> {
    // Only the owner may even list the secret checkpoints.
    fold_ml_verify::fsutil::create_private_dir(&dir(job))?;
    let path = path_for(job, (layers, ckpt.in_layer.as_ref().map_or(0, |l| l.tiles_done)));
    #[cfg(feature = "test-hooks")]
    test_hooks::before_write(&path, arch, ckpt, layers)?;
    // streamed: a checkpoint holds the folded witness, hundreds of MB for a large fold
    let written = write_atomic_with(&path, true, |out| artifact::write_to(Kind::Checkpoint, arch, ckpt, out))?;
    for (_, old) in list(job).into_iter().skip(2) {
        // Older than the previous checkpoint: no longer needed for a fallback.
        let _ = std::fs::remove_file(old);
    }
    Ok((path, written as usize))
}

/// Reads and decodes one checkpoint file (envelope checks only), streamed.
pub fn read(path: &Path, arch: &[u8; 32]) -> Result<Checkpoint, Error> {
    Ok(artifact::read_from(Kind::Checkpoint, arch, path)?)
}

/// Marks a file as what it is in an error.
pub fn corrupted(path: &Path, reason: String) -> Error {
    Error::artifact(path, ArtifactError::Corrupted(reason))
}

/// A finished segment: its compressed proof and the state it ends in, with the secret
/// activations and blind the next segment starts from. Secret like a checkpoint.
#[derive(Serialize, Deserialize)]
pub struct SegmentDone {
    /// Digest of the job identity it belongs to.
    pub job_digest: [u8; 32],
    /// The segment.
    pub segment: usize,
    /// IVC state at its end.
    pub end: Vec<F>,
    /// Activations at its end.
    pub activations: Vec<u8>,
    /// Blind of their commitment in `end`.
    pub blind: F,
    /// The segment's compressed proof.
    pub proof: CompressedSnark,
    /// Whether this run verified the proof against its verifier key right after compressing
    /// it (never stored: a segment read from disk is checked again at the end).
    #[serde(skip)]
    pub checked: bool,
}

pub(crate) fn segment_path(job: &Path, segment: usize) -> PathBuf {
    job.join("segments").join(format!("seg-{segment:04}.bin"))
}

/// Writes a finished segment durably (owner-only).
pub fn write_segment(job: &Path, arch: &[u8; 32], done: &SegmentDone) -> Result<(), Error> {
    let path = segment_path(job, done.segment);
    let d = job.join("segments");
    std::fs::create_dir_all(&d).map_err(|source| Error::io(d.clone(), source))?;
    let bytes =
        artifact::encode(Kind::Checkpoint, arch, done).map_err(|reason| Error::artifact(path.clone(), reason))?;
    Ok(write_atomic(&path, &bytes, true)?)
}

/// Reads finished segment `segment`: `None` if it was never written; an error if the file
/// is damaged or belongs to another job.
pub fn read_segment(
    job: &Path,
    arch: &Architecture,
    job_digest: &[u8; 32],
    segment: usize,
) -> Result<Option<SegmentDone>, Error> {
    let path = segment_path(job, segment);
    if !path.exists() {
        return Ok(None);
    }
    let done: SegmentDone = artifact::decode(Kind::Checkpoint, &arch.digest(), &read_file(&path)?)
        .map_err(|reason| Error::artifact(path.clone(), reason))?;
    let well_formed = StepState::from_z(&done.end).is_some();
    if &done.job_digest != job_digest || done.segment != segment || !well_formed {
        return Err(corrupted(&path, "belongs to another job or segment".into()));
    }
    if activation_commitment_native(&done.activations, arch.block.output_layout(), done.blind) != done.end[2] {
        return Err(corrupted(&path, "activations do not open the end state's commitment".into()));
    }
    Ok(Some(done))
}

/// Crash and failure injection for the job tests: compiled only with `test-hooks`.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use super::{Checkpoint, CRASH_HOOK_ENV, FAIL_HOOK_ENV};
    use crate::artifact::{self, Kind};
    use crate::error::Error;
    use std::io::Write;
    use std::path::Path;

    fn armed(var: &str, layers: usize) -> bool {
        std::env::var(var).ok().and_then(|v| v.parse::<usize>().ok()) == Some(layers)
    }

    /// Aborts half-way through writing (as `kill -9` would) or fails as a full disk does,
    /// when the hook's variable names this checkpoint.
    pub fn before_write(path: &Path, arch: &[u8; 32], ckpt: &Checkpoint, layers: usize) -> Result<(), Error> {
        if armed(CRASH_HOOK_ENV, layers) {
            let bytes = artifact::encode(Kind::Checkpoint, arch, ckpt).map_err(|r| Error::artifact(path, r))?;
            abort_midway_through_write(path, &bytes);
        }
        if armed(FAIL_HOOK_ENV, layers) {
            let source = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (test hook)");
            return Err(Error::io(path, source));
        }
        Ok(())
    }

    /// Writes the first half of `bytes` to the temporary file a real write of `path` would
    /// use, syncs it, and aborts the process. Never returns.
    fn abort_midway_through_write(path: &Path, bytes: &[u8]) -> ! {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp{}-crash", std::process::id()));
        if let Ok(mut f) = std::fs::File::create(&tmp) {
            let _ = f.write_all(&bytes[..bytes.len() / 2]);
            let _ = f.sync_all();
        }
        std::process::abort()
    }
}
