//! Planning before proving: the constraint count of a step, how many layers to fold per
//! step, and estimates of time, memory and sizes — all without any expensive work.
//!
//! The layers per step (part of the public architecture) are a function of constraint
//! counts alone ([`auto_layers_per_step`]). The estimates printed by `inspect` come from a
//! cost model fitted to runs on this project's 2-core reference machine (see the README):
//! per fold `a + b·C` seconds for `C` primary constraints; parameter setup, compression and
//! peak memory `c + d·C + e·C²` (they grow a little faster than linearly: a 1.08M-constraint
//! step compresses in 2.5× the time per constraint of a 59k one). They only choose between
//! tilings and print estimates; the README's measured tables are the ground truth.

use crate::model::{Architecture, ModelSource};
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::layer::BlockSpec;

/// Primary constraints Nova adds to every step (its verifier circuit, arity 3).
pub const NOVA_PRIMARY_OVERHEAD: usize = 9_820;
/// Constraints of Nova's secondary circuit.
pub const NOVA_SECONDARY: usize = 10_349;
/// Most layers folded per step by the automatic choice.
pub const AUTO_MAX_LAYERS_PER_STEP: usize = 64;

const FOLD_FIXED_S: f64 = 0.111;
const FOLD_PER_CONSTRAINT_S: f64 = 1.95e-6;
// Compression, setup and memory fitted on circuits/8 (packed products), one segment at a
// time: the default layer (58,766 primary constraints: 9.8 s compression, 4.3 s setup,
// 312 MiB), ResNet-20 CIFAR's segments proven one per shard (`fold-ml plan --shards 8`,
// `prove-shard`): tiles of 235k (33.3 s, 1,257 MiB), 435k (65.8 s, 2,385 MiB) and 1.08M
// primary constraints (249–257 s, 6,516 MiB), and its fresh-cache setups (2.7–103 s). The
// fixed compression part is mostly the secondary circuit's proof.
const COMPRESS_S: [f64; 3] = [4.0, 7.6e-5, 1.29e-10];
const SETUP_S: [f64; 3] = [1.0, 2.8e-5, 5.7e-11];
const MEM_MIB: [f64; 3] = [11.0, 5.08e-3, 8.55e-10];
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
        compress_s: quadratic(COMPRESS_S, cf),
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
/// [`Estimate::peak_mib`]); 2^18 keeps a segment's near 1.4 GiB on the reference machine
/// (1,257 MiB measured at 235k; 2^19 would allow ~2.9 GiB). Within it the tiling is chosen
/// by estimated time, which for a segment of few blocks already prefers small tiles.
pub const DEFAULT_FOLD_BUDGET: usize = 1 << 18;

/// Output rows per tile for the `blocks` blocks (of one or two layers) of a segment whose
/// whole step has `untiled` constraints, or `None` to prove each block whole. A step that
/// exceeds `budget` is tiled; one that fits but already fills a fold alone (at least
/// [`TILE_CANDIDATE_CONSTRAINTS`], where layers are folded one per step anyway) is tiled
/// when that is estimated faster. Among the whole step (when it fits) and the tilings whose
/// tile fits (rows a divisor of the output height, two tiles or more, a geometry the tile
/// circuit supports), the least estimated time wins: parameter setup and compression grow
/// with the step, folding with the steps' total, and a segment of few blocks pays far more
/// for the first (~2e-4 s per constraint, once) than for the second (~2e-6 s per
/// constraint, every fold), so small tiles usually win there. The fewest rows when nothing
/// fits. Blocks that cannot be tiled (more layers, a two-layer block pooled otherwise than
/// globally, a shortcut the tiles cannot place, a dense layer) get `None`.
pub fn tile_rows(block: &BlockSpec, untiled: usize, budget: usize, blocks: usize) -> Option<usize> {
    let fits = untiled <= budget;
    if fits && untiled < TILE_CANDIDATE_CONSTRAINTS {
        return None;
    }
    let linked = block.clone().with_row_links([true, true]);
    let spec = |rows: usize| fold_ml_circuits::step::tile_spec(&linked, rows).ok();
    let height = fold_ml_circuits::tile::tiled_height(block);
    let candidates: Vec<usize> =
        (1..height).rev().filter(|&r| height.is_multiple_of(r)).filter(|&r| spec(r).is_some()).collect();
    // A tile costs about its share of the layer plus what every tile repeats (weights,
    // halo rows, hashing): measure the rows whose share alone fits.
    let per_row = untiled / height;
    let time = |r: usize, c: usize| {
        let e = estimate_steps(c + NOVA_PRIMARY_OVERHEAD, blocks.max(1) * (height / r));
        e.setup_s + e.fold_s + e.compress_s
    };
    // the whole step, when it fits
    let mut best: Option<(f64, usize)> = fits.then(|| (time(height, untiled), height));
    let mut fallback = None;
    for &r in candidates.iter().filter(|&&r| r * per_row <= budget) {
        let cost = StepCost::of_tile(&spec(r)?).ok()?.constraints;
        if cost <= budget {
            let t = time(r, cost);
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, r));
            }
        }
        fallback = Some(r);
    }
    match best {
        Some((_, r)) if r == height => None,
        Some((_, r)) => Some(r),
        None => fallback.or(candidates.last().copied()),
    }
}

