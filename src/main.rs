//! `fold-ml`: prove deep-network inference with Nova folding, resume jobs, verify, and
//! commit to models. Exit codes: 0 success, 1 failure or rejection, 2 usage or input error.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use fold_ml::error::Error;
use fold_ml::input_commitment::InputCommitment;
use fold_ml::job::manifest::{CheckpointPolicy, LoadedModel, ModelDescriptor};
use fold_ml::job::{self, JobRequest, LoadedCheckpoint, Outcome, DEFAULT_CHECKPOINT_POLICY};
use fold_ml::model::{model_commitment, ModelSource};
use fold_ml::network::Network;
use fold_ml::prove::keys as params;
use fold_ml::prove::Event;
use fold_ml::{field::to_hex, input::read_input, mem};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fold_ml_verify::cli as cli_verify;

/// Zero-knowledge proofs of deep neural network inference, one Nova fold per layer.
#[derive(Parser)]
#[command(name = "fold-ml", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prove a model's inference on an input (resumes the job if it was interrupted).
    Prove(ProveArgs),
    /// Continue an interrupted job from its newest valid checkpoint.
    Resume(ResumeArgs),
    /// Show where a running or stopped job stands.
    Status {
        /// The job directory.
        dir: PathBuf,
    },
    /// Verify a proof directory (same as fold-ml-verify).
    Verify(cli_verify::VerifyArgs),
    /// Verify the recursive proof stored in a checkpoint (the first K layers).
    VerifyCheckpoint(CheckpointArgs),
    /// Turn a checkpoint into a shareable zero-knowledge proof of the first K layers.
    Compress(CompressArgs),
    /// Print the model commitment of a model (what a verifier passes to
    /// `--model-commitment`) and what it covers.
    Commit(ModelArgs),
    /// As the owner of an input: commit to it under a fresh blind, write the commitment and
    /// its opening to an owner-only file (give it to the prover), and print the commitment
    /// (give it to the verifier).
    CommitInput(CommitInputArgs),
    /// Import an ONNX model: check every operator, calibrate the scales on sample inputs,
    /// quantize into segments, report the accuracy against the float model (run by tract),
    /// and write a fold-ml model file for `prove --model`.
    Import(ImportArgs),
    /// Before any expensive work: the layer table, constraints per step, folds, and
    /// estimates of proving time, peak memory and artifact sizes.
    Inspect(InspectArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// The ONNX model (Conv, Gemm, MatMul+Add, Relu, residual Add, Flatten, Reshape,
    /// MaxPool, AveragePool, BatchNormalization).
    onnx: PathBuf,
    /// Calibration inputs, real values in the ONNX input's layout: a JSON file
    /// `{"inputs": [[...], ...]}` or one JSON array. Required: scales are never guessed.
    #[arg(long, value_name = "INPUTS")]
    calibrate: PathBuf,
    /// Held-out inputs (same format) to measure the quantization error on (default: the
    /// calibration inputs).
    #[arg(long, value_name = "INPUTS")]
    test: Option<PathBuf>,
    /// The model file to write (default: the ONNX file's name with `.foldml`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct CommitInputArgs {
    /// The input, in the same format as `prove --input`.
    input: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// The file to write (secret: it holds the blind).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    step: StepArgs,
}

/// The model: a model file from `fold-ml import`, or the built-in synthetic model (a
/// Zator-shaped CNN body by default).
#[derive(Args, Clone)]
struct ModelArgs {
    /// A model file written by `fold-ml import` (instead of the synthetic model).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["layers", "channels", "size", "kernel", "seed", "dense"])]
    model: Option<PathBuf>,
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
    /// Use the synthetic dense model (an MLP of WIDTH×WIDTH layers) instead of the conv body.
    #[arg(long, value_name = "WIDTH", conflicts_with_all = ["channels", "size", "kernel"])]
    dense: Option<usize>,
}

impl ModelArgs {
    /// The model, its descriptor, and the model file it was read from.
    fn load(&self) -> Result<(ModelDescriptor, LoadedModel), Error> {
        if let Some(path) = &self.model {
            let net = Network::read(path)?;
            return Ok((ModelDescriptor::of_network(&net), LoadedModel::Network(Box::new(net))));
        }
        let descriptor = self.descriptor()?;
        let model = descriptor.load(Path::new("."))?;
        Ok((descriptor, model))
    }

