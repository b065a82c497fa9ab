//! `fold-ml-verify DIR`: the standalone verifier. Exit 0 accepted, 1 rejected, 2 usage or
//! input error.

use clap::Parser;
use std::process::ExitCode;

#[path = "../cli_verify.rs"]
mod cli_verify;

/// Verify a fold-ml proof directory from its statement, trusting nothing else.
#[derive(Parser)]
#[command(name = "fold-ml-verify", version, about)]
struct Cli {
    #[command(flatten)]
    args: cli_verify::VerifyArgs,
}

fn main() -> ExitCode {
    cli_verify::run(Cli::parse().args)
}
