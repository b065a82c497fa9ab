//! Planning before proving: the constraint count of a step, how many layers to fold per
//! step, and estimates of time, memory and sizes — all without any expensive work.
//!
//! The estimates come from a linear cost model fitted to runs on this project's 2-core
//! reference machine (see the README): per fold `a + b·C` seconds for `C` primary
//! constraints, compression `c + d·C`, peak memory `e + f·C`. They are estimates: the
//! README's measured tables are the ground truth.

use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::layer::LayerSpec;

/// Primary constraints Nova adds to every step (its verifier circuit, arity 3).
pub const NOVA_PRIMARY_OVERHEAD: usize = 9_820;
/// Constraints of Nova's secondary circuit.
pub const NOVA_SECONDARY: usize = 10_349;
/// Most layers folded per step by the automatic choice.
pub const AUTO_MAX_LAYERS_PER_STEP: usize = 64;
/// Largest primary circuit the automatic choice accepts (about 1 GiB of prover memory).
pub const AUTO_MAX_CONSTRAINTS: usize = 250_000;

const FOLD_FIXED_S: f64 = 0.111;
const FOLD_PER_CONSTRAINT_S: f64 = 1.95e-6;
const COMPRESS_FIXED_S: f64 = 2.2;
const COMPRESS_PER_CONSTRAINT_S: f64 = 2.4e-4;
const MEM_FIXED_MIB: f64 = 92.0;
const MEM_PER_CONSTRAINT_MIB: f64 = 3.82e-3;
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
    /// Measures the spec by synthesizing blank steps of one and two layers.
    pub fn of(spec: &LayerSpec) -> Self {
        let one = StepCost::of_step(spec, 1).constraints;
        let two = StepCost::of_step(spec, 2).constraints;
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
    let c = sizes.primary(k);
    let cf = c as f64;
    let folds = crate::prove::num_steps(layers, k);
    Estimate {
        layers_per_step: k,
        constraints: c,
        folds,
        fold_s: folds as f64 * (FOLD_FIXED_S + FOLD_PER_CONSTRAINT_S * cf),
        compress_s: COMPRESS_FIXED_S + COMPRESS_PER_CONSTRAINT_S * cf,
        peak_mib: MEM_FIXED_MIB + MEM_PER_CONSTRAINT_MIB * cf,
        checkpoint_bytes: CHECKPOINT_BYTES_PER_CONSTRAINT * (cf + NOVA_SECONDARY as f64),
        vk_bytes: VK_BYTES_PER_CONSTRAINT * cf.max(65_536.0),
    }
}

/// The depth the automatic choice optimizes for, whatever the actual depth.
pub const AUTO_REFERENCE_DEPTH: usize = 128;

/// The number of layers per step that minimizes the estimated folding + compression time
/// of [`AUTO_REFERENCE_DEPTH`] layers, within [`AUTO_MAX_LAYERS_PER_STEP`],
/// [`AUTO_MAX_CONSTRAINTS`] and the model's depth.
///
/// The choice depends on the layer's size, not on the depth: a deeper model folds more
/// steps of the same size, so its peak memory is the same as a shallow one's. (Tuning the
/// step to the depth would be faster for very deep models, at the price of memory that
/// grows with depth; `--layers-per-step` makes that trade explicitly.)
pub fn auto_layers_per_step(sizes: &StepSizes, layers: usize) -> usize {
    (1..=AUTO_MAX_LAYERS_PER_STEP.min(layers.max(1)))
        .filter(|&k| k == 1 || sizes.primary(k) <= AUTO_MAX_CONSTRAINTS)
        .map(|k| estimate(sizes, AUTO_REFERENCE_DEPTH, k))
        .min_by(|a, b| a.total_s().total_cmp(&b.total_s()))
        .map_or(1, |e| e.layers_per_step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fold_ml_circuits::synthetic::SyntheticModel;

    #[test]
    fn auto_choice_keeps_big_layers_alone_and_groups_small_ones() {
        let conv = StepSizes::of(&SyntheticModel::zator(1, 0).spec());
        assert_eq!(conv.primary(1), 81_662, "matches the measured fold size");
        let k = auto_layers_per_step(&conv, 512);
        assert!(k <= 2, "a 72k-constraint layer needs little amortization, got {k}");
        let tiny = StepSizes { first: 3_000, more: 1_500 };
        let k = auto_layers_per_step(&tiny, 512);
        assert!(k >= 4, "small layers are grouped, got {k}");
        assert_eq!(auto_layers_per_step(&tiny, 1), 1);
        // independent of depth (so memory is too), once the model is deep enough
        assert_eq!(auto_layers_per_step(&tiny, 64), auto_layers_per_step(&tiny, 4096));
        assert_eq!(auto_layers_per_step(&conv, 64), auto_layers_per_step(&conv, 4096));
        assert!(tiny.primary(AUTO_MAX_LAYERS_PER_STEP) <= AUTO_MAX_CONSTRAINTS || k < AUTO_MAX_LAYERS_PER_STEP);
    }
}
