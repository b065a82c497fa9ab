//! Planning before proving: the constraint count of a step, how many layers to fold per
//! step, and estimates of time, memory and sizes — all without any expensive work.
//!
//! The layers per step (part of the public architecture) are a function of constraint
//! counts alone ([`auto_layers_per_step`]). The estimates printed by `inspect` come from a
//! cost model fitted to runs on this project's 2-core reference machine (see the README):
//! per fold `a + b·C` seconds for `C` primary constraints; compression `c + d·P`, where `P`
//! is `C` rounded up to a power of two (Spartan pads the shape: a 264k-constraint step
//! compresses in the time of a 524k one, twice a 250k one's); parameter setup and peak
//! memory `c + d·C + e·C²`. They only choose between tilings and print estimates; the
//! README's measured tables are the ground truth.

use crate::model::{Architecture, ModelSource};
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::layer::{BlockSpec, Links};
use fold_ml_circuits::quant::QuantError;
use fold_ml_circuits::step::Tiling;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Primary constraints Nova adds to every step (its verifier circuit, arity 3).
pub const NOVA_PRIMARY_OVERHEAD: usize = 9_820;
/// Constraints of Nova's secondary circuit.
pub const NOVA_SECONDARY: usize = 10_349;
/// Most layers folded per step by the automatic choice.
pub const AUTO_MAX_LAYERS_PER_STEP: usize = 64;

const FOLD_FIXED_S: f64 = 0.111;
const FOLD_PER_CONSTRAINT_S: f64 = 1.95e-6;
// Compression and setup fitted on circuits/8 (packed products), one segment at a
// time: the default layer (58,766 primary constraints: 9.8 s compression, 4.3 s setup,
// 312 MiB), ResNet-20 CIFAR's segments proven one per shard (`fold-ml plan --shards 8`,
// `prove-shard`): tiles of 235k (33.3 s, 1,257 MiB), 435k (65.8 s, 2,385 MiB) and 1.08M
// primary constraints (249–257 s, 6,516 MiB), and its fresh-cache setups (2.7–103 s).
// Compression is linear in the padded size (2^16, 2^18, 2^19, 2^21: 9.9, 33.5, 64.9 and
// 253.7 s fitted against 9.8, 33.3, 65.8 and 253 s measured; also ResNet-20's whole job at
// stop 27: 34.7 s at 224k, 64.0 s at 273k — both sides of 2^18); the fixed part is mostly
// the secondary circuit's proof.
// Peak memory refitted on circuits/12, whose matrices hold 41-70% fewer entries per
// constraint than circuits/11's on ResNet-18's tiles (memory follows the entries: Nova
// holds each matrix twice, as CSR and as its SpMV tables, and compression clones the
// padded shape): the default job (58,376 primary constraints) 213 MiB, and one
// ResNet-18 stem tile (423,136) and stage-3 pair tile (977,041) set up, folded and
// compressed alone at 1,292 and 3,397 MiB — compression is each one's peak.
const COMPRESS_S: [f64; 2] = [2.0, 1.2e-4];
/// How much longer a transformer step folds and compresses than this model estimates for
/// a CNN step of the same constraint count: measured on the shipped GPT (2-core machine),
/// compression 52.9–58.6, 419–461 and 29.9–30.1 s for the embedding, a block and the head
/// against 33, 254 and 18 s estimated (1.6–1.8×; a CNN tile of the block's 2^21 padded
/// rows compressed in 253 s), and 4.7–4.9 s per further block folded against 3.0 s.
pub const TRANSFORMER_TIME_FACTOR: f64 = 1.7;
const SETUP_S: [f64; 3] = [1.0, 2.8e-5, 5.7e-11];
const MEM_MIB: [f64; 3] = [63.0, 2.52e-3, 9.17e-10];
const CHECKPOINT_BYTES_PER_CONSTRAINT: f64 = 67.1;
const VK_BYTES_PER_CONSTRAINT: f64 = 560.0;

/// Constraint counts of steps of one spec: a step of `k` layers costs
/// `first + (k - 1)·more` in the step circuit, plus Nova's overhead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepSizes {
    /// Step circuit constraints with one layer per step.
    pub first: usize,
    /// Extra constraints of each further layer in a step.
    pub more: usize,
}

impl StepSizes {
    /// Measures the spec by synthesizing blank steps of one and two one-layer blocks
    /// (a multi-layer block: one step of the block, which never takes more).
    pub fn of(block: &BlockSpec) -> Self {
        let n = block.num_stages();
        let one = StepCost::of_step(block, n).constraints;
        if n > 1 {
            return Self { first: one, more: 0 };
        }
        let two = StepCost::of_step(block, 2).constraints;
        Self { first: one, more: two - one }
    }

    /// Primary constraints per fold with `k` layers per step.
    pub fn primary(&self, k: usize) -> usize {
        self.first + (k.max(1) - 1) * self.more + NOVA_PRIMARY_OVERHEAD
    }
}

/// Estimated cost of proving `layers` layers at `k` per step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Layers per step.
    pub layers_per_step: usize,
    /// Primary constraints per fold.
    pub constraints: usize,
    /// Nova steps.
    pub folds: usize,
    /// Seconds of folding.
    pub fold_s: f64,
    /// Seconds of compression.
    pub compress_s: f64,
    /// Seconds of parameter setup (a first run; later runs load them from the cache).
    pub setup_s: f64,
    /// Peak resident memory, MiB.
    pub peak_mib: f64,
    /// Checkpoint size, bytes.
    pub checkpoint_bytes: f64,
    /// Verifier key size, bytes.
    pub vk_bytes: f64,
}

impl Estimate {
    /// Folding plus compression.
    pub fn total_s(&self) -> f64 {
        self.fold_s + self.compress_s
    }
}

