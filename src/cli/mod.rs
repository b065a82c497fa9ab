//! The `fold-ml` command line: clap definitions and dispatch. Each command lives in the
//! module that owns it; the library never names a flag, this module maps its typed errors
//! to messages and exit codes (0 success, 1 failure or rejection, 2 usage or input error).

pub mod args;
pub mod gpt;
pub mod job_files;
pub mod model;
pub mod prove;
pub mod shards;

use clap::{Parser, Subcommand};
use fold_ml::error::Error;
use fold_ml::job::{JobError, JobSetting};
use fold_ml_verify::cli as cli_verify;
use std::path::PathBuf;
use std::process::ExitCode;

/// Zero-knowledge proofs of deep neural network inference, one Nova fold per layer.
#[derive(Parser)]
#[command(name = "fold-ml", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Prove a model's inference on an input (resumes the job if it was interrupted).
    Prove(prove::ProveArgs),
    /// Continue an interrupted job from its newest valid checkpoint.
    Resume(prove::ResumeArgs),
    /// Show where a running or stopped job stands.
    Status {
        /// The job directory.
        dir: PathBuf,
    },
    /// Verify a proof directory (same as fold-ml-verify).
    Verify(cli_verify::VerifyArgs),
    /// Verify the recursive proof stored in a checkpoint (the first K layers).
    VerifyCheckpoint(job_files::CheckpointArgs),
    /// Turn a checkpoint into a shareable zero-knowledge proof of the first K layers.
    Compress(job_files::CompressArgs),
    /// Print the model commitment of a model (what a verifier passes to
    /// `--model-commitment`) and what it covers.
    Commit(args::ModelArgs),
    /// As the owner of an input: commit to it under a fresh blind, write the commitment and
    /// its opening to an owner-only file (give it to the prover), and print the commitment
    /// (give it to the verifier).
    CommitInput(model::CommitInputArgs),
    /// Import an ONNX model: check every operator, calibrate the scales on sample inputs,
    /// quantize into segments, report the accuracy against the float model (run by tract),
    /// and write a fold-ml model file for `prove --model`.
    Import(model::ImportArgs),
    /// Before any expensive work: the layer table, constraints per step, folds, and
    /// estimates of proving time, peak memory and artifact sizes.
    Inspect(model::InspectArgs),
    /// Cut a job into shards for several machines: run the model natively, fix every cut's
    /// state, and write a job directory with one task per shard.
    Plan(shards::PlanArgs),
    /// Prove one shard of a planned job (resumable; the index may come from Slurm's
    /// SLURM_ARRAY_TASK_ID or Kubernetes' JOB_COMPLETION_INDEX).
    ProveShard(shards::ProveShardArgs),
    /// Check every shard of a planned job and link them into one statement and proof.
    Assemble(shards::AssembleArgs),
}

/// Exit code of a failed command: 2 for input errors, 1 otherwise.
fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(e) if e.is_input_error() => 2,
        _ => 1,
    }
}

/// The flag (or words) that sets a job setting on this command line.
fn flag(setting: JobSetting) -> &'static str {
    match setting {
        JobSetting::ModelFile => "--model",
        JobSetting::Layers => "--layers",
        JobSetting::ModelKind => "--dense (the model kind)",
        JobSetting::Channels => "--channels",
        JobSetting::Size => "--size",
        JobSetting::Kernel => "--kernel",
        JobSetting::Seed => "--seed (the model)",
        JobSetting::LayersPerStep => "--layers-per-step",
        JobSetting::PublicInput => "--public-input",
        JobSetting::Input => "--input",
        JobSetting::InputCommitment => "--input-commitment",
        JobSetting::Architecture | JobSetting::Parameters => setting.describe(),
    }
}

/// A job's refusal in this command line's words: which flag to change.
fn job_message(e: &JobError) -> String {
    match e {
        JobError::Differs { dir, finished, setting, job, now } => {
            let values =
                if job.is_empty() { "from the job's".to_string() } else { format!("(job: {job}, now: {now})") };
            let d = dir.display();
            match finished {
                true => format!(
                    "{d}: holds a finished job for another request: {} differs {values}; choose another --job",
                    flag(*setting)
                ),
                false => format!("{d}: cannot resume: {} differs {values}", flag(*setting)),
            }
        }
        JobError::AllCheckpointsDamaged { .. } => format!("{e}: run again with --restart"),
        JobError::LayersPerStep { max } => format!("--layers-per-step: must be in 1..={max}"),
        JobError::PublicInputWithBlind => "--input-commitment: cannot be used with --public-input".into(),
        JobError::ForeignProof { .. } => format!("{e}; choose another --job"),
        JobError::NoCheckpointAt { layers, .. } => format!("--at: the job has no checkpoint at {layers} layers"),
        JobError::ShardsNotReady { .. } => format!("{e}; run `fold-ml prove-shard` for them, then assemble again"),
        JobError::Memory { .. } | JobError::GptMemory { .. } => e.to_string(),
    }
}

/// The message of a failed command.
fn message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(Error::Job(j)) => job_message(j),
        _ => format!("{e:#}"),
    }
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prove(a) => prove::run_prove(a),
        Command::Resume(a) => prove::run_resume(a),
        Command::Status { dir } => job_files::run_status(&dir),
        Command::Verify(a) => return cli_verify::run(a),
        Command::VerifyCheckpoint(a) => job_files::run_verify_checkpoint(a),
        Command::Compress(a) => job_files::run_compress(a),
        Command::Commit(a) => match a.model.as_deref().filter(|m| fold_ml::model::gpt_file::GptModel::is_one(m)) {
            Some(m) => gpt::commit(m),
            None => model::run_commit(a),
        },
        Command::CommitInput(a) => model::run_commit_input(a),
        Command::Import(a) => model::run_import(a),
        Command::Inspect(a) => model::run_inspect(a),
        Command::Plan(a) => shards::run_plan(a),
        Command::ProveShard(a) => shards::run_prove_shard(a),
        Command::Assemble(a) => shards::run_assemble(a),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", message(&e));
        ExitCode::from(exit_code_of(&e))
    })
}
