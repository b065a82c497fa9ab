//! A GPT proving job: a directory holding what the job proves (`gpt-job.json`: the model
//! commitment, the tokens and the checkpoint policy, public), its secret progress
//! (`gpt-progress.bin`, owner-only: the blinds, each finished segment's proof, and the
//! blocks' folded proof part-way; written after every segment and, inside the blocks'
//! segment, as the checkpoint policy says and once more before its compression) and, when
//! done, `statement.json` and `proof.bin` for the verifier. Run the same request again and
//! it resumes where the progress stands (a kill loses at most one checkpoint interval of
//! folding, or a compression under way); a finished job is not proven again; a directory of
//! another request is refused.

use super::lock::JobLock;
use super::manifest::CheckpointPolicy;
use super::JobError;
use super::DEFAULT_CHECKPOINT_POLICY;
use crate::artifact::{self, Kind};
use crate::error::Error;
use crate::gpt::{encode_gpt_proof, GptStatement, SEGMENT_NAMES};
use crate::model::gpt_file::GptModel;
use crate::prove::gpt::{prove_from, segment_constraints, GptProgress, GptTimings, ProgressSink, SegmentKeys};
use fold_ml_verify::architecture::digest32;
use fold_ml_verify::fsutil::{create_private_dir, write_atomic, write_atomic_with};
use nova_snark::digest::SimpleDigestible;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `format` tag of `gpt-job.json`.
pub const GPT_JOB_FORMAT: &str = "fold-ml gpt job";

/// What a GPT job proves (public: `gpt-job.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptJob {
    /// Always [`GPT_JOB_FORMAT`].
    pub format: String,
    /// The model file (for `resume`).
    pub model_file: PathBuf,
    /// The model commitment.
    #[serde(with = "crate::field::hex_serde")]
    pub model_commitment: crate::F,
    /// The prompt's token ids.
    pub tokens: Vec<u16>,
    /// When the blocks' folded proof is saved (`layers` counts blocks).
    #[serde(default = "default_policy")]
    pub checkpoint_every: CheckpointPolicy,
}

fn default_policy() -> CheckpointPolicy {
    DEFAULT_CHECKPOINT_POLICY
}

/// What the progress file is bound to: the model and the prompt (not the model file's
/// path, so a job moves to another machine).
#[derive(Serialize)]
struct ProgressId<'a> {
    model_commitment: [u8; 32],
    tokens: &'a [u16],
}

impl SimpleDigestible for ProgressId<'_> {}

/// A request to prove a GPT on a prompt.
pub struct GptRequest<'a> {
    /// The model.
    pub model: &'a GptModel,
    /// Where it was read from.
    pub model_file: PathBuf,
    /// The prompt's token ids.
    pub tokens: Vec<u16>,
    /// The prover's parameter cache.
    pub cache_dir: PathBuf,
    /// When to save the blocks' folded proof (`None`: as the job recorded, or the default).
    pub checkpoint_every: Option<CheckpointPolicy>,
    /// Refuse to start when a segment's estimated peak memory exceeds this many MiB.
    pub memory_limit_mib: Option<u64>,
    /// Discard the progress and start again.
    pub restart: bool,
}

/// What happened in a GPT job.
pub enum GptEvent {
    /// Resuming after `done` finished segments (and `blocks` folded blocks of the next).
    Resumed {
        /// Segments proven before.
        done: usize,
        /// Blocks folded before, in the blocks' segment.
        blocks: usize,
    },
    /// The progress file could not be used (why); the job starts from the first segment.
    ProgressIgnored {
        /// Why.
        why: String,
    },
    /// The saved fold of the blocks could not be used (why); they are folded again.
    FoldDiscarded {
        /// Why.
        why: String,
    },
    /// `blocks` of `total` blocks are folded.
    Folded {
        /// Blocks folded.
        blocks: usize,
        /// Blocks of the model.
        total: usize,
    },
    /// The blocks' folded proof through `blocks` blocks was saved (`bytes`, in `seconds`).
    FoldSaved {
        /// Blocks it holds.
        blocks: usize,
        /// Size of the progress file.
        bytes: u64,
        /// Seconds writing it.
        seconds: f64,
    },
    /// Segment `j`'s keys are ready (loaded or set up and cached), after `seconds`.
    KeysReady {
        /// The segment.
        segment: usize,
        /// Seconds.
        seconds: f64,
    },
    /// Segment `j` is proven and the progress saved.
    Proven {
        /// The segment.
        segment: usize,
    },
}