/// Estimates proving `layers` layers with `k` layers per step.
pub fn estimate(sizes: &StepSizes, layers: usize, k: usize) -> Estimate {
    let folds = crate::prove::num_steps(layers, k);
    Estimate { layers_per_step: k, ..estimate_steps(sizes.primary(k), folds) }
}

fn quadratic([a, b, c]: [f64; 3], x: f64) -> f64 {
    a + b * x + c * x * x
}

/// Estimates proving `folds` steps of `c` primary constraints each.
pub fn estimate_steps(c: usize, folds: usize) -> Estimate {
    let cf = c as f64;
    Estimate {
        layers_per_step: 1,
        constraints: c,
        folds,
        fold_s: folds as f64 * (FOLD_FIXED_S + FOLD_PER_CONSTRAINT_S * cf),
        compress_s: COMPRESS_S[0] + COMPRESS_S[1] * c.next_power_of_two() as f64,
        setup_s: quadratic(SETUP_S, cf),
        peak_mib: quadratic(MEM_MIB, cf),
        checkpoint_bytes: CHECKPOINT_BYTES_PER_CONSTRAINT * (cf + NOVA_SECONDARY as f64),
        vk_bytes: VK_BYTES_PER_CONSTRAINT * cf.max(65_536.0),
    }
}

/// The step-circuit size (Nova's own verifier circuit excluded) that the automatic choice
/// fills up to: 2^15 constraints. Nova proves its ~9.8k + 10.3k-constraint verifier
/// circuits in every fold whatever the step, so a step this large keeps that fixed cost
/// under about a third of the fold, while a larger one only grows the fold's memory.
pub const AUTO_STEP_CONSTRAINTS: usize = 1 << 15;

/// The number of layers per step chosen when none is given: the largest power of two `k`
/// (at most [`AUTO_MAX_LAYERS_PER_STEP`] and the segment's depth) whose step circuit has at
/// most [`AUTO_STEP_CONSTRAINTS`] constraints; 1 when even one layer is larger.
///
/// `k` is part of the public architecture (it changes the keys and the statement), so it
/// is a function of constraint counts alone: the same model gets the same `k` on every
/// machine. It does not depend on the depth beyond it (a deeper model folds more steps of
/// the same size, so its peak memory is the same as a shallow one's); timings measured on a
/// machine only inform `inspect`'s estimates.
pub fn auto_layers_per_step(sizes: &StepSizes, layers: usize) -> usize {
    let fits = |k: usize| sizes.first + (k - 1) * sizes.more <= AUTO_STEP_CONSTRAINTS;
    let mut k = 1;
    while k * 2 <= AUTO_MAX_LAYERS_PER_STEP.min(layers) && fits(k * 2) {
        k *= 2;
    }
    k
}

/// The default fold budget: step-circuit constraints (Nova's own excluded) above which a
/// layer is tiled. Peak memory grows with the largest step (compression dominates it: see
/// [`Estimate::peak_mib`]); 2^18 kept a segment near 1.4 GiB on the reference machine
/// with circuits/8 (1,257 MiB measured at 235k; ~0.8 GiB by the circuits/12 fit, whose
/// matrices are sparser; 2^19 would allow ~1.7 GiB), and a whole job near its
/// largest segment's (ResNet-20, eight segments of 163k–229k: 1,296 MiB fresh, the
/// segments' compressions 0.88–1.16 GiB). Within it the tiling is chosen by estimated time,
/// which for a segment of few blocks already prefers small tiles.
pub const DEFAULT_FOLD_BUDGET: usize = 1 << 18;

