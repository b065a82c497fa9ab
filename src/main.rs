//! `fold-ml`: prove deep-network inference with Nova folding, verify, and commit to models.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use fold_ml::error::Error;
use fold_ml::model::{model_commitment, LayerSource};
use fold_ml::prove::{prove, Event, ProveRequest};
use fold_ml::{field::to_hex, input::read_input, job, mem, params};
use fold_ml_circuits::synthetic::SyntheticModel;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[path = "cli_verify.rs"]
mod cli_verify;

/// Zero-knowledge proofs of deep neural network inference, one Nova fold per layer.
#[derive(Parser)]
#[command(name = "fold-ml", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prove a model's inference on an input; writes proof.bin and statement.json.
    Prove(ProveArgs),
    /// Verify a proof directory (same as fold-ml-verify).
    Verify(cli_verify::VerifyArgs),
    /// Print the model commitment of a model, to compare with a statement's.
    Commit(ModelArgs),
}

/// The built-in synthetic model (a Zator-shaped CNN body by default).
#[derive(Args, Clone)]
struct ModelArgs {
    /// Number of layers.
    #[arg(long, default_value_t = 512)]
    layers: usize,
    /// Channels of every layer.
    #[arg(long, default_value_t = 2)]
    channels: usize,
    /// Image side (size × size).
    #[arg(long, default_value_t = 28)]
    size: usize,
    /// Kernel side (odd).
    #[arg(long, default_value_t = 3)]
    kernel: usize,
    /// Seed of the synthetic weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl ModelArgs {
    fn model(&self) -> Result<SyntheticModel, Error> {
        let bad = |what: &str, reason: &str| Error::BadInput {
            what: what.into(),
            reason: reason.into(),
        };
        if self.layers == 0 {
            return Err(bad("--layers", "must be at least 1"));
        }
        if self.channels == 0 || self.channels > 64 {
            return Err(bad("--channels", "must be in 1..=64"));
        }
        if self.size == 0 || self.size > 512 {
            return Err(bad("--size", "must be in 1..=512"));
        }
        if self.kernel.is_multiple_of(2) || self.kernel > 15 {
            return Err(bad("--kernel", "must be odd and at most 15"));
        }
        Ok(SyntheticModel::conv(
            self.channels,
            self.size,
            self.kernel,
            self.layers,
            self.seed,
        )?)
    }

    fn job_name(&self) -> String {
        format!(
            "conv{}x{}-k{}-L{}-seed{}",
            self.channels, self.size, self.kernel, self.layers, self.seed
        )
    }
}

#[derive(Args)]
struct ProveArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Input as a JSON array of integers in [0, 127]: a size×size image or the whole
    /// channels×size×size tensor. Default: a built-in image of a "7".
    #[arg(long)]
    input: Option<PathBuf>,
    /// Put the input itself in the statement (default: only a hiding commitment to it).
    #[arg(long)]
    public_input: bool,
    /// Job directory for the results (default: fold-ml-jobs/<model>).
    #[arg(long)]
    job: Option<PathBuf>,
    /// Parameter cache directory (default: $FOLD_ML_CACHE or ~/.cache/fold-ml).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Prove again even if the job directory already holds a proof.
    #[arg(long)]
    force: bool,
}

fn run_prove(args: ProveArgs) -> anyhow::Result<()> {
    let model = args.model.model()?;
    let input = match &args.input {
        Some(path) => read_input(
            path,
            model.spec().shape.num_inputs(),
            model.image_len(),
            |img| model.input_from_image(img),
        )?,
        None => model.default_input(),
    };
    let job = args
        .job
        .unwrap_or_else(|| PathBuf::from("fold-ml-jobs").join(args.model.job_name()));
    if job.join("statement.json").exists() && !args.force {
        return Err(Error::BadInput {
            what: job.display().to_string(),
            reason: "already holds a finished proof; choose another --job or pass --force".into(),
        }
        .into());
    }
    let cache = args.cache.unwrap_or_else(params::default_cache_dir);
    eprintln!(
        "fold-ml: proving {} layers of {} into {}",
        model.num_layers(),
        args.model.job_name(),
        job.display()
    );
    let req = ProveRequest {
        model: &model,
        input,
        public_input: args.public_input,
        cache_dir: cache,
    };
    fold_ml::prove::check_request(&req)?;

    let start = Instant::now();
    let bar = ProgressBar::new(model.num_layers() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} layers  {per_sec}  ETA {eta}  {msg}")
            .expect("valid template"),
    );
    bar.set_message("setting up parameters");
    let mut fold_start = None;
    let proven = prove(&req, &mut |e| match e {
        Event::KeysReady {
            cached,
            seconds,
            constraints,
        } => {
            bar.println(format!(
                "parameters {} in {seconds:.1} s; {} + {} constraints per fold",
                if cached {
                    "loaded from cache"
                } else {
                    "set up and cached"
                },
                constraints.0,
                constraints.1
            ));
            bar.set_message("");
            bar.reset_elapsed();
            fold_start = Some(Instant::now());
        }
        Event::Folded { done, .. } => bar.set_position(done as u64),
        Event::Compressing => bar.set_message("compressing"),
    })?;
    bar.finish_and_clear();
    job::write_results(&job, &proven).context("writing the results")?;

    let t = proven.timings;
    let n = model.num_layers() as f64;
    println!(
        "proved {} layers in {:.1} s",
        model.num_layers(),
        start.elapsed().as_secs_f64()
    );
    println!("  parameters   {:8.1} s", t.setup);
    println!(
        "  folding      {:8.1} s  ({:.3} s per layer)",
        t.fold,
        t.fold / n
    );
    println!("  compression  {:8.1} s", t.compress);
    println!("  self-check   {:8.2} s", t.self_check);
    println!("  proof size   {:8} bytes", proven.proof.len());
    if let Some(rss) = mem::peak_rss_bytes() {
        println!("  peak memory  {:8.1} MiB", rss as f64 / (1 << 20) as f64);
    }
    println!(
        "  model commitment {}",
        to_hex(&proven.statement.model_commitment.last)
    );
    println!(
        "results in {} (opening.json is secret); verify with: fold-ml-verify {}",
        job.display(),
        job.display()
    );
    Ok(())
}

fn run_commit(args: ModelArgs) -> anyhow::Result<()> {
    let model = args.model()?;
    let (iv, last) = model_commitment(&model);
    println!(
        "{}",
        serde_json::json!({ "iv": to_hex(&iv), "final": to_hex(&last), "num_layers": model.num_layers() })
    );
    Ok(())
}

/// Exit code of a failed command: 2 for input errors, 1 otherwise.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(
            Error::BadInput { .. } | Error::Io { .. } | Error::Artifact { .. } | Error::Quant(_),
        ) => 2,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prove(a) => run_prove(a),
        Command::Verify(a) => return cli_verify::run(a),
        Command::Commit(a) => run_commit(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}
