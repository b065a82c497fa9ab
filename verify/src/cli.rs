//! The verify command, shared by `fold-ml verify` and `fold-ml-verify`.
//! Exit codes: 0 accepted, 1 rejected, 2 usage or input error.

use crate::field::{from_hex, to_hex};
use crate::gpt::{statement_format, verify_gpt_dir, GptStatement, GPT_STATEMENT_FORMAT};
use crate::keys;
use crate::statement::Statement;
use crate::verify::{verify_dir, Expected};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of the verifier.
#[derive(Args)]
pub struct VerifyArgs {
    /// Proof directory holding statement.json and proof.bin.
    pub dir: PathBuf,
    /// Reject the statement unless its model commitment is this one (as printed by the
    /// model holder's `fold-ml commit`).
    #[arg(long, value_name = "HEX")]
    pub model_commitment: Option<String>,
    /// Reject the statement unless its input commitment is this one (as printed by the
    /// input owner's `fold-ml commit-input`).
    #[arg(long, value_name = "HEX")]
    pub input_commitment: Option<String>,
    /// Cache for derived keys (default: $FOLD_ML_CACHE or ~/.cache/fold-ml).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// Runs the verifier and maps the outcome to an exit code.
pub fn run(args: VerifyArgs) -> ExitCode {
    let cache = args.cache.unwrap_or_else(keys::default_cache_dir);
    let start = Instant::now();
    let mut expected = Expected::default();
    for (flag, given, slot) in [
        ("--model-commitment", &args.model_commitment, &mut expected.model_commitment),
        ("--input-commitment", &args.input_commitment, &mut expected.input_commitment),
    ] {
        if let Some(hex) = given {
            match from_hex(hex) {
                Some(f) => *slot = Some(f),
                None => {
                    eprintln!("error: {flag}: not a field element in hex (0x followed by 64 digits): {hex:?}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let gpt = match statement_format(&args.dir.join("statement.json")) {
        Ok(format) => format.as_deref() == Some(GPT_STATEMENT_FORMAT),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = match gpt {
        true => verify_gpt_dir(&args.dir, &cache, &expected).map(|v| v.map(|s| gpt_line(&s))),
        false => verify_dir(&args.dir, &cache, &expected).map(|v| v.map(|s| accepted_line(&s))),
    };
    match verdict {
        Ok(Ok(line)) => {
            println!("ACCEPTED: {line} ({:.2} s)", start.elapsed().as_secs_f64());
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

/// What an accepted GPT statement says, in one line.
fn gpt_line(s: &GptStatement) -> String {
    format!(
        "a GPT of {} blocks (width {}, {} heads, context {}, vocabulary {}), model commitment {}, public tokens \
         {:?} -> next token {} (public logits of {} values)",
        s.blocks,
        s.architecture.block.shape.width,
        s.architecture.block.shape.heads,
        s.tokens.len(),
        s.logits.len(),
        to_hex(&s.model_commitment),
        s.tokens,
        s.next_token,
        s.logits.len()
    )
}

/// What an accepted statement says, in one line.
fn accepted_line(s: &Statement) -> String {
    let input = match &s.input.values {
        Some(v) => format!("public input of {} values", v.len()),
        None => format!("committed input {}", to_hex(&s.input.commitment)),
    };
    let output = match (&s.output.values, s.output.class) {
        (Some(v), Some(c)) => format!("public output of {} values (class {c})", v.len()),
        (Some(v), None) => format!("public output of {} values", v.len()),
        (None, _) => format!("committed output {}", to_hex(&s.output.commitment)),
    };
    format!(
        "{} layers in {} segment(s), model commitment {}, architecture digest {}, {input}, {output}",
        s.num_layers,
        s.segments.len(),
        to_hex(&s.model_commitment),
        crate::artifact::hex(&s.architectures_digest()),
    )
}