/// How to tile the `blocks` blocks (of one or two layers) of a segment whose whole step
/// has `untiled` constraints, or `None` to prove each block whole. A step that exceeds
/// `budget` is tiled; one that fits but already fills a fold alone (over
/// [`TILE_CANDIDATE_CONSTRAINTS`] with Nova's own verifier circuit, where layers are folded
/// one per step anyway and the step is compressed padded to 2^18 or more: LeNet-5's conv2,
/// 126,732 + 9,820) is tiled when that is estimated faster. The candidates: bands of rows
/// (a divisor of the output height, two tiles or more, a geometry the tile circuit supports) and, for a
/// convolution (or a two-layer block) of several model-commitment chunks, groups of output
/// channels (whole chunks, two groups or more), and for a single convolution one output
/// row of a group per tile (a grid). Among the whole step (when it fits) and the tilings
/// whose tile fits, the least estimated time wins: parameter setup and compression grow
/// with the step, folding with the steps' total, and a segment of few blocks pays far more
/// for the first (~2e-4 s per constraint, once) than for the second (~2e-6 s per
/// constraint, every fold), so small tiles usually win there (`groups`: which groups of
/// channels, alone, in a grid or in a pair, are candidates). When nothing fits, the smallest tile
/// measured. Candidates are measured reading `input` as their writer commits it (one row of
/// every channel per link when a candidate cannot read that: rows of a few channels cost a
/// hash per link, so a tile reading them is dearer). Blocks that cannot be tiled (more layers, a two-layer block pooled otherwise
/// than globally, a shortcut the tiles cannot place, a dense layer) get `None`.
pub fn tiling(
    block: &BlockSpec,
    untiled: usize,
    (budget, allowed): (usize, Groups),
    (blocks, input): (usize, Links),
) -> Option<Tiling> {
    let fits = untiled <= budget;
    // with Nova's verifier circuit: a step past 2^17 is compressed padded to 2^18
    if fits && untiled + NOVA_PRIMARY_OVERHEAD <= TILE_CANDIDATE_CONSTRAINTS {
        return None;
    }
    let linked = |t: Tiling| {
        let output = t.output_links(block);
        // the input as its writer commits it, else as the tiling must read it, else one
        // row of every channel per link
        let as_written = block.clone().with_links([input, output]);
        match t.check(&as_written) {
            Ok(()) => as_written,
            Err(_) => block.clone().with_links([t.input_links(block).unwrap_or(Links::Rows), output]),
        }
    };
    let height = fold_ml_circuits::tile::tiled_height(block);
    let rows = (1..height).rev().filter(|&r| height.is_multiple_of(r)).map(Tiling::Rows);
    let outputs = block.stages.first().map_or(0, |s| s.shape.num_biases());
    let groups: Vec<usize> = (1..outputs).rev().filter(|&g| outputs.is_multiple_of(g) && allowed.allows(g)).collect();
    let channels = groups.iter().filter(|_| allowed.channels()).map(|&g| Tiling::Channels(g));
    let grid_groups = groups.iter().filter(|_| allowed.rows_of_groups());
    let grids = grid_groups.clone().filter(|_| block.num_stages() == 1).map(|&g| Tiling::Grid(g));
    let pairs = grid_groups.filter(|_| block.num_stages() == 2).map(|&g| Tiling::Pair(g));
    let candidates: Vec<(Tiling, usize)> = rows
        .chain(channels)
        .chain(grids)
        .chain(pairs)
        .filter(|&t| t.check(&linked(t)).is_ok())
        .map(|t| (t, t.tiles(block)))
        .collect();
    // A tile costs about its share of the block plus what every tile repeats (weights,
    // input or halo rows, hashing): measure the tilings whose share alone fits.
    let time = |tiles: usize, c: usize| {
        let e = estimate_steps(c + NOVA_PRIMARY_OVERHEAD, blocks.max(1) * tiles);
        e.setup_s + e.fold_s + e.compress_s
    };
    // the whole step, when it fits
    let mut best: Option<(f64, Option<Tiling>)> = fits.then(|| (time(1, untiled), None));
    let mut fallback = None;
    let measured: Vec<_> = candidates.iter().copied().filter(|&(_, tiles)| untiled / tiles <= budget).collect();
    let costs = parallel_map(&measured, |&(t, _)| tile_cost(&linked(t), t));
    for (&(t, tiles), cost) in measured.iter().zip(costs) {
        let Ok(cost) = cost else { continue };
        if cost.constraints <= budget {
            let s = time(tiles, cost.constraints);
            if best.is_none_or(|(b, _)| s < b) {
                best = Some((s, Some(t)));
            }
        }
        if fallback.is_none_or(|(_, c)| cost.constraints < c) {
            fallback = Some((t, cost.constraints));
        }
    }
    match best {
        Some((_, t)) => t,
        None => fallback.or(candidates.iter().max_by_key(|(_, n)| *n).copied()).map(|(t, _)| t),
    }
}

/// [`StepCost::of_tiling`], remembered for the process: planning measures a candidate again
/// in each of its plans (and `inspect` the chosen ones once more), and synthesizing one of
/// ResNet-18's tiles takes seconds.
pub fn tile_cost(block: &BlockSpec, tiling: Tiling) -> Result<StepCost, QuantError> {
    static MEMO: OnceLock<Mutex<HashMap<(BlockSpec, Tiling), StepCost>>> = OnceLock::new();
    remembered(&MEMO, (block.clone(), tiling), || StepCost::of_tiling(block, tiling))
}

/// `f()`, remembered in `memo` under `key` for the process when it succeeds.
fn remembered<K: Eq + Hash, V: Copy, E>(
    memo: &OnceLock<Mutex<HashMap<K, V>>>,
    key: K,
    f: impl FnOnce() -> Result<V, E>,
) -> Result<V, E> {
    let memo = memo.get_or_init(Mutex::default);
    if let Some(&v) = memo.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return Ok(v);
    }
    let v = f()?;
    memo.lock().unwrap_or_else(PoisonError::into_inner).insert(key, v);
    Ok(v)
}

