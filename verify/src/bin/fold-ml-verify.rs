//! `fold-ml-verify DIR`: the standalone verifier. Exit 0 accepted, 1 rejected, 2 usage or
//! input error.

use clap::Parser;
use std::process::ExitCode;

use fold_ml_verify::cli;

/// Verify a fold-ml proof directory from its statement, trusting nothing else.
#[derive(Parser)]
#[command(name = "fold-ml-verify", version, about)]
struct Cli {
    #[command(flatten)]
    args: cli::VerifyArgs,
}

fn main() -> ExitCode {
    cli::run(Cli::parse().args)
}
