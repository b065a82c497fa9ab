//! The proving driver: streams the model one layer at a time into Nova IVC, then
//! compresses. Memory holds one layer's witness, the folded instance and the parameters,
//! whatever the depth. Job directories, checkpoints and resumption live in [`crate::job`].

pub mod gpt;
pub mod keys;
pub mod plan;
pub mod segment;

use crate::artifact::{self, Kind};
use crate::error::Error;
use crate::model::{Architecture, ModelSource};
use crate::nova::{CompressedSnark, ProverKey, PublicParams, RecursiveSnark, VerifierKey};
use crate::statement::Statement;
use ff::Field;
use fold_ml_circuits::layer::{LayerStep, StepWitness};
use fold_ml_circuits::quant::check_activations;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::{Step, Tiling};
use fold_ml_circuits::tile::{TileState, TileWitness};
use fold_ml_circuits::F;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Progress reported while proving.
#[derive(Clone, Debug)]
pub enum Event {
    /// Parameters are ready.
    KeysReady {
        /// Loaded from the cache (else set up now).
        cached: bool,
        /// Seconds it took.
        seconds: f64,
        /// Constraints per fold (primary, secondary).
        constraints: (usize, usize),
    },
    /// Proving continues from a checkpoint.
    Resumed {
        /// Layers already folded.
        from: usize,
        /// Tiles of the next layer already folded.
        tiles: usize,
    },
    /// A damaged or foreign checkpoint was skipped.
    CheckpointSkipped {
        /// Its layer count.
        layers: usize,
        /// Why.
        reason: String,
    },
    /// A layer, or a tile of a tiled layer, was folded.
    Folded {
        /// Layers folded so far.
        done: usize,
        /// Total layers.
        total: usize,
        /// Tiles of the next layer folded so far, and its tile count (a tiled layer part-way).
        tile: Option<(usize, usize)>,
    },
    /// A checkpoint is durable.
    Checkpointed {
        /// Layers it covers.
        layers: usize,
        /// Tiles of the next layer it covers.
        tiles: usize,
        /// Its size in bytes.
        bytes: usize,
        /// Seconds spent writing it.
        seconds: f64,
    },
    /// Folding of a segment starts.
    SegmentStarted {
        /// Its index.
        index: usize,
        /// Segments in the model.
        total: usize,
        /// Its layers.
        layers: usize,
        /// Layers before it.
        offset: usize,
    },
    /// Compression of the current segment started.
    Compressing,
    /// A new job's segments are planned (tilings measured: minutes for ResNet-18).
    Planned {
        /// Segments.
        segments: usize,
        /// Folds in all.
        folds: usize,
        /// Seconds planning.
        seconds: f64,
    },
}

/// Wall-clock seconds of each phase of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Parameter setup or load.
    pub setup: f64,
    /// Folding (this run's layers).
    pub fold: f64,
    /// Writing checkpoints.
    pub checkpoint: f64,
    /// Compression.
    pub compress: f64,
    /// Self-check of the compressed proof.
    pub self_check: f64,
}

/// A finished proof.
pub struct Proven {
    /// The public statement.
    pub statement: Statement,
    /// `proof.bin` bytes.
    pub proof: Vec<u8>,
    /// Phase timings of this run.
    pub timings: Timings,
    /// Layers folded by this run (fewer than the total after a resume).
    pub layers_folded: usize,
    /// Constraints per fold (primary, secondary).
    pub constraints: (usize, usize),
}

/// Where folding of a segment stands: the proof so far and what is needed to continue.
pub struct Progress {
    /// Layers of the segment folded.
    pub layers_done: usize,
    /// IVC state after them.
    pub state: StepState,
    /// Activations after them.
    pub activations: Vec<u8>,
    /// Blind of the activation commitment in `state`.
    pub blind: F,
    /// The folded proof (None before the first layer).
    pub snark: Option<RecursiveSnark>,
    /// Tiles of the next layer folded, when a tiled layer is under way.
    pub in_layer: Option<InLayer>,
}

/// A tiled layer part-way: the tiles folded and the state after them. The layer's input
/// is [`Progress::activations`] (under [`Progress::blind`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InLayer {
    /// Tiles folded.
    pub tiles_done: usize,
    /// The blind the layer's output is committed under (fixed by its first tile).
    pub blind_out: F,
    /// Nova's state after them.
    pub state: Vec<F>,
}

pub(crate) fn bad(what: &str, reason: String) -> Error {
    Error::bad_input(what, reason)
}

