//! One segment proven from a fixed start: the unit of proving work that a resumable job,
//! a test and (later) a cluster worker all call. A [`SegmentTask`] fixes everything the
//! proof depends on up front — the start state, activations and blind, and the blind of
//! the segment's output — so that the next segment (possibly on another machine) can start
//! from a state known before this one is proven. Folding reports each step to a
//! [`CheckpointSink`], which decides what to persist; this module never touches files.

use super::{compress_segment, fold_layers, Event, Progress};
use crate::error::Error;
use crate::model::{Architecture, LayerSource};
use crate::nova::{CompressedSnark, ProverKey, PublicParams};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use std::time::Instant;

/// Where a segment starts.
#[derive(Clone, Debug)]
pub struct SegmentStart {
    /// The IVC state before its first layer.
    pub state: StepState,
    /// The activations that state commits to.
    pub activations: Vec<u8>,
    /// Their commitment's blind.
    pub blind: F,
}

/// One segment to prove.
pub struct SegmentTask<'a> {
    /// Its index in the model.
    pub index: usize,
    /// Its layers, streamed.
    pub layers: &'a dyn LayerSource,
    /// Its public architecture: the block (with how its tensors are committed), the layers
    /// per step or the tiling.
    pub arch: &'a Architecture,
    /// Layers of the model before it.
    pub layer_offset: usize,
    /// Layers of the whole model (for progress).
    pub model_layers: usize,
    /// The model commitment's salt.
    pub salt: F,
    /// Where it starts.
    pub start: SegmentStart,
    /// The blind of its output commitment (the next segment's start blind).
    pub end_blind: F,
}

/// What a [`CheckpointSink`] persisted.
#[derive(Clone, Copy, Debug)]
pub struct Persisted {
    /// Bytes written.
    pub bytes: usize,
    /// Seconds spent writing.
    pub seconds: f64,
}

/// Receives the folded proof after every step; persists it when it sees fit.
pub trait CheckpointSink {
    /// Called after each fold with the progress so far; says what it persisted, if anything.
    fn after_fold(&mut self, task: &SegmentTask<'_>, progress: &Progress) -> Result<Option<Persisted>, Error>;
}

/// A sink that keeps nothing (tests, and proofs that need no resumption).
pub struct NoCheckpoints;

impl CheckpointSink for NoCheckpoints {
    fn after_fold(&mut self, _: &SegmentTask<'_>, _: &Progress) -> Result<Option<Persisted>, Error> {
        Ok(None)
    }
}

/// A proven segment.
pub struct SegmentProof {
    /// The IVC state at its end.
    pub end: StepState,
    /// The activations at its end.
    pub activations: Vec<u8>,
    /// Their commitment's blind (the task's `end_blind`).
    pub blind: F,
    /// Its compressed proof.
    pub proof: CompressedSnark,
    /// Layers folded by this call (fewer than the segment's after a resume).
    pub layers_folded: usize,
    /// Seconds folding, persisting checkpoints, and compressing.
    pub seconds: (f64, f64, f64),
}

impl SegmentTask<'_> {
    /// The progress of a segment not started yet.
    pub fn fresh(&self) -> Progress {
        Progress {
            layers_done: 0,
            state: self.start.state,
            activations: self.start.activations.clone(),
            blind: self.start.blind,
            snark: None,
            in_layer: None,
        }
    }

    /// Folds the segment from `progress` (its start, or a checkpoint), then compresses it.
    pub fn prove(
        &self,
        pp: &PublicParams,
        pk: &ProverKey,
        progress: Progress,
        sink: &mut dyn CheckpointSink,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<SegmentProof, Error> {
        let first = progress.layers_done;
        let fold_start = Instant::now();
        let mut checkpoint_seconds = 0.0;
        let folded = fold_layers(pp, self, progress, &mut |p| {
            let done = self.layer_offset + p.layers_done;
            let tile = p.in_layer.as_ref().map(|l| (l.tiles_done, self.arch.tiles()));
            on_event(Event::Folded { done, total: self.model_layers, tile });
            if let Some(Persisted { bytes, seconds }) = sink.after_fold(self, p)? {
                checkpoint_seconds += seconds;
                let tiles = tile.map_or(0, |t| t.0);
                on_event(Event::Checkpointed { layers: done, tiles, bytes, seconds });
            }
            Ok(())
        })?;
        let fold_seconds = fold_start.elapsed().as_secs_f64() - checkpoint_seconds;
        on_event(Event::Compressing);
        // Folding's buffers are free now; compression's are of other sizes.
        crate::mem::release_free_memory();
        let snark = folded.snark.as_ref().ok_or_else(|| super::bad("segment", "no layer was folded".into()))?;
        let t = Instant::now();
        let proof = compress_segment(pp, pk, snark)?;
        Ok(SegmentProof {
            end: folded.state,
            activations: folded.activations,
            blind: folded.blind,
            proof,
            layers_folded: self.layers.num_layers() - first,
            seconds: (fold_seconds, checkpoint_seconds, t.elapsed().as_secs_f64()),
        })
    }
}