    fn descriptor(&self) -> Result<ModelDescriptor, Error> {
        let bad = |what: &str, reason: &str| Error::BadInput { what: what.into(), reason: reason.into() };
        if self.layers == 0 {
            return Err(bad("--layers", "must be at least 1"));
        }
        if let Some(width) = self.dense {
            if width == 0 || width > 4096 {
                return Err(bad("--dense", "the width must be in 1..=4096"));
            }
            return Ok(ModelDescriptor::SyntheticDense { width, layers: self.layers, seed: self.seed });
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
        Ok(ModelDescriptor::Synthetic {
            channels: self.channels,
            size: self.size,
            kernel: self.kernel,
            layers: self.layers,
            seed: self.seed,
        })
    }
}

#[derive(Args)]
struct ProveArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Input. For a model file: a JSON array of the real input values (in the ONNX model's
    /// layout), quantized with the model's input scale. For the synthetic model: a JSON
    /// array of integers in [0, 127], a size×size image or the whole channels×size×size
    /// tensor (default: a built-in image of a "7").
    #[arg(long)]
    input: Option<PathBuf>,
    /// Put the input itself in the statement (default: only a hiding commitment to it).
    #[arg(long, conflicts_with = "input_commitment")]
    public_input: bool,
    /// Prove under the input owner's commitment (a file from `fold-ml commit-input`): the
    /// input must open it, and the statement's input commitment is the owner's.
    #[arg(long, value_name = "FILE")]
    input_commitment: Option<PathBuf>,
    /// Job directory (default: fold-ml-jobs/<model>). Running the same command again
    /// resumes an interrupted job; a finished job is not proven again.
    #[arg(long)]
    job: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    step: StepArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Parameter cache directory (default: $FOLD_ML_CACHE or ~/.cache/fold-ml).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Write a checkpoint every N folds (default: every 60 s of folding).
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,
    /// Discard the job's checkpoints and start again from the first layer.
    #[arg(long)]
    restart: bool,
}

#[derive(Args)]
struct StepArgs {
    /// Layers folded per Nova step (default: chosen from the layer's size so that Nova's
    /// own per-fold cost is amortized; see `fold-ml inspect`).
    #[arg(long, value_name = "K")]
    layers_per_step: Option<usize>,
}

#[derive(Args)]
struct ResumeArgs {
    /// The job directory.
    dir: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct CheckpointArgs {
    /// The job directory.
    dir: PathBuf,
    /// The checkpoint covering this many layers (default: the newest).
    #[arg(long)]
    at: Option<usize>,
    /// Parameter cache directory.
    #[arg(long)]
    cache: Option<PathBuf>,
}

#[derive(Args)]
struct CompressArgs {
    /// The job directory.
    dir: PathBuf,
    /// The checkpoint covering this many layers.
    #[arg(long)]
    at: usize,
    /// Output directory (default: DIR/prefix-K).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Parameter cache directory.
    #[arg(long)]
    cache: Option<PathBuf>,
}

fn policy(run: &RunArgs) -> CheckpointPolicy {
    run.checkpoint_every.map(CheckpointPolicy::Folds).unwrap_or(DEFAULT_CHECKPOINT_POLICY)
}

/// The input activations of a model: read from `path` (real values for a model file,
/// activations or an image for the synthetic model), or the synthetic model's built-in one.
fn read_model_input(loaded: &LoadedModel, path: Option<&Path>) -> Result<Vec<u8>, Error> {
    Ok(match (loaded, path) {
        (LoadedModel::Synthetic(m), Some(path)) => {
            read_input(path, m.spec().shape.num_inputs(), m.image_len(), |img| m.input_from_image(img))?
        }
        (LoadedModel::Synthetic(m), None) => m.default_input(),
        (LoadedModel::Network(net), Some(path)) => {
            let bad = |reason: String| Error::BadInput { what: path.display().to_string(), reason };
            let x = match fold_ml::onnx::read_inputs(path)?.as_slice() {
                [one] => one.clone(),
                many => return Err(bad(format!("holds {} inputs; prove takes one", many.len()))),
            };
            net.quantize_input(&x).map_err(bad)?
        }
        (LoadedModel::Network(_), None) => {
            return Err(Error::BadInput { what: "--input".into(), reason: "a model file needs an input".into() })
        }
    })
}

fn run_prove(args: ProveArgs) -> anyhow::Result<ExitCode> {
    let (descriptor, loaded) = args.model.load()?;
    let input = read_model_input(&loaded, args.input.as_deref())?;
    let input_blind = match &args.input_commitment {
        Some(path) => {
            let c = InputCommitment::read(path)?;
            c.opens(&input).map_err(|reason| Error::BadInput { what: path.display().to_string(), reason })?;
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
        cache_dir: args.run.cache.clone().unwrap_or_else(params::default_cache_dir),
        checkpoint_every: policy(&args.run),
        restart: args.run.restart,
        layers_per_step: args.step.layers_per_step,
    };
    run_job(&dir, &req, layers)
}

fn run_resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let cache = args.run.cache.clone().unwrap_or_else(params::default_cache_dir);
    let mut req = job::resume_request(&args.dir, cache, args.run.restart)?;
    if let Some(k) = args.run.checkpoint_every {
        req.checkpoint_every = CheckpointPolicy::Folds(k);
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
        Event::Folded { done, .. } => bar.set_position(done as u64),
        Event::Checkpointed { layers, .. } => bar.set_message(format!("last checkpoint: {layers}")),
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

fn run_status(dir: &Path) -> anyhow::Result<ExitCode> {
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
    if let Some(r) = s.rate {
        println!("  rate         {r:.2} layers/s");
    }
    if let (Some(eta), false) = (s.eta_seconds(), s.finished) {
        println!("  ETA          {eta:.0} s");
    }
    println!("  checkpoint   {}", s.last_checkpoint.map_or("none".into(), |k| format!("{k} layers")));
    if let Some(e) = s.last_event {
        println!("  last event   {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_verify_checkpoint(args: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let cache = args.cache.unwrap_or_else(params::default_cache_dir);
    let loaded = job::load_checkpoint(&args.dir, &cache, args.at);
    let LoadedCheckpoint { manifest, checkpoint: ckpt, keys, z0, .. } = match loaded {
        Ok(x) => x,
        Err(e @ Error::Artifact { .. }) => {
            eprintln!("REJECTED: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let arch = &manifest.job.architectures[ckpt.segment];
    match job::verify_checkpoint_proof(&keys.pp, &ckpt, arch.layers_per_step, &z0) {
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

fn run_compress(args: CompressArgs) -> anyhow::Result<ExitCode> {
    let cache = args.cache.unwrap_or_else(params::default_cache_dir);
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

fn run_import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    use fold_ml::onnx;
    // Every operator is checked before the calibration runs.
    onnx::read_float_model(&args.onnx)?;
    let calibration = onnx::read_inputs(&args.calibrate)?;
    let (net, report) = onnx::import(&args.onnx, &calibration, None)?;
    println!("{report}");
    let (what, inputs) = match &args.test {
        Some(path) => ("held-out", onnx::read_inputs(path)?),
        None => ("calibration", calibration),
    };
    let accuracy = onnx::accuracy(&net, &args.onnx, &inputs)?;
    println!("on the {what} inputs: {accuracy}");
    let out = args.out.unwrap_or_else(|| args.onnx.with_extension("foldml"));
    net.write(&out)?;
    inspect_network(&net)?;
    println!();
    println!("wrote {} (secret: it holds the weights and the commitment salt)", out.display());
    println!("prove with: fold-ml prove --model {} --input INPUT.json", out.display());
    Ok(ExitCode::SUCCESS)
}

fn run_commit(args: ModelArgs) -> anyhow::Result<ExitCode> {
    let (_, loaded) = args.load()?;
    let model = loaded.source();
    let segments: Vec<_> = model
        .segments()
        .iter()
        .map(|s| serde_json::json!({ "layers": s.num_layers(), "layer_spec_digest": to_hex(&s.spec().digest()) }))
        .collect();
    let out = serde_json::json!({
        "model_commitment": to_hex(&model_commitment(model)),
        "num_layers": model.num_layers(),
        "segments": segments,
        "covers": "every layer in order: its spec (geometry, requantization, residual, pooling) and its weights \
                   and biases, under the model's secret salt",
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    Ok(ExitCode::SUCCESS)
}

fn run_commit_input(args: CommitInputArgs) -> anyhow::Result<ExitCode> {
    let (_, loaded) = args.model.load()?;
    let input = read_model_input(&loaded, Some(&args.input))?;
    let c = InputCommitment::new(&input)?;
    c.write(&args.out)?;
    println!("{}", to_hex(&c.commitment));
    eprintln!(
        "wrote {} (secret: it opens the commitment); prove with --input-commitment {}, verify with \
         --input-commitment {}",
        args.out.display(),
        args.out.display(),
        to_hex(&c.commitment)
    );
    Ok(ExitCode::SUCCESS)
}

fn run_inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    use fold_ml::prove::plan::{auto_layers_per_step, estimate, StepSizes, NOVA_SECONDARY};
    use fold_ml_circuits::cost::StepCost;
    let (descriptor, loaded) = args.model.load()?;
    let model = match &loaded {
        LoadedModel::Synthetic(m) => m,
        LoadedModel::Network(net) => return inspect_network(net),
    };
    let spec = model.spec();
    let n = model.num_layers();
    let one = StepCost::of(&spec);
    let sizes = StepSizes::of(&spec);
    let auto = auto_layers_per_step(&sizes, n);
    let k = args.step.layers_per_step.unwrap_or(auto);
    println!("model {} ({n} layers; every layer has the same shape)", descriptor.name());
    println!("  layer          {:?}", spec.shape);
    println!("  requantize     shift {}, accumulator {} bits", spec.requant.shift(), spec.requant.acc_bits());
    println!(
        "  per layer      {} MACs, {} weights, {} constraints ({:.2} per MAC):",
        one.macs,
        spec.shape.num_weights(),
        one.constraints,
        one.per_mac()
    );
    println!(
        "                 products {}, requantization {}, input range {}, weight range {}, commitments {}",
        one.products, one.requant, one.input_range, one.weight_range, one.hashing
    );
    println!("  each further layer in a step adds {} constraints", sizes.more);
    println!();
    println!("| layers/step | constraints/fold (primary) | folds | folding | compression | total | peak memory |");
    println!("|---|---|---|---|---|---|---|");
    let mut ks: Vec<usize> = [1, 2, 4, 8, 16, 32, auto, k].into_iter().filter(|&x| x <= n.max(1)).collect();
    ks.sort_unstable();
    ks.dedup();
    for kk in ks {
        let e = estimate(&sizes, n, kk);
        let mark = match (kk == k, kk == auto) {
            (true, true) => " (chosen, auto)",
            (true, false) => " (chosen)",
            (false, true) => " (auto)",
            _ => "",
        };
        println!(
            "| {kk}{mark} | {} | {} | {:.0} s | {:.0} s | {:.0} s | {:.0} MiB |",
            e.constraints,
            e.folds,
            e.fold_s,
            e.compress_s,
            e.total_s(),
            e.peak_mib
        );
    }
    let e = estimate(&sizes, n, k);
    println!();
    println!("with {k} layers per step: {} + {NOVA_SECONDARY} constraints per fold, {} folds", e.constraints, e.folds);
    println!("  estimated proving time  {:.0} s (+ ~10 s parameter setup on the first run)", e.total_s());
    println!("  estimated peak memory   {:.0} MiB (flat in depth)", e.peak_mib);
    println!(
        "  proof ~11 KB; checkpoint ~{:.1} MB; verifier key ~{:.0} MB",
        e.checkpoint_bytes / 1e6,
        e.vk_bytes / 1e6
    );
    println!("estimates from a cost model fitted on a 2-core machine; see the README for measured figures");
    Ok(ExitCode::SUCCESS)
}

/// The segment table of an imported model.
fn inspect_network(net: &Network) -> anyhow::Result<ExitCode> {
    use fold_ml_circuits::cost::StepCost;
    println!("model {} ({} layers in {} segments)", net.name, net.num_layers(), net.segments.len());
    println!(
        "  input {:?}, scale {}; output {} values, scale {}, zero point {}",
        net.input.shape,
        net.input.scale,
        net.num_outputs(),
        net.output.scale,
        net.output.zero_point
    );
    println!();
    println!(
        "| segment | layers | shape | residual | pool | shift / acc bits | MACs/layer | constraints/layer | from |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (j, seg) in net.segments.iter().enumerate() {
        let spec = &seg.spec;
        let cost = StepCost::of(spec);
        let shape = match spec.shape {
            fold_ml_circuits::gadgets::linear::LinearShape::Conv(c) => format!(
                "conv {}×{} {}→{} on {}×{}",
                c.kernel, c.kernel, c.channels_in, c.channels_out, c.height, c.width
            ),
            fold_ml_circuits::gadgets::linear::LinearShape::Dense(d) => format!("dense {}→{}", d.inputs, d.outputs),
        };
        let pool = spec.pool.map_or("-".into(), |p| format!("{:?} {}×{}", p.kind, p.size, p.size));
        let origin = match seg.origin.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [first, .., last] => format!("{first} … {last}"),
        };
        println!(
            "| {j} | {} | {shape} | {} | {pool} | {} / {} | {} | {} | {origin} |",
            seg.layers.len(),
            if spec.skip == 0 { "-".to_string() } else { format!("×{}", spec.skip) },
            spec.requant.shift(),
            spec.requant.acc_bits(),
            cost.macs,
            cost.constraints,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The depth of the job in `dir`.
fn read_manifest_layers(dir: &Path) -> Result<usize, Error> {
    Ok(job::read_manifest(dir)?.job.num_layers)
}

/// Exit code of a failed command: 2 for input errors, 1 otherwise.
fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(
            Error::BadInput { .. } | Error::Io { .. } | Error::Artifact { .. } | Error::Quant(_) | Error::Onnx { .. },
        ) => 2,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prove(a) => run_prove(a),
        Command::Resume(a) => run_resume(a),
        Command::Status { dir } => run_status(&dir),
        Command::Verify(a) => return cli_verify::run(a),
        Command::VerifyCheckpoint(a) => run_verify_checkpoint(a),
        Command::Compress(a) => run_compress(a),
        Command::Commit(a) => run_commit(a),
        Command::CommitInput(a) => run_commit_input(a),
        Command::Import(a) => run_import(a),
        Command::Inspect(a) => run_inspect(a),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(exit_code_of(&e))
    })
}
