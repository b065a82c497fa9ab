//! `prove` and `resume`: run a job with a progress bar, then print its results table.

use super::args::{policy, ModelArgs, RunArgs, StepArgs};
use clap::Args;
use fold_ml::error::Error;
use fold_ml::job::manifest::{CheckpointPolicy, LoadedModel};
use fold_ml::job::{self, JobRequest, Outcome};
use fold_ml::model::input_commitment::InputCommitment;
use fold_ml::prove::Event;
use fold_ml::{field::to_hex, mem, model::input::read_input};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input. For a model file: a JSON array of the real input values (in the ONNX model's
    /// layout), quantized with the model's input scale. For the synthetic model: a JSON
    /// array of integers in [0, 127], a size×size image or the whole channels×size×size
    /// tensor (default: a built-in image of a "7").
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Put the input itself in the statement (default: only a hiding commitment to it).
    #[arg(long, conflicts_with = "input_commitment")]
    pub public_input: bool,
    /// Prove under the input owner's commitment (a file from `fold-ml commit-input`): the
    /// input must open it, and the statement's input commitment is the owner's.
    #[arg(long, value_name = "FILE")]
    pub input_commitment: Option<PathBuf>,
    /// Job directory (default: fold-ml-jobs/<model>). Running the same command again
    /// resumes an interrupted job; a finished job is not proven again.
    #[arg(long)]
    pub job: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub step: StepArgs,
}