/// How a GPT job ended.
pub enum GptOutcome {
    /// It had been proven before.
    AlreadyComplete(Box<GptStatement>),
    /// Proven now.
    Proven {
        /// What it proves.
        statement: Box<GptStatement>,
        /// Bytes of `proof.bin`.
        proof_bytes: usize,
        /// Folding and compression per segment (0 for those proven before a resumption).
        timings: GptTimings,
        /// Seconds setting up or loading keys.
        keys_seconds: f64,
    },
}

/// Environment variable of the crash test hook (feature `test-hooks` only): the process
/// aborts (as `kill -9` would) right after saving the progress of this segment (0, 1, 2).
pub const ABORT_HOOK_ENV: &str = "FOLD_ML_TEST_ABORT_AFTER_GPT_SEGMENT";

/// Environment variable of the crash test hook (feature `test-hooks` only): the process
/// aborts right after saving the blocks' fold through this many blocks.
pub const ABORT_BLOCK_HOOK_ENV: &str = "FOLD_ML_TEST_ABORT_AFTER_GPT_BLOCK";

const JOB: &str = "gpt-job.json";
const PROGRESS: &str = "gpt-progress.bin";

/// Runs (or resumes, or finds finished) the GPT job `req` in `dir`.
pub fn run_gpt(dir: &Path, req: &GptRequest, event: &mut dyn FnMut(GptEvent)) -> Result<GptOutcome, Error> {
    let embed = &req.model.q.embed_spec;
    if req.tokens.len() != embed.tokens || req.tokens.iter().any(|&t| usize::from(t) >= embed.vocab) {
        let reason =
            format!("the model takes {} tokens below {} (ids), got {:?}", embed.tokens, embed.vocab, req.tokens);
        return Err(Error::bad_input("the prompt", reason));
    }
    let model_commitment = req.model.model_commitment().map_err(|r| Error::bad_input("GPT model", r))?;
    let mut job = GptJob {
        format: GPT_JOB_FORMAT.into(),
        model_file: req.model_file.clone(),
        model_commitment,
        tokens: req.tokens.clone(),
        checkpoint_every: req.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_POLICY),
    };
    create_private_dir(dir)?;
    let _lock = JobLock::acquire(dir)?;
    let same = |found: &GptJob| found.model_commitment == model_commitment && found.tokens == req.tokens;
    if let Some(found) = read_job(dir)? {
        if req.checkpoint_every.is_none() && same(&found) {
            job.checkpoint_every = found.checkpoint_every;
        }
        if !same(&found) && !req.restart {
            return Err(Error::bad_input(
                dir.display().to_string(),
                "holds a GPT job for another model or prompt; choose another --job (or --restart to discard it)",
            ));
        }
        if same(&found) && !req.restart {
            if let Some(statement) = finished(dir)? {
                return Ok(GptOutcome::AlreadyComplete(Box::new(statement)));
            }
        }
    }
    if let Some(limit) = req.memory_limit_mib {
        memory_check(&req.model.architecture(), limit)?;
    }
    for stale in ["statement.json", "proof.bin"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    write_atomic(&dir.join(JOB), &serde_json::to_vec_pretty(&job).expect("a job serializes"), false)?;
    let id = digest32(&ProgressId { model_commitment: crate::field::to_bytes(&model_commitment), tokens: &job.tokens });
    let progress_path = dir.join(PROGRESS);
    let blocks = req.model.q.blocks.len();
    let progress = match req.restart || !progress_path.exists() {
        true => None,
        false => match artifact::read_from::<GptProgress>(Kind::Checkpoint, &id, &progress_path) {
            Ok(p) if p.fits(blocks) && p.tokens == req.tokens => Some(p),
            Ok(_) => {
                event(GptEvent::ProgressIgnored { why: "it was made for another model or prompt".into() });
                None
            }
            Err(e) => {
                event(GptEvent::ProgressIgnored { why: e.to_string() });
                None
            }
        },
    };
    let event = std::cell::RefCell::new(event);
    let progress = match progress {
        Some(p) => {
            let folded = p.folding.as_ref().map_or(0, |f| f.blocks);
            (event.borrow_mut())(GptEvent::Resumed { done: p.done.len(), blocks: folded });
            p
        }
        None => GptProgress::start(&req.tokens, blocks),
    };
    let folded = progress.folding.as_ref().map_or(0, |f| f.blocks);
    let architecture = req.model.architecture();
    let segments = architecture.segments();
    let mut keys_seconds = 0.0;
    let mut keys = |j: usize| {
        let t = Instant::now();
        let k = SegmentKeys::cached(&req.cache_dir, &segments[j]);
        keys_seconds += t.elapsed().as_secs_f64();
        (event.borrow_mut())(GptEvent::KeysReady { segment: j, seconds: t.elapsed().as_secs_f64() });
        k
    };
    let mut sink =
        JobSink { path: &progress_path, id, policy: job.checkpoint_every, last: (folded, None), blocks, event: &event };
    let (proof, timings) = prove_from(&req.model.q, req.model.salt, progress, &mut keys, &mut sink)?;
    let bytes =
        encode_gpt_proof(&architecture, &proof.proofs).map_err(|e| Error::artifact(dir.join("proof.bin"), e))?;
    write_atomic(&dir.join("proof.bin"), &bytes, false)?;
    let json = serde_json::to_vec_pretty(&proof.statement).expect("a statement serializes");
    write_atomic(&dir.join("statement.json"), &json, false)?;
    let _ = std::fs::remove_file(&progress_path);
    Ok(GptOutcome::Proven { statement: Box::new(proof.statement), proof_bytes: bytes.len(), timings, keys_seconds })
}

