//! The verify command, shared by `fold-ml verify` and `fold-ml-verify`.
//! Exit codes: 0 accepted, 1 rejected, 2 usage or input error.

use clap::Args;
use fold_ml::params;
use fold_ml::verify::verify_dir;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of the verifier.
#[derive(Args)]
pub struct VerifyArgs {
    /// Proof directory holding statement.json and proof.bin.
    pub dir: PathBuf,
    /// Use this verifier key instead of deriving it from the statement's architecture.
    /// Only use a key you trust: by default the verifier derives its own.
    #[arg(long)]
    pub vk: Option<PathBuf>,
    /// Cache for derived keys (default: $FOLD_ML_CACHE or ~/.cache/fold-ml).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// Runs the verifier and maps the outcome to an exit code.
pub fn run(args: VerifyArgs) -> ExitCode {
    let cache = args.cache.unwrap_or_else(params::default_cache_dir);
    let start = Instant::now();
    match verify_dir(&args.dir, &cache, args.vk.as_deref()) {
        Ok(Ok(statement)) => {
            let output = match &statement.output.values {
                Some(v) => format!("public output of {} values", v.len()),
                None => format!("committed output {}", fold_ml::field::to_hex(&statement.output.commitment)),
            };
            println!(
                "ACCEPTED: {} layers, model commitment {}, {output} ({:.2} s)",
                statement.num_layers,
                fold_ml::field::to_hex(&statement.model_commitment.last),
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Ok(Err(reason)) => {
            eprintln!("REJECTED: {reason}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
