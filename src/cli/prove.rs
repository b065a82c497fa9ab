//! `prove` and `resume`: run a job with a progress bar, then print its results table.

use super::args::{InputArgs, ModelArgs, RunArgs, StepArgs};
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
    #[command(flatten)]
    pub input: InputArgs,
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

/// The request to prove `model` on `input` with `step`'s choices (cache, checkpoints and
/// restart left at their defaults), and the model's depth.
pub fn job_request(model: &ModelArgs, input: &InputArgs, step: &StepArgs) -> anyhow::Result<(JobRequest, usize)> {
    let (descriptor, loaded) = model.load()?;
    let activations = read_model_input(&loaded, input.input.as_deref())?;
    let input_blind = match &input.input_commitment {
        Some(path) => {
            let c = InputCommitment::read(path)?;
            c.opens(&activations, super::model::input_layout(loaded.source(), step.fold_budget))
                .map_err(|reason| Error::bad_input(path.display().to_string(), reason))?;
            Some(c.blind)
        }
        None => None,
    };
    let req = JobRequest {
        model_file: model.model.clone(),
        model: descriptor,
        input: Some(activations),
        public_input: input.public_input,
        input_blind,
        cache_dir: PathBuf::new(),
        checkpoint_every: job::DEFAULT_CHECKPOINT_POLICY,
        restart: false,
        layers_per_step: step.layers_per_step,
        fold_budget: step.fold_budget.map(|b| b as usize),
        keys_in_memory: None,
        memory_limit_mib: None,
    };
    Ok((req, loaded.source().num_layers()))
}

pub fn run_prove(args: ProveArgs) -> anyhow::Result<ExitCode> {
    if let Some(m) = args.model.model.clone().filter(|m| fold_ml::model::gpt_file::GptModel::is_one(m)) {
        return super::gpt::prove(args, &m);
    }
    let (req, layers) = job_request(&args.model, &args.input, &args.step)?;
    let dir = args.job.unwrap_or_else(|| PathBuf::from("fold-ml-jobs").join(req.model.name()));
    let req = JobRequest {
        cache_dir: args.run.cache.dir(),
        checkpoint_every: args.run.checkpoints.policy(),
        restart: args.run.restart,
        memory_limit_mib: args.run.memory_limit_mib(),
        ..req
    };
    run_job(&dir, &req, layers)
}

pub fn run_resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let cache = args.run.cache.dir();
    if super::gpt::is_job(&args.dir) {
        return super::gpt::resume(&args.dir, cache, &args.run);
    }
    let mut req = job::resume_request(&args.dir, cache, args.run.restart)?;
    req.memory_limit_mib = args.run.memory_limit_mib();
    if let Some(k) = args.run.checkpoints.checkpoint_every {
        req.checkpoint_every = CheckpointPolicy::Layers(k);
    }
    let layers = read_manifest_layers(&args.dir)?;
    run_job(&args.dir, &req, layers)
}

fn run_job(dir: &Path, req: &JobRequest, layers: usize) -> anyhow::Result<ExitCode> {
    eprintln!("fold-ml: job {} ({layers} layers)", dir.display());
    let start = Instant::now();
    let bar = progress_bar(layers);
    let outcome = job::run(dir, req, &mut |e| show_event(&bar, e))?;
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

/// A progress bar over `layers` layers, for [`show_event`].
pub fn progress_bar(layers: usize) -> ProgressBar {
    let bar = ProgressBar::new(layers as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} layers  {per_sec}  ETA {eta}  {msg}",
        )
        .expect("valid template"),
    );
    bar.set_message("preparing (planning, parameters)");
    bar
}

/// Shows a proving event on `bar` (notes above it, progress in it).
pub fn show_event(bar: &ProgressBar, e: Event) {
    let note = |bar: &ProgressBar, line: String| bar.suspend(|| eprintln!("{line}"));
    match e {
        Event::KeysReady { cached, seconds, constraints } => {
            note(
                bar,
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
        Event::Resumed { from, tiles } => {
            let inside = match tiles {
                0 => String::new(),
                t => format!(" and {t} tiles of layer {}", from + 1),
            };
            note(bar, format!("resuming from the checkpoint at {from} layers{inside}"));
            bar.set_position(from as u64);
            bar.reset_eta();
        }
        Event::CheckpointSkipped { layers, reason } => {
            note(bar, format!("warning: skipping the checkpoint at {layers} layers: {reason}"))
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
            note(bar, format!("segment {}/{total}: layers {}..{}", index + 1, offset + 1, offset + layers))
        }
        Event::SegmentStarted { .. } => {}
        Event::Compressing => bar.set_message("compressing"),
        Event::Planned { segments, folds, seconds } => {
            note(bar, format!("planned {segments} segment(s), {folds} folds, in {seconds:.1} s"));
            bar.set_message("setting up parameters");
        }
    }
}

/// The depth of the job in `dir`.
fn read_manifest_layers(dir: &Path) -> Result<usize, Error> {
    Ok(job::read_manifest(dir)?.job.num_layers)
}