/// `f` of every item, in order, computed on the machine's cores: measuring a candidate
/// tiling synthesizes its circuit on one thread, and ResNet-18 has dozens of candidates
/// of up to millions of constraints.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, items.len().max(1));
    let f = &f;
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    items.iter().enumerate().skip(w).step_by(threads).map(|(i, x)| (i, f(x))).collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Which groups of output channels a tiling may use (alone, in a grid or in a pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Groups {
    /// Any whole number of model-commitment chunks.
    Any,
    /// Rows of groups of this many channels only (a grid or a pair): what a neighbour
    /// reads or writes.
    Only(usize),
    /// Groups of channels alone (every row), no rows of groups: a grid or a pair reads
    /// rows of its own groups, which its writer may not give (ResNet-20's last block at
    /// 8×8, averaged globally, behind a block tiled by channels).
    Channels,
    /// None: bands of rows only.
    None,
}

impl Groups {
    fn allows(self, g: usize) -> bool {
        match self {
            Self::Any | Self::Channels => true,
            Self::Only(only) => g == only,
            Self::None => false,
        }
    }

    /// Whether groups of channels alone may tile.
    fn channels(self) -> bool {
        matches!(self, Self::Any | Self::Channels)
    }

    /// Whether rows of groups (a grid or a pair) may tile.
    fn rows_of_groups(self) -> bool {
        matches!(self, Self::Any | Self::Only(_))
    }

    /// What a segment whose tiling could not be linked may try next: rows of the groups
    /// its neighbour reads or writes, then groups of channels alone, then rows. Each step
    /// narrows, so replanning ends.
    fn narrowed(self, neighbour: Option<usize>) -> Self {
        match (self, neighbour) {
            (Self::Any, Some(g)) => Self::Only(g),
            (Self::Any | Self::Only(_), _) => Self::Channels,
            _ => Self::None,
        }
    }
}

/// Primary constraints of one fold of `arch`, Nova's verifier circuit included: a tile
/// measured (its share of the block would miss what every tile repeats), a whole step
/// measured too, with its links, unless it is estimated from above
/// ([`StepCost::rough`]) at more than [`SYNTHESIZED_STEP_CONSTRAINTS`].
pub fn step_constraints(arch: &Architecture) -> usize {
    let tile = arch.tiling.and_then(|t| tile_cost(&arch.block, t).ok());
    let whole = || whole_step_constraints(&arch.block, arch.layers_per_step);
    tile.map_or_else(whole, |t| t.constraints) + NOVA_PRIMARY_OVERHEAD
}

/// Whole steps estimated above this many constraints are not synthesized to be measured
/// (a ResNet-18 layer would be ~10^8).
pub const SYNTHESIZED_STEP_CONSTRAINTS: usize = 1 << 22;

/// Constraints of a whole step of `k` layers of `block` (links included): measured, and
/// remembered for the process, unless the rough estimate is over
/// [`SYNTHESIZED_STEP_CONSTRAINTS`].
fn whole_step_constraints(block: &BlockSpec, k: usize) -> usize {
    let blocks = (k / block.num_stages()).max(1);
    let rough = StepCost::rough(block) * blocks;
    if rough > SYNTHESIZED_STEP_CONSTRAINTS {
        return rough;
    }
    static MEMO: OnceLock<Mutex<HashMap<(BlockSpec, usize), usize>>> = OnceLock::new();
    let measured = || Ok::<_, Infallible>(StepCost::of_step(block, k.max(block.num_stages())).constraints);
    let Ok(c) = remembered(&MEMO, (block.clone(), k), measured);
    c
}

/// Steps of at least this many constraints (four times what the automatic choice fills a
/// step up to, so their layers are folded one per step) are tiled when tiles are estimated
/// faster, even within the fold budget.
pub const TILE_CANDIDATE_CONSTRAINTS: usize = 4 * AUTO_STEP_CONSTRAINTS;

/// The architecture of each segment of `model`: `layers_per_step` (or the automatic
/// choice) for stackable one-layer blocks, a multi-layer block per step, and layers whose
/// step exceeds `fold_budget` tiled ([`tiling`]); how the tensors between segments are
/// committed follows ([`links`]). A tiling by channels whose output cannot be committed as
/// its neighbours need (a row-tiled consumer, a stack of layers that must read what it
/// writes) gives way: first to the best tiling in the rows of groups a neighbour grid or
/// pair reads or writes (ResNet-18's first stage takes its stem's groups), then to the
/// best tiling by groups of channels alone (which reads its input whole), then to the best
/// tiling by rows. A segment that gave up groups may take its neighbour's once that
/// neighbour has some (once per segment, so that replanning ends).
///
/// Candidates are first measured reading rows of every channel, and whole steps reading
/// their input whole (their links are not known yet); when a fold of that plan, measured
/// with the links it got, is over the budget, the segments are planned again, measured
/// with those links: a whole step reading the rows of groups of channels a pair writes
/// hashes a link per row of a group, and may have to be tiled after all.
///
/// When some segment has no tiling under the budget, the job's peak is set by its fold
/// whatever the others do; the segments over the budget are then planned again, for time,
/// under that fold's size (and measured with the input links the first plan gave them):
/// the smallest tile of a ResNet-18 block re-reads a window of every input channel to
/// compute two output channels, thousands of times. The second plan is kept when its
/// folds are all within the first plan's largest and it is estimated faster.
pub fn architectures(
    model: &dyn ModelSource,
    layers_per_step: Option<usize>,
    fold_budget: Option<usize>,
) -> Vec<Architecture> {
    let budget = fold_budget.unwrap_or(DEFAULT_FOLD_BUDGET);
    let n = model.segments().len();
    let first = plan_segments(model, layers_per_step, &vec![(budget, None); n]);
    // What every fold of the plan costs, measured with the links it got.
    let measure = |archs: &[Architecture]| parallel_map(archs, |a| step_constraints(a) - NOVA_PRIMARY_OVERHEAD);
    // (a whole step estimated from above, too large to measure, stays whole: it was
    // tiled if it could be)
    let over = |archs: &[Architecture], sizes: &[usize]| -> Vec<bool> {
        let measured = |a: &Architecture, c: usize| a.tiling.is_some() || c <= SYNTHESIZED_STEP_CONSTRAINTS;
        archs.iter().zip(sizes).map(|(a, &c)| c > budget && measured(a, c)).collect()
    };
    let sizes = measure(&first);
    if !over(&first, &sizes).contains(&true) {
        return first;
    }
    // The first plan measured its candidates reading rows of every channel and its whole
    // steps reading their input whole; the rows of a neighbour's groups that the links
    // then gave some of them cost a hash per link. Plan again, measuring with those links:
    // within the budget, that plan is the one.
    let inputs: Vec<(usize, Option<Links>)> = first.iter().map(|a| (budget, Some(a.block.links[0]))).collect();
    let first = plan_segments(model, layers_per_step, &inputs);
    let sizes = measure(&first);
    let over = over(&first, &sizes);
    let floor = sizes.iter().copied().max().unwrap_or(0);
    if floor <= budget || !over.contains(&true) {
        return first;
    }
    // Some segment cannot fit the budget: the job's peak is its fold's whatever the others
    // do, so the segments over the budget may take the fastest tiling up to that fold.
    let inputs = first.iter().zip(&over).map(|(a, &o)| (if o { floor } else { budget }, Some(a.block.links[0])));
    let second = plan_segments(model, layers_per_step, &inputs.collect::<Vec<_>>());
    let sizes2 = measure(&second);
    let faster = plan_seconds(model, &second, &sizes2) < plan_seconds(model, &first, &sizes);
    if faster && sizes2.iter().all(|&c| c <= floor) {
        second
    } else {
        first
    }
}

/// The cost model's parameter setup, folding and compression seconds of `model` proven as
/// `archs`, whose steps have `sizes` constraints each (Nova's verifier circuit excluded).
pub fn plan_seconds(model: &dyn ModelSource, archs: &[Architecture], sizes: &[usize]) -> f64 {
    let segments = model.segments();
    let folds = |j: usize| archs[j].steps(segments[j].num_layers());
    (0..archs.len())
        .map(|j| estimate_steps(sizes[j] + NOVA_PRIMARY_OVERHEAD, folds(j)))
        .map(|e| e.setup_s + e.total_s())
        .sum()
}

/// Commits the tensors between `archs` as [`links`] found them (`found[j]`, `found[j + 1]`
/// around segment `j`).
pub fn set_links(archs: &mut [Architecture], found: &[Links]) {
    for (j, arch) in archs.iter_mut().enumerate() {
        arch.block = arch.block.clone().with_links([found[j], found[j + 1]]);
    }
}

/// [`architectures`] with, per segment, the fold budget and the input links to measure its
/// candidate tilings and its whole step with (when not known: rows of every channel for
/// the tilings, the whole input for the step).
fn plan_segments(
    model: &dyn ModelSource,
    layers_per_step: Option<usize>,
    budgets: &[(usize, Option<Links>)],
) -> Vec<Architecture> {
    let segments = model.segments();
    let blocks: Vec<usize> = segments.iter().map(|s| s.num_layers() / s.spec().num_stages().max(1)).collect();
    let plan = |j: usize, groups: Groups| {
        let (seg, blocks) = (segments[j], blocks[j]);
        let (budget, input) = budgets[j];
        let spec = seg.spec();
        let whole = input.map_or_else(|| spec.clone(), |l| spec.clone().with_links([l, Links::Whole]));
        // a layer far over the budget is never synthesized whole
        let rough = StepCost::rough(&whole);
        let untiled = if rough > 2 * budget { rough } else { StepCost::of_step(&whole, spec.num_stages()).constraints };
        match tiling(&spec, untiled, (budget, groups), (blocks, input.unwrap_or(Links::Rows))) {
            Some(Tiling::Rows(rows)) => return Architecture::tiled(spec, rows),
            Some(Tiling::Channels(g)) => return Architecture::channel_tiled(spec, g),
            Some(Tiling::Grid(g)) => return Architecture::grid_tiled(spec, g),
            Some(Tiling::Pair(g)) => return Architecture::pair_tiled(spec, g),
            None => {}
        }
        let stackable = spec.input_layout() == spec.output_layout();
        let k = match layers_per_step {
            _ if spec.num_stages() > 1 => spec.num_stages(),
            _ if !stackable => 1,
            Some(k) => k,
            // one layer already fills a step: nothing to measure
            None if rough > 4 * AUTO_STEP_CONSTRAINTS => 1,
            None => auto_layers_per_step(&StepSizes::of(&spec), seg.num_layers()),
        };
        Architecture::new(spec, k)
    };
    let mut allowed = vec![Groups::Any; segments.len()];
    // once each: a segment that took its neighbour's groups back and lost them again
    // keeps what it then falls back to (so replanning ends)
    let mut retried = vec![false; segments.len()];
    let indices: Vec<usize> = (0..segments.len()).collect();
    let mut archs: Vec<Architecture> = parallel_map(&indices, |&j| plan(j, Groups::Any));
    loop {
        match links(&archs, &blocks) {
            Ok(found) => {
                // a segment that gave up groups of channels for a neighbour that has since
                // taken groups of its own (ResNet-20's last block, a pooled pair, for its
                // writer, which then became a pair) may take those groups now
                let gave_up = |j: usize| matches!(allowed[j], Groups::Channels | Groups::None) && !retried[j];
                let retry = (0..segments.len()).filter(|&j| gave_up(j)).find_map(|j| {
                    let g = neighbour_groups(&archs, j)?;
                    let mut trial = archs.clone();
                    trial[j] = plan(j, Groups::Only(g));
                    links(&trial, &blocks).is_ok().then(|| (j, g, trial.swap_remove(j)))
                });
                if let Some((j, g, arch)) = retry {
                    (allowed[j], archs[j], retried[j]) = (Groups::Only(g), arch, true);
                    continue;
                }
                set_links(&mut archs, &found);
                return archs;
            }
            // each round narrows one segment's groups: it ends
            Err(j) => {
                allowed[j] = allowed[j].narrowed(neighbour_groups(&archs, j));
                archs[j] = plan(j, allowed[j]);
            }
        }
    }
}

/// The groups of channels of the rows of groups that segment `j`'s writer (else its
/// reader) writes or reads, tiled as a grid or a pair, when they differ from `j`'s own.
fn neighbour_groups(archs: &[Architecture], j: usize) -> Option<usize> {
    let group = |a: &Architecture| match a.tiling {
        Some(Tiling::Grid(g) | Tiling::Pair(g)) => Some(g),
        _ => None,
    };
    let own = group(&archs[j]);
    let writer = j.checked_sub(1).and_then(|i| group(&archs[i]));
    let reader = archs.get(j + 1).and_then(group);
    writer.into_iter().chain(reader).find(|&g| Some(g) != own)
}

/// How each tensor between segments is committed (`n + 1` of them: the network input, the
/// cuts, the output), or the index of a segment tiled by channels (alone or in a grid)
/// that cannot be linked.
///
/// A row-tiled segment writes rows (of every channel, or of the groups a grid or a pair
/// reading them writes itself); a channel-tiled one groups of its channels; a grid-tiled
/// one (or a pair) rows of groups — a pair averaged globally writes its one row and reads
/// rows of its own groups. Row- and grid-tiled segments read rows (of every channel,
/// or of the groups their neighbour writes); channel-tiled and untiled ones read anything
/// (whole). A segment of several blocks (`blocks[j] > 1`) reads what it writes. What is
/// left free is committed whole (the cheapest). A conflict that involves no channel or
/// grid tiling is left for [`fold_ml_circuits::layer::check_chain`] to report.
pub fn links(archs: &[Architecture], blocks: &[usize]) -> Result<Vec<Links>, usize> {
    let n = archs.len();
    // per tensor: how it must be committed, and the segment that needs it so
    let mut fixed: Vec<Option<(Links, usize)>> = vec![None; n + 1];
    let by_channels =
        |j: usize| matches!(archs[j].tiling, Some(Tiling::Channels(_) | Tiling::Grid(_) | Tiling::Pair(_)));
    let blame = |who: &[usize]| who.iter().copied().find(|&j| by_channels(j));
    // fixes tensor `b` to `l` for segment `j`: whether it was free; a segment tiled by
    // channels to give way on a conflict
    let set = |fixed: &mut Vec<Option<(Links, usize)>>, b: usize, l: Links, j: usize| match fixed[b] {
        None => {
            fixed[b] = Some((l, j));
            Ok(true)
        }
        Some((old, by)) if old != l => blame(&[j, by]).map_or(Ok(false), Err),
        Some(_) => Ok(false),
    };
    // stacks read what they write: propagate until nothing changes
    let stacks = |fixed: &mut Vec<Option<(Links, usize)>>| -> Result<(), usize> {
        let mut changed = true;
        while changed {
            changed = false;
            for j in (0..n).filter(|&j| blocks.get(j).copied().unwrap_or(1) > 1) {
                changed |= match (fixed[j], fixed[j + 1]) {
                    (Some((l, by)), None) => set(fixed, j + 1, l, by)?,
                    (None, Some((l, by))) => set(fixed, j, l, by)?,
                    (Some((a, ja)), Some((b, jb))) if a != b => match blame(&[j, ja, jb]) {
                        Some(k) => return Err(k),
                        None => false,
                    },
                    _ => false,
                };
            }
        }
        Ok(())
    };
    for (j, arch) in archs.iter().enumerate() {
        match arch.tiling {
            // rows of every channel, unless a reader needs rows of groups (below)
            Some(Tiling::Rows(_)) => {}
            Some(t @ (Tiling::Channels(_) | Tiling::Grid(_) | Tiling::Pair(_))) => {
                set(&mut fixed, j + 1, t.output_links(&arch.block), j)?;
                if let Some(input) = t.input_links(&arch.block) {
                    set(&mut fixed, j, input, j)?;
                }
            }
            None => {}
        }
    }
    stacks(&mut fixed)?;
    // tensor `b`, read or written by rows by segment `j`: rows of every channel unless it
    // is already rows of groups; a segment tiled by channels gives way on anything else
    let by_rows = |fixed: &mut Vec<Option<(Links, usize)>>, b: usize, j: usize| match fixed[b] {
        None => {
            fixed[b] = Some((Links::Rows, j));
            Ok(())
        }
        Some((Links::Rows | Links::RowGroups(_), _)) => Ok(()),
        Some((_, by)) => blame(&[j, by]).map_or(Ok(()), Err),
    };
    // readers by rows, unless their neighbour writes rows of groups
    for (j, arch) in archs.iter().enumerate() {
        if matches!(arch.tiling, Some(Tiling::Rows(_) | Tiling::Grid(_) | Tiling::Pair(_))) {
            by_rows(&mut fixed, j, j)?;
        }
    }
    stacks(&mut fixed)?;
    // writers by rows, unless their reader takes rows of groups
    for (j, arch) in archs.iter().enumerate() {
        if matches!(arch.tiling, Some(Tiling::Rows(_))) {
            by_rows(&mut fixed, j + 1, j)?;
        }
    }
    stacks(&mut fixed)?;
    Ok(fixed.into_iter().map(|f| f.map_or(Links::Whole, |(l, _)| l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fold_ml_circuits::synthetic::SyntheticModel;

    #[test]
    fn auto_choice_is_a_function_of_constraint_counts() {
        let conv = StepSizes::of(&BlockSpec::layer(SyntheticModel::zator(1, 0).spec()));
        assert_eq!(conv.primary(1), 58_376, "matches the measured fold size");
        assert_eq!(auto_layers_per_step(&conv, 512), 1, "a 49k-constraint layer folds alone");
        let tiny = StepSizes { first: 3_000, more: 1_500 };
        let k = auto_layers_per_step(&tiny, 512);
        assert_eq!(k, 16, "3,000 + 15·1,500 = 25,500 ≤ 2^15 < 3,000 + 31·1,500");
        // the 16-wide dense layer: 4 per step, as measured best on the reference machine
        let dense16 = fold_ml_circuits::layer::LayerSpec::new(
            fold_ml_circuits::gadgets::linear::LinearShape::Dense(fold_ml_circuits::gadgets::dense::DenseShape {
                inputs: 16,
                outputs: 16,
            }),
            fold_ml_circuits::quant::RequantSpec::new(8, 24).unwrap(),
        );
        assert_eq!(auto_layers_per_step(&StepSizes::of(&BlockSpec::layer(dense16)), 512), 4);
        assert_eq!(auto_layers_per_step(&tiny, 1), 1);
        // independent of depth (so memory is too), once the model is deep enough
        assert_eq!(auto_layers_per_step(&tiny, 64), auto_layers_per_step(&tiny, 4096));
        assert_eq!(auto_layers_per_step(&conv, 64), auto_layers_per_step(&conv, 4096));
    }

    /// The rows of [`tiling`]'s choice (a layer of one model-commitment chunk has no
    /// channel tiling).
    fn tile_rows(block: &BlockSpec, untiled: usize, budget: usize, blocks: usize) -> Option<usize> {
        tiling(block, untiled, (budget, Groups::Any), (blocks, Links::Rows)).map(|t| match t {
            Tiling::Rows(r) => r,
            Tiling::Channels(g) | Tiling::Grid(g) | Tiling::Pair(g) => panic!("{g} channels per tile"),
        })
    }

    #[test]
    fn compression_is_estimated_by_the_padded_size() {
        let compress = |c: usize| estimate_steps(c, 1).compress_s;
        // the same power of two: the same compression; just past it: about twice
        assert_eq!(compress(140_000), compress(262_144));
        assert!(compress(262_145) > 1.9 * compress(262_144));
        // ResNet-20's measured segments (stop 27): 224k in 34.7 s, 273k in 64.0 s
        assert!((compress(223_549) - 34.7).abs() < 2.0 && (compress(273_416) - 64.0).abs() < 2.0);
    }

    #[test]
    fn layers_over_the_budget_get_the_fastest_tiling_that_fits() {
        use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
        let layer = fold_ml_circuits::layer::LayerSpec::new(
            LinearShape::Conv(ConvShape::same(4, 4, 16, 16, 3)),
            fold_ml_circuits::quant::RequantSpec::new(6, 20).unwrap(),
        );
        let block = BlockSpec::layer(layer);
        let whole = StepCost::of_step(&block, 1).constraints;
        assert_eq!(tile_rows(&block, whole, whole, 1), None, "a layer that fits is not tiled");
        use fold_ml_circuits::tile::TileSpec;
        let tile = |r: usize| StepCost::of_tile(&TileSpec::new(layer, None, r)).unwrap().constraints;
        let time = |r: usize, blocks: usize| {
            let e = estimate_steps(tile(r) + NOVA_PRIMARY_OVERHEAD, blocks * 16 / r);
            e.setup_s + e.fold_s + e.compress_s
        };
        let budget = whole * 3 / 4;
        for blocks in [1, 4096] {
            let r = tile_rows(&block, whole, budget, blocks).expect("tiled");
            assert!(tile(r) <= budget, "{r} rows: {} > {budget}", tile(r));
            for other in [1, 2, 4, 8].into_iter().filter(|&o| tile(o) <= budget) {
                assert!(time(r, blocks) <= time(other, blocks), "{blocks} blocks: {other} rows beat {r}");
            }
        }
        // thousands of layers: the largest tiles that fit (folding dominates); one layer:
        // no larger ones (setup and compression dominate, and compression only shrinks
        // with the tile's padded size)
        let (few, many) =
            (tile_rows(&block, whole, budget, 1).unwrap(), tile_rows(&block, whole, budget, 4096).unwrap());
        assert!(few <= many, "{few} rows for one layer, {many} for 4096");
        assert_eq!(many, [8, 4, 2, 1].into_iter().find(|&r| tile(r) <= budget).unwrap());
        // nothing fits: the fewest rows the geometry allows
        assert_eq!(tile_rows(&block, whole, 1_000, 1), Some(1));
        // blocks of three layers are not tiled
        assert_eq!(tile_rows(&BlockSpec::new(vec![layer, layer, layer]), whole, budget, 1), None);
    }

    #[test]
    fn a_layer_that_fills_a_fold_alone_is_tiled_when_that_is_faster() {
        use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
        let layer = fold_ml_circuits::layer::LayerSpec::new(
            LinearShape::Conv(ConvShape::same(8, 8, 32, 32, 3)),
            fold_ml_circuits::quant::RequantSpec::new(6, 20).unwrap(),
        );
        let block = BlockSpec::layer(layer);
        let whole = StepCost::of_step(&block, 1).constraints;
        assert!(whole >= TILE_CANDIDATE_CONSTRAINTS, "{whole}");
        // within the budget: one layer proves fastest in tiles (setup and compression
        // shrink with them), thousands fastest whole (fewer folds)
        assert!(tile_rows(&block, whole, DEFAULT_FOLD_BUDGET.max(whole), 1).is_some());
        assert_eq!(tile_rows(&block, whole, DEFAULT_FOLD_BUDGET.max(whole), 4096), None);
        // a smaller step is never tiled within the budget
        let small = BlockSpec::layer(fold_ml_circuits::layer::LayerSpec::new(
            LinearShape::Conv(ConvShape::same(2, 2, 16, 16, 3)),
            fold_ml_circuits::quant::RequantSpec::new(6, 20).unwrap(),
        ));
        let c = StepCost::of_step(&small, 1).constraints;
        assert_eq!(tile_rows(&small, c, DEFAULT_FOLD_BUDGET, 1), None);
    }

    fn wide() -> fold_ml_circuits::layer::LayerSpec {
        use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
        fold_ml_circuits::layer::LayerSpec::new(
            LinearShape::Conv(ConvShape::same(64, 64, 8, 8, 3)),
            fold_ml_circuits::quant::RequantSpec::new(8, 24).unwrap(),
        )
    }

    /// ResNet's 64-channel 8×8 convolution: 36,864 weights, which every row tile holds (so
    /// no row tile fits 2^18); groups of channels hold their share of them.
    #[test]
    fn a_wide_convolution_is_tiled_by_groups_of_channels() {
        let block = BlockSpec::layer(wide());
        let whole = StepCost::of_step(&block, 1).constraints;
        assert!(whole > DEFAULT_FOLD_BUDGET, "{whole}");
        let Some(Tiling::Channels(g)) = tiling(&block, whole, (DEFAULT_FOLD_BUDGET, Groups::Any), (1, Links::Rows))
        else {
            panic!("not tiled by channels")
        };
        let linked = block.clone().with_links([Links::Whole, Links::Channels(g)]);
        let tile = StepCost::of_tiling(&linked, Tiling::Channels(g)).unwrap();
        assert!(tile.constraints <= DEFAULT_FOLD_BUDGET, "{g} channels: {}", tile.constraints);
        assert_eq!(g % 4, 0, "whole chunks of 4 channels");
        // without channel groups: row tiles, none of which fits (the fewest rows)
        assert_eq!(tiling(&block, whole, (DEFAULT_FOLD_BUDGET, Groups::None), (1, Links::Rows)), Some(Tiling::Rows(1)));
    }

    #[test]
    fn parallel_measurements_keep_the_candidates_order() {
        let items: Vec<usize> = (0..37).collect();
        assert_eq!(parallel_map(&items, |&i| i * i), items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert!(parallel_map(&[] as &[usize], |&i| i).is_empty());
    }

    #[test]
    fn tensors_are_committed_as_their_neighbours_need() {
        use fold_ml_circuits::gadgets::{linear::LinearShape, pool::Pool, pool::PoolKind};
        use fold_ml_circuits::layer::LayerSpec;
        let block = BlockSpec::layer(wide());
        let (plain, rows, groups) = (
            Architecture::new(block.clone(), 1),
            Architecture::tiled(block.clone(), 4),
            Architecture::channel_tiled(block, 8),
        );
        let g = Links::Channels(8);
        use Links::{Rows, Whole};
        // a channel-tiled layer writes groups, read whole by anything but a row-tiled layer
        assert_eq!(
            links(&[plain.clone(), groups.clone(), plain.clone()], &[1, 1, 1]),
            Ok(vec![Whole, Whole, g, Whole])
        );
        assert_eq!(links(&[rows.clone(), groups.clone(), groups.clone()], &[1, 1, 1]), Ok(vec![Rows, Rows, g, g]));
        assert_eq!(links(&[groups.clone(), rows.clone()], &[1, 1]), Err(0), "a row-tiled consumer");
        // stacks read what they write
        assert_eq!(links(&[plain.clone(), groups.clone()], &[1, 3]), Ok(vec![Whole, g, g]));
        assert_eq!(links(&[groups.clone(), plain.clone(), plain.clone()], &[1, 2, 1]), Ok(vec![Whole, g, g, Whole]));
        assert_eq!(links(&[rows.clone(), groups.clone()], &[1, 2]), Err(1), "a stack after rows");
        assert_eq!(links(&[groups.clone(), plain.clone(), rows.clone()], &[1, 2, 1]), Err(0), "rows through a stack");
        // a grid writes rows of groups, which row- and grid-tiled layers read by rows
        let grid = Architecture::grid_tiled(BlockSpec::layer(wide()), 8);
        let rg = Links::RowGroups(8);
        assert_eq!(links(&[grid.clone(), rows.clone()], &[1, 1]), Ok(vec![Rows, rg, Rows]));
        assert_eq!(links(&[grid.clone(), grid.clone()], &[1, 1]), Ok(vec![Rows, rg, rg]));
        assert_eq!(links(&[grid.clone(), plain.clone()], &[1, 1]), Ok(vec![Rows, rg, Whole]));
        assert_eq!(links(&[plain.clone(), grid.clone()], &[1, 3]), Ok(vec![Whole, rg, rg]), "a stack of grids");
        // row tiles write rows of groups for a reader (or a stack of their own) that needs them
        assert_eq!(links(&[grid.clone(), rows.clone()], &[1, 2]), Ok(vec![Rows, rg, rg]), "row tiles after a grid");
        assert_eq!(links(&[rows.clone(), grid.clone()], &[1, 2]), Ok(vec![Rows, rg, rg]), "a stack of grids");
        assert_eq!(links(&[rows.clone(), plain.clone()], &[1, 1]), Ok(vec![Rows, Rows, Whole]));
        assert_eq!(
            links(&[rows.clone(), groups.clone(), plain.clone()], &[1, 2, 1]),
            Err(1),
            "rows cannot write groups"
        );
        assert_eq!(links(&[groups.clone(), grid], &[1, 1]), Err(1), "a grid reads rows, not groups of all rows");
        // a pair averaged globally reads rows of its own groups and writes its one row
        let mut second = LayerSpec { skip: 2, ..wide() };
        let LinearShape::Conv(c) = second.shape else { panic!("a convolution") };
        second.pool = Some(Pool::global(PoolKind::Average, c.output_dims()));
        let pooled = Architecture::pair_tiled(BlockSpec::new(vec![wide(), second]), 8);
        assert_eq!(Tiling::Pair(8).input_links(&pooled.block), Some(rg));
        assert_eq!(links(&[rows, pooled.clone(), plain], &[1, 1, 1]), Ok(vec![Rows, rg, Rows, Whole]));
        assert_eq!(links(&[groups, pooled], &[1, 1]), Err(1), "a pooled pair reads rows of its groups");
    }

    /// ResNet-18's 64-channel 3×3 convolution on 56×56 (~116M multiply-accumulates): one
    /// output row already overflows the budget, a group of channels reads the whole input;
    /// one row of a group of channels fits.
    #[test]
    fn a_large_wide_convolution_is_tiled_by_rows_of_groups() {
        use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
        let layer = fold_ml_circuits::layer::LayerSpec::new(
            LinearShape::Conv(ConvShape::same(64, 64, 56, 56, 3)),
            fold_ml_circuits::quant::RequantSpec::new(7, 24).unwrap(),
        );
        let block = BlockSpec::layer(layer);
        let rough = StepCost::rough(&block);
        let Some(Tiling::Grid(g)) = tiling(&block, rough, (DEFAULT_FOLD_BUDGET, Groups::Any), (1, Links::Rows)) else {
            panic!("not a grid")
        };
        let linked = block.clone().with_links([Links::Rows, Links::RowGroups(g)]);
        let tile = StepCost::of_tiling(&linked, Tiling::Grid(g)).unwrap();
        assert!(tile.constraints <= DEFAULT_FOLD_BUDGET, "{g} channels: {}", tile.constraints);
        assert_eq!(Tiling::Grid(g).tiles(&linked), 56 * 64 / g);
    }
}
