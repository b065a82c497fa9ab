//! Commands on models and inputs: `import`, `commit`, `commit-input`, `inspect`.

use super::args::{ModelArgs, StepArgs};
use super::prove::read_model_input;
use clap::Args;
use fold_ml::field::to_hex;
use fold_ml::job::manifest::LoadedModel;
use fold_ml::model::input_commitment::InputCommitment;
use fold_ml::model::network::Network;
use fold_ml::model::{model_commitment, ModelSource};
use fold_ml_circuits::gadgets::linear::LinearShape;
use fold_ml_circuits::layer::LayerSpec;
use fold_ml_circuits::step::Tiling;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ImportArgs {
    /// The ONNX model (any other operator than those fold-ml proves is refused, with the
    /// list of those it proves).
    pub onnx: PathBuf,
    /// Calibration inputs, real values in the ONNX input's layout: a JSON file
    /// `{"inputs": [[...], ...]}` or one JSON array. Required: scales are never guessed.
    #[arg(long, value_name = "INPUTS")]
    pub calibrate: PathBuf,
    /// Held-out inputs (same format) to measure the quantization error on (default: the
    /// calibration inputs).
    #[arg(long, value_name = "INPUTS")]
    pub test: Option<PathBuf>,
    /// The model file to write (default: the ONNX file's name with `.foldml`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The fold budget the proofs will use: consecutive layers are fused into one block
    /// (one step, one compressed proof) only while that step stays within it.
    #[arg(long, value_name = "CONSTRAINTS")]
    pub fold_budget: Option<u64>,
    /// Keep one block per ONNX layer (or residual block) instead of fusing consecutive
    /// layers into one step where the cost model says it is cheaper to prove (fusing
    /// changes the model commitment: it binds each layer's place in its block).
    #[arg(long)]
    pub no_fuse: bool,
}