/// Checks that a model and input can be proven, before any expensive work.
pub fn check_model_and_input(model: &dyn ModelSource, input: &[u8]) -> Result<(), Error> {
    let segments = model.segments();
    let specs: Vec<_> = segments.iter().map(|s| (s.spec(), s.num_layers())).collect();
    fold_ml_circuits::layer::check_chain(specs.iter().map(|(spec, n)| (spec, *n, spec.num_stages())))
        .map_err(|e| bad("model", e.to_string()))?;
    let n = segments[0].spec().num_inputs();
    if input.len() != n {
        return Err(bad("input", format!("has {} values, the model takes {n}", input.len())));
    }
    check_activations(input).map_err(|e| bad("input", e.to_string()))
}

pub use fold_ml_verify::statement::num_steps;

/// A step's witness, built ahead of the fold that consumes it.
struct Prepared {
    step: Step,
    first_layer: usize,
    blind_out: F,
    /// The layer's output, with its last tile.
    output: Option<Vec<u8>>,
}

type Sender = std::sync::mpsc::SyncSender<Result<Prepared, Error>>;

/// Builds the witnesses of the remaining steps in order (native maths only).
fn prepare_steps(task: &segment::SegmentTask<'_>, start: (usize, Vec<u8>, F, Option<InLayer>), tx: Sender) {
    let (mut layers_done, mut activations, mut blind, in_layer) = start;
    let (model, layers_per_step, salt, end_blind) = (task.layers, task.arch.layers_per_step, task.salt, task.end_blind);
    let spec = &task.arch.block;
    let n = model.num_layers();
    if let Some(tiling) = task.arch.tiling {
        return prepare_tiles(task, tiling, (layers_done, activations, blind, in_layer), tx);
    }
    while layers_done < n {
        let end = (layers_done + layers_per_step).min(n);
        // Every output is committed under a fresh blind, the segment's output under the
        // blind fixed up front: a public output is revealed with its blind in the
        // statement, a prefix's stays hidden.
        let blind_out = if end == n { end_blind } else { F::random(OsRng) };
        let layers = (layers_done..end).map(|i| model.layer(i)).collect();
        let witness = StepWitness { input: activations, layers, blind_in: blind, blind_out, salt };
        let step = LayerStep::multi(spec.clone(), layers_per_step, witness)
            .map_err(|e| bad(&format!("model layers {layers_done}..{end}"), e.to_string()));
        let next = step.as_ref().map(|s| s.output().to_vec()).unwrap_or_default();
        let failed = step.is_err();
        let prepared =
            step.map(|s| Prepared { step: Step::Layer(s), first_layer: layers_done, blind_out, output: None });
        if tx.send(prepared).is_err() || failed {
            return; // the folding side stopped, or this step is unprovable
        }
        (layers_done, activations, blind) = (end, next, blind_out);
    }
}

/// [`prepare_steps`] of a tiled segment: per block (one or two layers), its output
/// natively, then its tiles cut from its input (one block's input and output in memory,
/// whatever the tile count).
fn prepare_tiles(
    task: &segment::SegmentTask<'_>,
    tiling: Tiling,
    start: (usize, Vec<u8>, F, Option<InLayer>),
    tx: Sender,
) {
    let (mut layers_done, mut activations, mut blind, mut in_layer) = start;
    let n = task.layers.num_layers();
    let block = &task.arch.block;
    let tiles = task.arch.tiles();
    if let Err(e) = tiling.check(block) {
        return drop(tx.send(Err(bad("model", e.to_string()))));
    }
    let stages = block.num_stages();
    while layers_done < n {
        let at = |e: fold_ml_circuits::quant::QuantError| bad(&format!("model layer {layers_done}"), e.to_string());
        let weights: Vec<_> = (layers_done..layers_done + stages).map(|l| task.layers.layer(l)).collect();
        let (first_tile, blind_out) = match in_layer.take() {
            Some(l) => (l.tiles_done, l.blind_out),
            None if layers_done + stages >= n => (0, task.end_blind),
            None => (0, F::random(OsRng)),
        };
        let output = match fold_ml_circuits::layer::block_native(block, &activations, &weights) {
            Ok(output) => output,
            Err(e) => return drop(tx.send(Err(at(e)))),
        };
        let mut weights = weights.into_iter();
        let (Some(layer_weights), second_weights) = (weights.next(), weights.next()) else {
            return drop(tx.send(Err(bad("model", "a tiled block without layers".into()))));
        };
        let cache = Default::default();
        let witness = TileWitness { layer_weights, second_weights, blind_in: blind, blind_out, salt: task.salt, cache };
        for t in first_tile..tiles {
            let step = Step::tile(block, tiling, t, &activations, &witness).map_err(at);
            let failed = step.is_err();
            let last = (t + 1 == tiles).then(|| output.clone());
            let prepared = step.map(|step| Prepared { step, first_layer: layers_done, blind_out, output: last });
            if tx.send(prepared).is_err() || failed {
                return;
            }
        }
        (layers_done, activations, blind) = (layers_done + stages, output, blind_out);
    }
}