#[derive(Args)]
pub struct ResumeArgs {
    /// The job directory.
    pub dir: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The input activations of a model: read from `path` (real values for a model file,
/// activations or an image for the synthetic model), or the synthetic model's built-in one.
pub fn read_model_input(loaded: &LoadedModel, path: Option<&Path>) -> Result<Vec<u8>, Error> {
    Ok(match (loaded, path) {
        (LoadedModel::Synthetic(m), Some(path)) => {
            read_input(path, m.spec().shape.num_inputs(), m.image_len(), |img| m.input_from_image(img))?
        }
        (LoadedModel::Synthetic(m), None) => m.default_input(),
        (LoadedModel::Network(net), Some(path)) => {
            let bad = |reason: String| Error::bad_input(path.display().to_string(), reason);
            let x = match fold_ml::model::onnx::read_inputs(path)?.as_slice() {
                [one] => one.clone(),
                many => return Err(bad(format!("holds {} inputs; prove takes one", many.len()))),
            };
            net.quantize_input(&x).map_err(bad)?
        }
        (LoadedModel::Network(_), None) => return Err(Error::bad_input("--input", "a model file needs an input")),
    })
}

pub fn run_prove(args: ProveArgs) -> anyhow::Result<ExitCode> {
    let (descriptor, loaded) = args.model.load()?;
    let input = read_model_input(&loaded, args.input.as_deref())?;
    let input_blind = match &args.input_commitment {
        Some(path) => {
            let c = InputCommitment::read(path)?;
            c.opens(&input, super::model::input_layout(loaded.source(), args.step.fold_budget))
                .map_err(|reason| Error::bad_input(path.display().to_string(), reason))?;
            Some(c.blind)
        }
        None => None,
    };
    let layers = loaded.source().num_layers();
    let dir = args.job.unwrap_or_else(|| PathBuf::from("fold-ml-jobs").join(descriptor.name()));
    let req = JobRequest {
        model_file: args.model.model.clone(),
        model: descriptor,
        input: Some(input),
        public_input: args.public_input,
        input_blind,
        cache_dir: args.run.cache.dir(),
        checkpoint_every: policy(&args.run),
        restart: args.run.restart,
        layers_per_step: args.step.layers_per_step,
        fold_budget: args.step.fold_budget.map(|b| b as usize),
        keys_in_memory: None,
    };
    run_job(&dir, &req, layers)
}

pub fn run_resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let cache = args.run.cache.dir();
    let mut req = job::resume_request(&args.dir, cache, args.run.restart)?;
    if let Some(k) = args.run.checkpoint_every {
        req.checkpoint_every = CheckpointPolicy::Layers(k);
    }
    let layers = read_manifest_layers(&args.dir)?;
    run_job(&args.dir, &req, layers)
}

fn run_job(dir: &Path, req: &JobRequest, layers: usize) -> anyhow::Result<ExitCode> {
    eprintln!("fold-ml: job {} ({layers} layers)", dir.display());
    let start = Instant::now();
    let bar = ProgressBar::new(layers as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} layers  {per_sec}  ETA {eta}  {msg}",
        )
        .expect("valid template"),
    );
    bar.set_message("setting up parameters");
    let note = |bar: &ProgressBar, line: String| bar.suspend(|| eprintln!("{line}"));
    let outcome = job::run(dir, req, &mut |e| match e {
        Event::KeysReady { cached, seconds, constraints } => {
            note(
                &bar,
                format!(
                    "parameters {} in {seconds:.1} s; {} + {} constraints per fold",
                    if cached { "loaded from cache" } else { "set up and cached" },
                    constraints.0,
                    constraints.1
                ),
            );
            bar.set_message("");
            bar.reset_elapsed();
        }
        Event::Resumed { from } => {
            note(&bar, format!("resuming from the checkpoint at {from} layers"));
            bar.set_position(from as u64);
            bar.reset_eta();
        }
        Event::CheckpointSkipped { layers, reason } => {
            note(&bar, format!("warning: skipping the checkpoint at {layers} layers: {reason}"))
        }
        Event::Folded { done, tile: None, .. } => bar.set_position(done as u64),
        Event::Folded { done, tile: Some((t, n)), .. } => {
            bar.set_position(done as u64);
            bar.set_message(format!("layer {}: tile {t}/{n}", done + 1));
        }
        Event::Checkpointed { layers, tiles: 0, .. } => bar.set_message(format!("last checkpoint: {layers}")),
        Event::Checkpointed { layers, tiles, .. } => {
            bar.set_message(format!("last checkpoint: {layers} layers + {tiles} tiles"))
        }
        Event::SegmentStarted { index, total, layers, offset } if total > 1 => {
            note(&bar, format!("segment {}/{total}: layers {}..{}", index + 1, offset + 1, offset + layers))
        }
        Event::SegmentStarted { .. } => {}
        Event::Compressing => bar.set_message("compressing"),
    })?;
    bar.finish_and_clear();
    let proven = match outcome {
        Outcome::AlreadyComplete(s) => {
            println!("job already complete: {} layers proven in {}; nothing to do", s.num_layers, dir.display());
            println!("verify with: fold-ml-verify {}", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::Proven(p) => p,
    };
    let t = proven.timings;
    let folded = proven.layers_folded.max(1) as f64;
    println!(
        "proved {layers} layers in {:.1} s ({} folded by this run)",
        start.elapsed().as_secs_f64(),
        proven.layers_folded
    );
    println!("  parameters   {:8.1} s", t.setup);
    println!("  folding      {:8.1} s  ({:.3} s per layer)", t.fold, t.fold / folded);
    println!("  checkpoints  {:8.2} s  ({:.2}% of folding)", t.checkpoint, 100.0 * t.checkpoint / t.fold.max(1e-9));
    println!("  compression  {:8.1} s", t.compress);
    println!("  self-check   {:8.2} s", t.self_check);
    println!("  proof size   {:8} bytes", proven.proof.len());
    println!("  constraints  {:8} primary + {} secondary per fold", proven.constraints.0, proven.constraints.1);
    if let Some(rss) = mem::peak_rss_bytes() {
        println!("  peak memory  {:8.1} MiB", rss as f64 / (1 << 20) as f64);
    }
    println!("  model commitment {}", to_hex(&proven.statement.model_commitment));
    if let Some(class) = proven.statement.output.class {
        println!("  predicted class  {class}");
    }
    println!(
        "results in {} (secret.json and checkpoints/ are secret); verify with: fold-ml-verify {}",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The depth of the job in `dir`.
fn read_manifest_layers(dir: &Path) -> Result<usize, Error> {
    Ok(job::read_manifest(dir)?.job.num_layers)
}