#[derive(Args)]
pub struct CommitInputArgs {
    /// The input, in the same format as `prove --input`.
    pub input: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The file to write (secret: it holds the blind).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The fold budget the proof will use (it decides whether the first layer is tiled,
    /// which changes how the input is committed).
    #[arg(long, value_name = "CONSTRAINTS")]
    pub fold_budget: Option<u64>,
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub step: StepArgs,
}

pub fn run_import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    use fold_ml::model::onnx;
    // Every operator is checked before the calibration runs.
    if let Err(e) = onnx::read_float_model(&args.onnx) {
        // not a network fold-ml reads: a GPT, or refused with the network reader's reason
        return match onnx::gpt::read_gpt(&args.onnx) {
            Ok(gpt) => super::gpt::import(&args.onnx, gpt, &args.calibrate, args.test.as_deref(), args.out),
            Err(_) => Err(e.into()),
        };
    }
    let calibration = onnx::read_inputs(&args.calibrate)?;
    let (net, mut report) = onnx::import(&args.onnx, &calibration, None)?;
    let net = match args.no_fuse {
        true => net,
        false => {
            let budget = args.fold_budget.map_or(fold_ml::prove::plan::DEFAULT_FOLD_BUDGET, |b| b as usize);
            let (fused, index) = fold_ml::model::fuse::fuse(&net, budget);
            report.layers.iter_mut().for_each(|l| l.segment = index[l.segment]);
            if fused.segments.len() < net.segments.len() {
                report.notes.push(format!(
                    "fused {} segments into {} (consecutive layers proven as one block: fewer compressed \
                     proofs; --no-fuse keeps them apart)",
                    net.segments.len(),
                    fused.segments.len()
                ));
            }
            fused
        }
    };
    println!("{report}");
    let (what, inputs) = match &args.test {
        Some(path) => ("held-out", onnx::read_inputs(path)?),
        None => ("calibration", calibration),
    };
    let accuracy = onnx::accuracy(&net, &args.onnx, &inputs)?;
    println!("on the {what} inputs: {accuracy}");
    let out = args.out.unwrap_or_else(|| args.onnx.with_extension("foldml"));
    net.write(&out)?;
    inspect_network(&net, &StepArgs { layers_per_step: None, fold_budget: args.fold_budget })?;
    println!();
    println!("wrote {} (secret: it holds the weights and the commitment salt)", out.display());
    println!("prove with: fold-ml prove --model {} --input INPUT.json", out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_commit(args: ModelArgs) -> anyhow::Result<ExitCode> {
    let (_, loaded) = args.load()?;
    let model = loaded.source();
    let segments: Vec<_> = model
        .segments()
        .iter()
        .map(|s| {
            let digests: Vec<String> = s.spec().digests().iter().map(to_hex).collect();
            serde_json::json!({ "layers": s.num_layers(), "block_layer_digests": digests })
        })
        .collect();
    let out = serde_json::json!({
        "model_commitment": to_hex(&model_commitment(model)),
        "num_layers": model.num_layers(),
        "segments": segments,
        "covers": "every layer in order: its spec (geometry, requantization, shortcut, pooling, place in its \
                   block) and its weights and biases, under the model's secret salt",
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    Ok(ExitCode::SUCCESS)
}

pub fn run_commit_input(args: CommitInputArgs) -> anyhow::Result<ExitCode> {
    let (_, loaded) = args.model.load()?;
    let input = read_model_input(&loaded, Some(&args.input))?;
    let c = InputCommitment::new(&input, input_layout(loaded.source(), args.fold_budget))?;
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

pub fn run_inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    if let Some(m) = args.model.model.as_deref().filter(|m| fold_ml::model::gpt_file::GptModel::is_one(m)) {
        return super::gpt::inspect(m);
    }
    use fold_ml::prove::plan::{auto_layers_per_step, estimate, StepSizes, NOVA_SECONDARY};
    use fold_ml_circuits::cost::StepCost;
    let (descriptor, loaded) = args.model.load()?;
    let model = match &loaded {
        LoadedModel::Synthetic(m) => m,
        LoadedModel::Network(net) => return inspect_network(net, &args.step),
    };
    let spec = model.spec();
    let n = model.num_layers();
    let budget = args.step.fold_budget.map(|b| b as usize);
    let archs = fold_ml::prove::plan::architectures(model.as_ref(), args.step.layers_per_step, budget);
    if let Some(tiling) = archs[0].tiling {
        return inspect_tiled(&archs[0], tiling, n, budget.unwrap_or(fold_ml::prove::plan::DEFAULT_FOLD_BUDGET));
    }
    let one = StepCost::of(&spec);
    let sizes = StepSizes::of(&fold_ml_circuits::layer::BlockSpec::layer(spec));
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
    println!("                 {}", breakdown(&one));
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
    let per_step = if k == 1 { "1 layer".to_string() } else { format!("{k} layers") };
    println!("with {per_step} per step: {} + {NOVA_SECONDARY} constraints per fold, {} folds", e.constraints, e.folds);
    println!("  estimated proving time  {:.0} s (+ {:.0} s parameter setup on the first run)", e.total_s(), e.setup_s);
    println!("  estimated peak memory   {:.0} MiB (flat in depth)", e.peak_mib);
    println!(
        "  proof ~11 KB; checkpoint ~{:.1} MB; verifier key ~{:.0} MB",
        e.checkpoint_bytes / 1e6,
        e.vk_bytes / 1e6
    );
    println!("estimates from a cost model fitted on a 2-core machine; see the README for measured figures");
    Ok(ExitCode::SUCCESS)
}

/// The plan of a synthetic model whose layers are tiled.
fn inspect_tiled(
    arch: &fold_ml::model::Architecture,
    tiling: Tiling,
    layers: usize,
    fold_budget: usize,
) -> anyhow::Result<ExitCode> {
    use fold_ml::prove::plan::{estimate_steps, NOVA_PRIMARY_OVERHEAD, NOVA_SECONDARY};
    let tile = fold_ml::prove::plan::tile_cost(&arch.block, tiling)?;
    let rough = fold_ml_circuits::cost::StepCost::rough(&arch.block);
    let steps = arch.steps(layers);
    let e = estimate_steps(tile.constraints + NOVA_PRIMARY_OVERHEAD, steps);
    println!("model of {layers} layers {}", shape_name(&arch.block.stages[0].shape));
    match rough > fold_budget {
        true => println!(
            "  a whole layer would be a step of about {rough} constraints: over the fold budget (--fold-budget)"
        ),
        false => println!("  a whole layer would be a step of about {rough} constraints: tiles are estimated faster"),
    }
    println!(
        "  tiled: {}, {} tiles per layer, {} constraints per tile ({} MACs, {:.2} per MAC)",
        tile_unit(tiling),
        arch.tiles(),
        tile.constraints,
        tile.macs,
        tile.per_mac()
    );
    println!("         {}", breakdown(&tile));
    if tile.constraints > fold_budget {
        println!("  over the fold budget: no tiling fits it (the smallest tile measured; peak memory follows it)");
    }
    println!("  {steps} folds of {} + {NOVA_SECONDARY} constraints", e.constraints);
    println!(
        "  estimated folding {:.0} s, compression {:.0} s (+ {:.0} s parameter setup on the first run), peak memory {:.0} MiB",
        e.fold_s, e.compress_s, e.setup_s, e.peak_mib
    );
    println!("estimates from a cost model fitted on a 2-core machine; see the README for measured figures");
    Ok(ExitCode::SUCCESS)
}

/// What one tile of a tiling computes.
fn tile_unit(tiling: Tiling) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match tiling {
        Tiling::Rows(r) => format!("{r} output row{} per tile", plural(r)),
        Tiling::Channels(g) => format!("{g} output channel{} per tile", plural(g)),
        Tiling::Grid(g) => format!("one output row of {g} channel{} per tile", plural(g)),
        Tiling::Pair(g) => format!("one output row of {g} channel{} of one of its two layers per tile", plural(g)),
    }
}

/// Where a step's constraints go.
fn breakdown(c: &fold_ml_circuits::cost::StepCost) -> String {
    format!(
        "products {}, requantization {}, pooling {}, input range {}, weight range {}, commitments (and tiling) {}",
        c.products, c.requant, c.pool, c.input_range, c.weight_range, c.hashing
    )
}

/// A layer's geometry in a few words.
fn shape_name(shape: &LinearShape) -> String {
    match shape {
        LinearShape::Conv(c) => {
            let (_, oh, ow) = c.output_dims();
            let [kh, kw] = c.kernel;
            let mut s =
                format!("conv {kh}×{kw} {}→{} {}×{}→{oh}×{ow}", c.channels_in, c.channels_out, c.height, c.width);
            if c.stride != [1, 1] {
                s += &format!(" stride {}×{}", c.stride[0], c.stride[1]);
            }
            if c.groups > 1 {
                s += &format!(" groups {}", c.groups);
            }
            s
        }
        LinearShape::Dense(d) => format!("dense {}→{}", d.inputs, d.outputs),
    }
}

/// The segment table of an imported model, with the plan under `step`'s choices.
fn inspect_network(net: &Network, step: &StepArgs) -> anyhow::Result<ExitCode> {
    use fold_ml::prove::plan::{
        architectures, estimate_steps, parallel_map, DEFAULT_FOLD_BUDGET, NOVA_PRIMARY_OVERHEAD,
    };
    use fold_ml_circuits::cost::StepCost;
    let budget = step.fold_budget.map_or(DEFAULT_FOLD_BUDGET, |b| b as usize);
    let archs = architectures(net, step.layers_per_step, Some(budget));
    let plural = if net.segments.len() == 1 { "" } else { "s" };
    println!("model {} ({} layers in {} segment{plural})", net.name, net.num_layers(), net.segments.len());
    println!(
        "  input {:?}, scale {}, zero point {}; output {} values, scale {}, zero point {}",
        net.input.shape,
        net.input.scale,
        net.input.zero_point,
        net.num_outputs(),
        net.output.scale,
        net.output.zero_point
    );
    println!();
    println!(
        "| segment | layers | block | shortcut | pool | shift / acc bits | steps | MACs/step | constraints/step | from |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let (mut fold_s, mut compress_s, mut setup_s, mut peak, mut steps_total, mut untileable) =
        (0.0, 0.0, 0.0, 0.0f64, 0, 0);
    let (mut over_tiled, mut largest, mut distinct) = (0, 0, 0);
    let mut seen: Vec<&fold_ml::model::Architecture> = Vec::new();
    let costs = parallel_map(&archs, |arch| {
        // a step far over the budget is estimated, not synthesized (it may not fit in memory)
        let rough = StepCost::rough(&arch.block);
        match arch.tiling {
            Some(tiling) => fold_ml::prove::plan::tile_cost(&arch.block, tiling),
            None if rough > 4 * budget => {
                Ok(StepCost { constraints: rough, macs: arch.block.macs(), ..StepCost::default() })
            }
            None => Ok(StepCost::of_step(&arch.block, arch.layers_per_step)),
        }
    });
    for (j, ((seg, arch), cost)) in net.segments.iter().zip(&archs).zip(costs).enumerate() {
        let block = &seg.spec;
        let cost = cost?;
        let steps = arch.steps(seg.layers.len());
        let e = estimate_steps(cost.constraints + NOVA_PRIMARY_OVERHEAD, steps);
        fold_s += e.fold_s;
        steps_total += steps;
        if !seen.contains(&arch) {
            seen.push(arch);
            distinct += cost.constraints;
            compress_s += e.compress_s;
            setup_s += e.setup_s;
        }
        peak = peak.max(e.peak_mib);
        largest = largest.max(cost.constraints);
        over_tiled += usize::from(arch.tiling.is_some() && cost.constraints > budget);
        let tiling = match arch.tiling {
            Some(t) => {
                let unit = if arch.block.num_stages() > 1 { "block" } else { "layer" };
                let what = match t {
                    Tiling::Rows(r) => format!("{r} row{}", if r == 1 { "" } else { "s" }),
                    Tiling::Channels(g) => format!("{g} channel{}", if g == 1 { "" } else { "s" }),
                    Tiling::Grid(g) => format!("one row of {g} channel{}", if g == 1 { "" } else { "s" }),
                    Tiling::Pair(g) => {
                        let pair = fold_ml_circuits::step::pair_spec(&arch.block, g).ok();
                        let how = match pair.map(|p| (p.shares(), p.pooled())) {
                            Some((true, true)) => ", one tile serving both, averaging as running sums",
                            Some((true, false)) => ", one tile serving both",
                            _ => "",
                        };
                        format!("one row of {g} channel{} of each layer{how}", if g == 1 { "" } else { "s" })
                    }
                };
                let over = if cost.constraints > budget { "; over the fold budget: no tiling fits it" } else { "" };
                format!(" (tiles of {what}: {} per {unit}{over})", arch.tiles())
            }
            None if cost.constraints > budget => {
                untileable += 1;
                " (over the fold budget; cannot be tiled yet)".into()
            }
            None => String::new(),
        };
        let join = |f: &dyn Fn(&LayerSpec) -> String| block.stages.iter().map(f).collect::<Vec<_>>().join(" → ");
        let shape = join(&|s| shape_name(&s.shape));
        let shortcut = join(&|s| match (s.skip, s.projection) {
            (_, Some(p)) => format!("projection {}", shape_name(&LinearShape::Conv(p))),
            (0, None) => "-".into(),
            (k, None) => format!("×{k}"),
        });
        let pool = join(&|s| {
            s.pool.map_or("-".into(), |p| {
                format!("{:?} {}×{} stride {}×{}", p.kind, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1])
            })
        });
        let shifts = join(&|s| format!("{} / {}", s.requant.shift(), s.requant.acc_bits()));
        let origin = match seg.origin.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [first, .., last] => format!("{first} … {last}"),
        };
        println!(
            "| {j} | {} | {shape}{tiling} | {shortcut} | {pool} | {shifts} | {steps} | {} | {} | {origin} |",
            seg.layers.len(),
            cost.macs,
            cost.constraints,
        );
    }
    println!();
    println!("fold budget {budget} constraints per step (--fold-budget); {steps_total} steps in all");
    if over_tiled > 0 {
        println!(
            "  {over_tiled} tiled segment(s) over it: the largest step ({largest} constraints) sets the peak memory, \
             and they are tiled for time within it"
        );
    }
    if untileable > 0 {
        println!(
            "  warning: {untileable} segment(s) exceed it but fold whole (tiles do not cover blocks of several \
             layers, shortcut terms or dense layers yet): their size sets the peak memory"
        );
    }
    println!(
        "  estimated folding {fold_s:.0} s, compression {compress_s:.0} s (+ {setup_s:.0} s parameter setup on the \
         first run), peak memory {peak:.0} MiB"
    );
    if seen.len() > 1 {
        print_multiplexed(&seen, distinct, steps_total)?;
    }
    println!("estimates from a cost model fitted on a 2-core machine; see the README for measured figures");
    Ok(ExitCode::SUCCESS)
}

/// The one-proof alternative: every step one circuit multiplexing the network's distinct
/// step circuits ([`fold_ml_circuits::mux`]), counted when it is small enough to
/// synthesize quickly (else the sum of the steps). `prove` does not multiplex: the
/// circuit is the sum of the steps, which every fold and the one compression pay.
fn print_multiplexed(archs: &[&fold_ml::model::Architecture], distinct: usize, steps: usize) -> anyhow::Result<()> {
    use fold_ml::prove::plan::{estimate_steps, NOVA_PRIMARY_OVERHEAD};
    use fold_ml_circuits::mux::{MuxSlots, MuxStep};
    let counted = if distinct <= 1 << 21 {
        let shapes: Vec<_> = archs.iter().map(|a| (a.block.clone(), a.layers_per_step, a.tiling)).collect();
        let slots = MuxSlots::new(&shapes)?;
        Some(fold_ml_circuits::cost::step_constraints(&MuxStep::blank(&slots))?)
    } else {
        None
    };
    let (c, about) = counted.map_or((distinct, "about "), |c| (c, ""));
    let e = estimate_steps(c + NOVA_PRIMARY_OVERHEAD, steps);
    println!(
        "  one proof instead (one step circuit multiplexing the {} distinct steps; not what `prove` does): \
         {about}{c} constraints per fold, estimated folding {:.0} s, compression {:.0} s (+ {:.0} s parameter setup)",
        archs.len(),
        e.fold_s,
        e.compress_s,
        e.setup_s
    );
    Ok(())
}

/// How a proof of the model under `fold_budget` reads its input (what an input commitment
/// must commit to: one row per link when the first layer is tiled).
pub fn input_layout(
    model: &dyn fold_ml::model::ModelSource,
    fold_budget: Option<u64>,
) -> fold_ml_circuits::commit::Layout {
    let archs = fold_ml::prove::plan::architectures(model, Some(1), fold_budget.map(|b| b as usize));
    archs[0].block.input_layout()
}