/// Folds the remaining layers of `task` from `progress`, calling `after_fold` after each
/// step (it may write a checkpoint). The next step's witness is computed on another thread
/// while the current step folds.
pub fn fold_layers(
    pp: &PublicParams,
    task: &segment::SegmentTask<'_>,
    mut progress: Progress,
    after_fold: &mut dyn FnMut(&Progress) -> Result<(), Error>,
) -> Result<Progress, Error> {
    let (layer_offset, z0) = (task.layer_offset, task.arch.z(&task.start.state));
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let start = (progress.layers_done, progress.activations.clone(), progress.blind, progress.in_layer.clone());
    std::thread::scope(|scope| {
        scope.spawn(move || prepare_steps(task, start, tx));
        // Owned by this closure: an early return drops it, which unblocks the producer,
        // so the scope can join it (a borrowed receiver would deadlock on error).
        let rx = rx;
        for prepared in rx.iter() {
            let Prepared { step, first_layer, blind_out, output } = prepared?;
            let at_layer = |source| Error::AtLayer { layer: layer_offset + first_layer, source };
            match progress.snark.as_mut() {
                None => {
                    let mut s = RecursiveSnark::new(pp, &step, &z0).map_err(at_layer)?;
                    // Nova's constructor already ran step 0; its first prove_step only counts it.
                    s.prove_step(pp, &step).map_err(at_layer)?;
                    progress.snark = Some(s);
                }
                Some(s) => s.prove_step(pp, &step).map_err(at_layer)?,
            }
            match &step {
                Step::Layer(s) => {
                    progress.state = s.next_state(&progress.state);
                    progress.activations = s.output().to_vec();
                    progress.blind = blind_out;
                    progress.layers_done = first_layer + s.layers_applied();
                }
                tiled => {
                    let z = match &progress.in_layer {
                        Some(l) => TileState::from_z(&l.state).expect("a state this prover wrote"),
                        None => TileState::boundary(progress.state),
                    };
                    let (tile, stages, next) = tiled.tile_transition(&z).expect("a tile step");
                    match output {
                        Some(output) => {
                            progress.state = next.base;
                            progress.activations = output;
                            progress.blind = blind_out;
                            progress.layers_done = first_layer + stages;
                            progress.in_layer = None;
                        }
                        None => {
                            let tiles_done = tile + 1;
                            progress.in_layer = Some(InLayer { tiles_done, blind_out, state: next.to_vec() });
                        }
                    }
                }
            }
            after_fold(&progress)?;
        }
        Ok(progress)
    })
}

/// Compresses a segment's folded proof into a zero-knowledge proof.
pub fn compress_segment(pp: &PublicParams, pk: &ProverKey, snark: &RecursiveSnark) -> Result<CompressedSnark, Error> {
    CompressedSnark::prove(pp, pk, snark).map_err(|source| Error::nova("compression", source))
}

/// Encodes the segment proofs of `statement` as `proof.bin` and checks them with the
/// verifier keys (`key(k)`: the `k`-th distinct architecture's, fetched one at a time)
/// before anything is written: a proof that does not verify is a bug. The SNARKs of the
/// segments `checked` says were verified when they were compressed (with the same states)
/// are not verified again; the statement and the proof's framing always are.
pub fn seal(
    statement: &Statement,
    proofs: &[CompressedSnark],
    key: &mut dyn FnMut(usize) -> Result<VerifierKey, Error>,
    checked: &[bool],
) -> Result<(Vec<u8>, f64), Error> {
    let proof = artifact::encode(Kind::Proof, &statement.architectures_digest(), &proofs)
        .map_err(|reason| Error::artifact("proof.bin", reason))?;
    let start = Instant::now();
    let checked = |j: usize| checked.get(j).copied().unwrap_or(false);
    fold_ml_verify::verify::verify_proof_except(statement, &proof, key, &checked)?
        .map_err(|e| self_check_failed("self-check of the compressed proof", e))?;
    Ok((proof, start.elapsed().as_secs_f64()))
}

/// Checks a segment's compressed proof with its verifier key right after compressing it
/// (the same check the verifier makes, from the boundary state `start` to `end`): a proof
/// that does not verify is a bug, caught before anything is written. Returns the seconds.
pub fn check_segment(
    arch: &Architecture,
    (j, layers): (usize, usize),
    (start, end): (&StepState, &StepState),
    proof: &CompressedSnark,
    vk: &VerifierKey,
) -> Result<f64, Error> {
    let t = Instant::now();
    fold_ml_verify::verify::verify_segment_states(arch, (j, layers), (start, end), proof, vk)
        .map_err(|e| self_check_failed("self-check of a segment's compressed proof", e))?;
    Ok(t.elapsed().as_secs_f64())
}

fn self_check_failed(stage: &'static str, e: crate::VerifyError) -> Error {
    Error::nova(stage, nova_snark::errors::NovaError::ProofVerifyError { reason: e.to_string() })
}