/// Refuses a GPT whose largest step is estimated to need more than `limit_mib` (the cost
/// model's peak for a step of its constraints, Nova's verifier circuit included).
fn memory_check(arch: &crate::gpt::GptArchitecture, limit_mib: u64) -> Result<(), Error> {
    use crate::prove::plan::{estimate_steps, NOVA_PRIMARY_OVERHEAD};
    for (j, c) in segment_constraints(arch)?.into_iter().enumerate() {
        let c = c + NOVA_PRIMARY_OVERHEAD;
        let estimated_mib = estimate_steps(c, 1).peak_mib.ceil() as u64;
        if estimated_mib > limit_mib {
            let segment = SEGMENT_NAMES[j];
            return Err(JobError::GptMemory { segment, constraints: c, estimated_mib, available_mib: limit_mib }.into());
        }
    }
    Ok(())
}

/// Writes the job's progress: after every segment, and the blocks' fold when the policy
/// says it is due and once it holds every block (before the long compression).
struct JobSink<'a, 'e> {
    path: &'a Path,
    id: [u8; 32],
    policy: CheckpointPolicy,
    /// Blocks folded at the last write (or the start), and when that fold was written (or,
    /// after a segment's write or the start, when this run folds its first block: loading
    /// keys is not folding to lose).
    last: (usize, Option<Instant>),
    blocks: usize,
    event: &'a std::cell::RefCell<&'e mut dyn FnMut(GptEvent)>,
}

impl ProgressSink for JobSink<'_, '_> {
    fn save(&mut self, p: &GptProgress) -> Result<(), Error> {
        let folded = p.folding.as_ref().map(|f| f.blocks);
        if let Some(done) = folded {
            (self.event.borrow_mut())(GptEvent::Folded { blocks: done, total: self.blocks });
            let since = *self.last.1.get_or_insert_with(Instant::now);
            if !self.policy.due(done - self.last.0, since) && done < self.blocks {
                return Ok(());
            }
        }
        let t = Instant::now();
        let bytes = write_atomic_with(self.path, true, |out| artifact::write_to(Kind::Checkpoint, &self.id, p, out))?;
        let seconds = t.elapsed().as_secs_f64();
        let event = match folded {
            Some(blocks) => GptEvent::FoldSaved { blocks, bytes, seconds },
            None => GptEvent::Proven { segment: p.done.len() - 1 },
        };
        (self.event.borrow_mut())(event);
        self.last = (folded.unwrap_or(0), folded.map(|_| Instant::now()));
        #[cfg(feature = "test-hooks")]
        {
            let hook = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
            let (env, at) = match folded {
                Some(blocks) => (ABORT_BLOCK_HOOK_ENV, blocks),
                None => (ABORT_HOOK_ENV, p.done.len() - 1),
            };
            if hook(env) == Some(at) {
                std::process::abort();
            }
        }
        Ok(())
    }

    fn discarded(&mut self, why: &str) {
        (self.event.borrow_mut())(GptEvent::FoldDiscarded { why: why.to_string() });
    }
}

/// The job recorded in `dir`, if any.
pub fn read_job(dir: &Path) -> Result<Option<GptJob>, Error> {
    let path = dir.join(JOB);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(path.clone(), e))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::bad_input(path.display().to_string(), e.to_string()))
}

/// The finished statement in `dir`, if both result files are there.
fn finished(dir: &Path) -> Result<Option<GptStatement>, Error> {
    let path = dir.join("statement.json");
    if !path.exists() || !dir.join("proof.bin").exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(path.clone(), e))?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// A line per segment for a finished job's report.
pub fn segment_lines(t: &GptTimings) -> Vec<String> {
    SEGMENT_NAMES
        .iter()
        .enumerate()
        .map(|(j, name)| match t.fold[j] + t.compress[j] > 0.0 {
            false => format!("{name:<10} proven before this run"),
            true => format!("{name:<10} fold {:7.2} s, compress {:7.1} s", t.fold[j], t.compress[j]),
        })
        .collect()
}
