//! Commands on a job's files: `status`, `verify-checkpoint`, `compress`.

use super::args::CacheArg;
use anyhow::Context;
use clap::Args;
use fold_ml::error::Error;
use fold_ml::job::{self, LoadedCheckpoint};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct CheckpointArgs {
    /// The job directory.
    pub dir: PathBuf,
    /// The checkpoint covering this many layers (default: the newest).
    #[arg(long)]
    pub at: Option<usize>,
    #[command(flatten)]
    pub cache: CacheArg,
}

#[derive(Args)]
pub struct CompressArgs {
    /// The job directory.
    pub dir: PathBuf,
    /// The checkpoint covering this many layers.
    #[arg(long)]
    pub at: usize,
    /// Output directory (default: DIR/prefix-K).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArg,
}

pub fn run_status(dir: &Path) -> anyhow::Result<ExitCode> {
    if super::gpt::is_job(dir) {
        return super::gpt::status(dir);
    }
    if dir.join(job::shards::PLAN_FILE).exists() {
        return super::shards::print_status(dir);
    }
    let s = job::status::status(dir)?;
    let state = if s.finished {
        "finished".to_string()
    } else if let Some(pid) = s.running_pid {
        format!("running (process {pid})")
    } else {
        "stopped".to_string()
    };
    println!("job {}: {state}", dir.display());
    println!("  layers       {}/{}", s.done, s.total);
    if let Some([t, n]) = s.tile {
        println!("  tiles        {t}/{n} of layer {}", s.done + 1);
    }
    match (&s.plan, s.finished) {
        (Some(p), false) => {
            println!("  folds        {}/{}", p.folds[0], p.folds[1]);
            if let Some(r) = p.constraints_per_s {
                println!(
                    "  rate         {r:.0} constraints folded/s (the latest run's last {} folds)",
                    job::eta::RATE_FOLDS
                );
            }
            if let (Some(eta), Some(f)) = (p.seconds(), p.folding_s) {
                let (k, c) = p.compressions;
                println!(
                    "  ETA          {eta:.0} s (folding {f:.0} s at that rate, {k} compressions ~{c:.0} s estimated)"
                );
            }
        }
        (None, false) => {
            if let Some(r) = s.rate {
                println!("  rate         {r:.2} layers/s");
            }
            if let Some(eta) = s.eta_seconds() {
                println!("  ETA          {eta:.0} s");
            }
        }
        (_, true) => {}
    }
    let checkpoint = match s.last_checkpoint {
        None => "none".into(),
        Some((k, 0)) => format!("{k} layers"),
        Some((k, t)) => format!("{k} layers and {t} tiles of the next"),
    };
    println!("  checkpoint   {checkpoint}");
    if let Some(e) = s.last_event {
        println!("  last event   {e}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_verify_checkpoint(args: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let cache = args.cache.dir();
    let loaded = job::load_checkpoint(&args.dir, &cache, args.at);
    let LoadedCheckpoint { manifest, checkpoint: ckpt, keys, z0, .. } = match loaded {
        Ok(x) => x,
        Err(e @ Error::Base(fold_ml_verify::Error::Artifact { .. })) => {
            eprintln!("REJECTED: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let arch = &manifest.job.architectures[ckpt.segment];
    match job::verify_checkpoint_proof(&keys.pp, &ckpt, arch, &z0) {
        Ok(()) => {
            println!(
                "ACCEPTED: the checkpoint is a valid recursive proof of the first {} layers of segment {}",
                ckpt.layers_done, ckpt.segment
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("REJECTED: the checkpoint of {} layers: {reason}", ckpt.layers_done);
            Ok(ExitCode::from(1))
        }
    }
}

pub fn run_compress(args: CompressArgs) -> anyhow::Result<ExitCode> {
    let cache = args.cache.dir();
    let out = args.out.unwrap_or_else(|| args.dir.join(format!("prefix-{}", args.at)));
    let s = job::compress_checkpoint(&args.dir, &cache, args.at, &out).context("compressing the checkpoint")?;
    println!(
        "wrote a zero-knowledge proof of the first {} layers to {}; verify with: fold-ml-verify {}",
        s.num_layers,
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