/// Steps of at least this many constraints (four times what the automatic choice fills a
/// step up to, so their layers are folded one per step) are tiled when tiles are estimated
/// faster, even within the fold budget.
pub const TILE_CANDIDATE_CONSTRAINTS: usize = 4 * AUTO_STEP_CONSTRAINTS;

/// The architecture of each segment of `model`: `layers_per_step` (or the automatic
/// choice) for stackable one-layer blocks, a multi-layer block per step, and layers whose
/// step exceeds `fold_budget` tiled; tensors next to a tiled layer are committed one row
/// per link.
pub fn architectures(
    model: &dyn ModelSource,
    layers_per_step: Option<usize>,
    fold_budget: Option<usize>,
) -> Vec<Architecture> {
    let budget = fold_budget.unwrap_or(DEFAULT_FOLD_BUDGET);
    let mut archs: Vec<Architecture> = model
        .segments()
        .iter()
        .map(|seg| {
            let spec = seg.spec();
            // a layer far over the budget is never synthesized whole
            let rough = StepCost::rough(&spec);
            let untiled =
                if rough > 2 * budget { rough } else { StepCost::of_step(&spec, spec.num_stages()).constraints };
            let blocks = seg.num_layers() / spec.num_stages().max(1);
            if let Some(rows) = tile_rows(&spec, untiled, budget, blocks) {
                return Architecture::tiled(spec, rows);
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
        })
        .collect();
    let tiled: Vec<bool> = archs.iter().map(|a| a.tile_rows.is_some()).collect();
    for (j, arch) in archs.iter_mut().enumerate() {
        let before = j > 0 && tiled[j - 1];
        let after = tiled.get(j + 1).copied().unwrap_or(false);
        let links = [tiled[j] || before, tiled[j] || after];
        arch.block = arch.block.clone().with_row_links(links);
    }
    archs
}

#[cfg(test)]
mod tests {
    use super::*;
    use fold_ml_circuits::synthetic::SyntheticModel;

    #[test]
    fn auto_choice_is_a_function_of_constraint_counts() {
        let conv = StepSizes::of(&BlockSpec::layer(SyntheticModel::zator(1, 0).spec()));
        assert_eq!(conv.primary(1), 58_766, "matches the measured fold size");
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
        let tile = |r: usize| StepCost::of_tile(&TileSpec { layer, second: None, rows: r }).unwrap().constraints;
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
        // one layer: the smallest tiles (setup and compression dominate); thousands of
        // layers: the largest that fit (folding dominates)
        let (few, many) =
            (tile_rows(&block, whole, budget, 1).unwrap(), tile_rows(&block, whole, budget, 4096).unwrap());
        assert!(few < many, "{few} rows for one layer, {many} for 4096");
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
}
