//! The commands on a GPT: `import` of a GPT's ONNX, `prove`/`resume` of a GPT model file on
//! a prompt (a resumable job of three segments), and `commit`. `verify` reads a GPT's
//! statement by its format (fold-ml-verify).

use super::args::RunArgs;
use super::prove::ProveArgs;
use fold_ml::error::Error;
use fold_ml::field::to_hex;
use fold_ml::job::gpt::{read_job, run_gpt, segment_lines, GptEvent, GptOutcome, GptRequest};
use fold_ml::mem;
use fold_ml::model::gpt_file::GptModel;
use fold_ml::model::onnx::gpt::{agreement, quantize, read_token_windows, FloatGpt};
use fold_ml_verify::gpt::{GptStatement, SEGMENT_NAMES};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// `import` of a GPT: calibrate on token windows, quantize, report the agreement of the
/// next token with tract's float model, and write the GPT model file under a fresh salt.
pub fn import(
    onnx: &Path,
    float: FloatGpt,
    calibrate: &Path,
    test: Option<&Path>,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    println!(
        "a GPT: {} blocks, width {}, {} heads, MLP {}, context {}, vocabulary {}",
        float.blocks.len(),
        float.width,
        float.heads,
        float.hidden,
        float.tokens,
        float.vocab
    );
    let windows = read_token_windows(calibrate)?;
    let q = quantize(&float, &windows).map_err(|e| Error::bad_input(calibrate.display().to_string(), e.to_string()))?;
    println!("calibrated on {} windows: {}", windows.len(), q.scales);
    let (what, held) = match test {
        Some(path) => ("held-out", read_token_windows(path)?),
        None => ("calibration", windows),
    };
    println!("on the {what} windows: {}", agreement(&q, &float, onnx, &held)?);
    let salt = <fold_ml::F as ff::Field>::random(rand_core::OsRng);
    let name = onnx.file_stem().map_or("gpt".into(), |s| s.to_string_lossy().into_owned());
    let model = GptModel { name, q, salt };
    let commitment = model.model_commitment().map_err(|r| Error::bad_input(onnx.display().to_string(), r))?;
    let out = out.unwrap_or_else(|| onnx.with_extension("foldml"));
    model.write(&out)?;
    println!("model commitment {}", to_hex(&commitment));
    println!("wrote {} (secret: it holds the weights and the commitment salt)", out.display());
    println!("prove with: fold-ml prove --model {} --input TOKENS.json", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The prompt: a JSON array of token ids (or `{"inputs": [[ids]]}` holding one).
fn read_tokens(path: Option<&Path>) -> Result<Vec<u16>, Error> {
    let path = path.ok_or_else(|| Error::bad_input("--input", "a GPT needs a prompt: a JSON array of token ids"))?;
    match read_token_windows(path)?.as_slice() {
        [one] => Ok(one.iter().map(|&t| t as u16).collect()),
        many => {
            Err(Error::bad_input(path.display().to_string(), format!("holds {} prompts; prove takes one", many.len())))
        }
    }
}

/// `prove --model GPT.foldml`: the options of a network's job that do not apply to a GPT
/// are refused rather than ignored.
pub fn prove(args: ProveArgs, model_file: &Path) -> anyhow::Result<ExitCode> {
    let refused = [
        ("--input-commitment", args.input.input_commitment.is_some()),
        ("--layers-per-step", args.step.layers_per_step.is_some()),
        ("--fold-budget", args.step.fold_budget.is_some()),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
        let reason = "does not apply to a GPT (its tokens are public, and it is proven in three segments: the \
                      embedding, one step per block, the head)";
        return Err(Error::bad_input(*flag, reason).into());
    }
    let model = GptModel::read(model_file)?;
    let tokens = read_tokens(args.input.input.as_deref())?;
    let dir = args.job.unwrap_or_else(|| PathBuf::from("fold-ml-jobs").join(&model.name));
    let req = GptRequest {
        model: &model,
        model_file: model_file.to_path_buf(),
        tokens,
        cache_dir: args.run.cache.dir(),
        checkpoint_every: args.run.checkpoints.given(),
        memory_limit_mib: args.run.memory_limit_mib(),
        restart: args.run.restart,
    };
    run(&dir, &req)
}

/// `resume DIR` of a GPT job: the model file, prompt and checkpoint policy it recorded
/// (a policy in `args` replaces the recorded one).
pub fn resume(dir: &Path, cache_dir: PathBuf, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let job = read_job(dir)?.ok_or_else(|| Error::bad_input(dir.display().to_string(), "not a GPT job"))?;
    let model = GptModel::read(&job.model_file)?;
    let req = GptRequest {
        model: &model,
        model_file: job.model_file.clone(),
        tokens: job.tokens,
        cache_dir,
        checkpoint_every: args.checkpoints.given(),
        memory_limit_mib: args.memory_limit_mib(),
        restart: args.restart,
    };
    run(dir, &req)
}

/// Whether `dir` holds a GPT job.
pub fn is_job(dir: &Path) -> bool {
    read_job(dir).ok().flatten().is_some()
}

fn run(dir: &Path, req: &GptRequest) -> anyhow::Result<ExitCode> {
    let q = &req.model.q;
    eprintln!(
        "fold-ml: GPT job {} ({} blocks, {} tokens): embedding, blocks and head, each folded and compressed",
        dir.display(),
        q.blocks.len(),
        req.tokens.len()
    );
    let start = Instant::now();
    let bar = ProgressBar::new(q.blocks.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} blocks folded  ETA {eta}")
            .expect("valid template"),
    );
    let note = |line: String| bar.suspend(|| eprintln!("{line}"));
    let mut show = |e: GptEvent| match e {
        GptEvent::Resumed { done, blocks: 0 } => note(format!("resuming after {done} proven segment(s)")),
        GptEvent::Resumed { done, blocks } => {
            note(format!("resuming after {done} proven segment(s) and {blocks} folded block(s)"));
            bar.set_position(blocks as u64);
            bar.reset_eta();
        }
        GptEvent::ProgressIgnored { why } => {
            note(format!("warning: ignoring the saved progress ({why}); starting from the first segment"))
        }
        GptEvent::FoldDiscarded { why } => {
            note(format!("warning: discarding the saved fold of the blocks ({why}); folding them again"))
        }
        GptEvent::KeysReady { segment, seconds } => {
            note(format!("{}: keys ready in {seconds:.1} s; folding and compressing", SEGMENT_NAMES[segment]));
            bar.reset_elapsed();
        }
        GptEvent::Folded { blocks, .. } => bar.set_position(blocks as u64),
        GptEvent::FoldSaved { blocks, bytes, seconds } => note(format!(
            "blocks: fold of {blocks} block(s) saved ({:.1} MiB in {seconds:.1} s)",
            bytes as f64 / f64::from(1 << 20)
        )),
        GptEvent::Proven { segment } => {
            if segment == 1 {
                bar.finish_and_clear();
            }
            note(format!("{}: proven (progress saved)", SEGMENT_NAMES[segment]))
        }
    };
    let outcome = run_gpt(dir, req, &mut show);
    bar.finish_and_clear();
    match outcome? {
        GptOutcome::AlreadyComplete(s) => {
            println!("job already complete in {}: {}; nothing to do", dir.display(), summary(&s));
        }
        GptOutcome::Proven { statement, proof_bytes, timings, keys_seconds } => {
            println!("proved in {:.1} s: {}", start.elapsed().as_secs_f64(), summary(&statement));
            println!("  keys        {keys_seconds:8.1} s (set up on first use, then from the cache)");
            for line in segment_lines(&timings) {
                println!("  {line}");
            }
            println!("  proof size  {proof_bytes:8} bytes");
            if let Some(rss) = mem::peak_rss_bytes() {
                println!("  peak memory {:8.1} MiB", rss as f64 / (1 << 20) as f64);
            }
            println!("  model commitment {}", to_hex(&statement.model_commitment));
        }
    }
    println!("verify with: fold-ml-verify {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn summary(s: &GptStatement) -> String {
    format!("tokens {:?} -> next token {} ({} blocks)", s.tokens, s.next_token, s.blocks)
}

/// `commit --model GPT.foldml`: the model commitment and what it covers.
pub fn commit(model_file: &Path) -> anyhow::Result<ExitCode> {
    let model = GptModel::read(model_file)?;
    let commitment = model.model_commitment().map_err(|r| Error::bad_input(model_file.display().to_string(), r))?;
    let out = serde_json::json!({
        "model_commitment": to_hex(&commitment),
        "blocks": model.q.blocks.len(),
        "architecture": model.architecture(),
        "covers": "the embedding's token and position tables, every block's LayerNorms, projections and MLP, \
                   and the head's LayerNorm and projection, in order, each with its spec, under the model's \
                   secret salt",
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    Ok(ExitCode::SUCCESS)
}

/// `inspect --model GPT.foldml`: each segment's step circuit, steps and estimates.
pub fn inspect(model_file: &Path) -> anyhow::Result<ExitCode> {
    use fold_ml::prove::gpt::segment_constraints;
    use fold_ml::prove::plan::{estimate_steps, NOVA_PRIMARY_OVERHEAD, NOVA_SECONDARY, TRANSFORMER_TIME_FACTOR};
    let model = GptModel::read(model_file)?;
    let (q, arch) = (&model.q, model.architecture());
    let s = q.spec.shape;
    println!(
        "GPT {} ({} blocks, width {}, {} heads, MLP {}, context {}, vocabulary {}): three segments, each one \
         compressed proof",
        model.name,
        q.blocks.len(),
        s.width,
        s.heads,
        s.hidden,
        s.tokens,
        q.embed_spec.vocab
    );
    println!();
    println!("| segment | steps | constraints/step | folding | compression | parameter setup |");
    println!("|---|---|---|---|---|---|");
    let (mut fold, mut compress, mut setup) = (0.0, 0.0, 0.0);
    for (j, c) in segment_constraints(&arch)?.into_iter().enumerate() {
        let steps = if j == 1 { q.blocks.len() } else { 1 };
        let mut e = estimate_steps(c + NOVA_PRIMARY_OVERHEAD, steps);
        (e.fold_s, e.compress_s) = (e.fold_s * TRANSFORMER_TIME_FACTOR, e.compress_s * TRANSFORMER_TIME_FACTOR);
        (fold, compress, setup) = (fold + e.fold_s, compress + e.compress_s, setup + e.setup_s);
        println!(
            "| {} | {steps} | {c} + {} (Nova) | {:.0} s | {:.0} s | {:.0} s |",
            SEGMENT_NAMES[j], NOVA_PRIMARY_OVERHEAD, e.fold_s, e.compress_s, e.setup_s
        );
    }
    println!();
    println!(
        "estimated folding {fold:.0} s, compression {compress:.0} s (+ {setup:.0} s parameter setup on the first \
         run; {NOVA_SECONDARY} secondary constraints per fold)"
    );
    println!(
        "estimates from a cost model fitted on CNN layers on a 2-core machine, its fold and compression times \
         scaled by {TRANSFORMER_TIME_FACTOR} as measured on the shipped GPT; see the README for measured figures"
    );
    Ok(ExitCode::SUCCESS)
}

/// `status DIR` of a GPT job: what it proves and how far it got.
pub fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let job = read_job(dir)?.ok_or_else(|| Error::bad_input(dir.display().to_string(), "not a GPT job"))?;
    let state = match (dir.join("statement.json").exists(), dir.join("gpt-progress.bin").exists()) {
        (true, _) => "finished (statement.json, proof.bin)".to_string(),
        (false, true) => "stopped or running: some segments proven (gpt-progress.bin, secret)".to_string(),
        (false, false) => "not started, or its first segment in progress".to_string(),
    };
    println!("GPT job {}: {state}", dir.display());
    println!("  model file       {}", job.model_file.display());
    println!("  model commitment {}", to_hex(&job.model_commitment));
    println!("  tokens           {:?}", job.tokens);
    Ok(ExitCode::SUCCESS)
}
