//! Fusing consecutive one-block segments of a network into one block, so that a network
//! of layers that each occur once (a small CNN) is one segment: one parameter setup, one
//! fold and one compressed proof instead of one of each per layer.
//!
//! Why it is a model transformation and not a planning choice: a block's layers are
//! committed with their place in the block ([`fold_ml_circuits::layer::LayerSpec::digest_at`]),
//! so fusing changes the model commitment. It is done once, when the model file is
//! written (`import`), and the commitment of the fused file is the one every later step
//! uses (`fold-ml commit` prints it).
//!
//! What may be fused: a segment of one block (any: a plain layer, a residual block) with
//! the next segment when that one is one block whose layers have no shortcut terms — a
//! shortcut reads its block's input, which fusing would change. The fused block applies
//! the same layers to the same tensors (stage by stage, as [`run_native`] shows), so the
//! network computes exactly what it did; the tensor between the two is no longer
//! committed, it stays inside the step (constrained like every tensor inside a block).
//!
//! When: only if the fused whole step fits the fold budget (blocks of more than two layers
//! cannot be tiled) and the cost model estimates it cheaper to prove than the two apart
//! (fold, compression and parameter setup: compression is linear in the padded size, so
//! two halves of 2^16 fused into 2^17 gain nothing, and three steps of 20–30k constraints
//! fused into one of 2^16 save two compressions).
//!
//! [`run_native`]: fold_ml_circuits::reference::run_native

use crate::model::network::{Network, Segment};
use crate::model::Architecture;
use crate::prove::plan::{estimate_steps, step_constraints, NOVA_PRIMARY_OVERHEAD};
use fold_ml_circuits::layer::{BlockSpec, MAX_STAGES};

/// Fuses `net`'s segments greedily, input to output, under `fold_budget` constraints per
/// step. Returns the fused network and, for each segment of `net`, the index of the
/// segment it went into.
pub fn fuse(net: &Network, fold_budget: usize) -> (Network, Vec<usize>) {
    let mut segments: Vec<Segment> = Vec::with_capacity(net.segments.len());
    let mut index = Vec::with_capacity(net.segments.len());
    for next in &net.segments {
        let merged = segments.last().and_then(|last| fused(last, next, fold_budget));
        match merged {
            Some(segment) => *segments.last_mut().expect("merged with the last") = segment,
            None => segments.push(next.clone()),
        }
        index.push(segments.len() - 1);
    }
    (Network { segments, ..net.clone() }, index)
}

/// `a` and `b` as one segment of one block, when they can be fused and it pays.
fn fused(a: &Segment, b: &Segment, fold_budget: usize) -> Option<Segment> {
    let one_block = |s: &Segment| s.layers.len() == s.spec.num_stages();
    let plain = b.spec.stages.iter().all(|s| s.skip == 0 && s.projection.is_none());
    let stages = a.spec.num_stages() + b.spec.num_stages();
    if !(one_block(a) && one_block(b) && plain && stages <= MAX_STAGES) {
        return None;
    }
    let all = a.spec.stages.iter().chain(&b.spec.stages).copied().collect();
    let block = BlockSpec { stages: all, links: [a.spec.links[0], b.spec.links[1]] };
    block.check().ok()?;
    let fused_c = constraints(&block);
    if fused_c > fold_budget + NOVA_PRIMARY_OVERHEAD {
        return None;
    }
    if cost(fused_c) >= cost(constraints(&a.spec)) + cost(constraints(&b.spec)) {
        return None;
    }
    let layers = a.layers.iter().chain(&b.layers).cloned().collect();
    let origin = a.origin.iter().chain(&b.origin).cloned().collect();
    Some(Segment { spec: block, layers, origin })
}

/// Primary constraints of one whole step of `block`, Nova's circuit included.
fn constraints(block: &BlockSpec) -> usize {
    step_constraints(&Architecture::new(block.clone(), block.num_stages()))
}

/// Estimated seconds to prove one step of `c` primary constraints as its own segment:
/// setup, fold and compression.
fn cost(c: usize) -> f64 {
    let e = estimate_steps(c, 1);
    e.setup_s + e.total_s()
}
