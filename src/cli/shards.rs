//! `plan`, `prove-shard` and `assemble`: one job proven as shards on several machines.

use super::args::{CacheArg, CheckpointArgs, InputArgs, ModelArgs, StepArgs};
use super::prove::{job_request, progress_bar, show_event};
use clap::Args;
use fold_ml::job::shards::assemble::{assemble, shard_status, ShardState};
use fold_ml::job::shards::plan::plan;
use fold_ml::job::shards::prove::{prove_shard, ShardOutcome};
use fold_ml::job::shards::{worker_index, INDEX_ENV};
use fold_ml::job::JobRequest;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Number of shards (at least the model's segments; at most its steps).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub shards: u64,
    /// The job directory to create (on storage every worker shares).
    #[arg(long)]
    pub job: PathBuf,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    #[command(flatten)]
    pub step: StepArgs,
}

#[derive(Args)]
pub struct ProveShardArgs {
    /// The sharded job directory (from `fold-ml plan`).
    pub dir: PathBuf,
    /// The shard to prove (default: $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I")]
    pub shard: Option<usize>,
    #[command(flatten)]
    pub cache: CacheArg,
}

#[derive(Args)]
pub struct AssembleArgs {
    /// The sharded job directory.
    pub dir: PathBuf,
    #[command(flatten)]
    pub cache: CacheArg,
}

pub fn run_plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (req, _) = job_request(&args.model, &args.input, &args.step)?;
    let req = JobRequest { checkpoint_every: args.checkpoints.policy(), ..req };
    let planned = plan(&args.job, &req, args.shards as usize)?;
    let p = &planned.plan;
    println!(
        "planned {} layers as {} shards in {} (native run {:.2} s)",
        p.job.num_layers,
        p.shards.len(),
        args.job.display(),
        planned.native_seconds
    );
    let (mut slowest, mut sum) = (0f64, 0f64);
    for (i, (s, e)) in p.shards.iter().zip(&planned.estimates).enumerate() {
        (slowest, sum) = (slowest.max(e.total_s()), sum + e.total_s());
        println!(
            "  shard {i:>3}: layers {:>6}..{:<6} segment {} ({} fold{}; est. {:.0} s folding + {:.0} s compression)",
            s.offset + 1,
            s.offset + s.layers,
            s.segment,
            e.folds,
            if e.folds == 1 { "" } else { "s" },
            e.fold_s,
            e.compress_s
        );
    }
    println!(
        "estimated on the reference machine (2 cores; parameters cached): {slowest:.0} s on {} machines, {sum:.0} s on one",
        p.shards.len()
    );
    let last = p.shards.len() - 1;
    println!(
        "prove each shard (any order, any machine sharing the directory): fold-ml prove-shard {} --shard I",
        args.job.display()
    );
    println!("  (or as a Slurm array --array=0-{last}, a Kubernetes Indexed Job of {} completions: the index comes from ${} or ${})", last + 1, INDEX_ENV[0], INDEX_ENV[1]);
    println!("then: fold-ml assemble {}", args.job.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_prove_shard(args: ProveShardArgs) -> anyhow::Result<ExitCode> {
    let index = worker_index(args.shard)?;
    let start = Instant::now();
    eprintln!("fold-ml: shard {index} of {}", args.dir.display());
    let bar = progress_bar(0);
    let outcome = prove_shard(&args.dir, index, &args.cache.dir(), &mut |e| {
        if let fold_ml::prove::Event::SegmentStarted { index, total, layers, offset } = e {
            bar.set_length((offset + layers) as u64);
            bar.set_position(offset as u64);
            bar.suspend(|| eprintln!("shard {index} of {total}: layers {}..{}", offset + 1, offset + layers));
            return;
        }
        show_event(&bar, e)
    })?;
    bar.finish_and_clear();
    match outcome {
        ShardOutcome::AlreadyDone => println!("shard {index} is already proven; nothing to do"),
        ShardOutcome::Proven { timings: t, layers_folded } => {
            println!(
                "shard {index} proven in {:.1} s: {layers_folded} layers folded by this run in {:.1} s, setup {:.1} s, \
                 checkpoints {:.2} s, compression {:.1} s",
                start.elapsed().as_secs_f64(),
                t.fold,
                t.setup,
                t.checkpoint,
                t.compress
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_assemble(args: AssembleArgs) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let a = assemble(&args.dir, &args.cache.dir())?;
    println!(
        "assembled {} shards ({} layers) in {:.1} s; proof.bin {} bytes (self-check {:.2} s)",
        a.statement.segments.len(),
        a.statement.num_layers,
        t.elapsed().as_secs_f64(),
        a.proof_bytes,
        a.check_seconds
    );
    if let Some(class) = a.statement.output.class {
        println!("  predicted class  {class}");
    }
    println!("verify with: fold-ml-verify {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

/// `status` of a sharded job: one line per shard.
pub fn print_status(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let (plan, reports) = shard_status(dir)?;
    let done = reports.iter().filter(|r| r.state == ShardState::Done).count();
    let assembled = dir.join("statement.json").exists();
    println!(
        "sharded job {}: {done}/{} shards proven{}",
        dir.display(),
        reports.len(),
        if assembled { ", assembled" } else { "" }
    );
    for (i, (s, r)) in plan.shards.iter().zip(&reports).enumerate() {
        let state = match &r.state {
            ShardState::Done => "done".to_string(),
            ShardState::Running(pid) => format!("running (process {pid})"),
            ShardState::Pending if r.done > 0 => "stopped (resumable)".to_string(),
            ShardState::Pending => "not started".to_string(),
            ShardState::Failed(e) => format!("failed: {e}"),
            ShardState::Damaged(e) => format!("damaged: {e}"),
        };
        let eta = match (&r.state, r.eta_s) {
            (ShardState::Running(_), Some(eta)) => format!("  ETA {eta:.0} s"),
            _ => String::new(),
        };
        println!(
            "  shard {i:>3}: layers {:>6}..{:<6} {:>6}/{:<6} {state}{eta}",
            s.offset + 1,
            s.offset + s.layers,
            r.done,
            r.layers
        );
    }
    Ok(ExitCode::SUCCESS)
}
