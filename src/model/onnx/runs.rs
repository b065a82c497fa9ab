//! How the float layers group into blocks (a residual shortcut's span) and blocks into runs
//! (consecutive identical blocks that can share one spec, hence one segment).

use super::graph::FloatLayer;
use fold_ml_circuits::gadgets::conv::ConvShape;
use std::ops::Range;

/// A run of identical blocks of `stages` layers each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// The layers of all its blocks.
    pub layers: Range<usize>,
    /// Layers per block.
    pub stages: usize,
}

impl Run {
    /// Blocks in the run.
    pub fn blocks(&self) -> usize {
        self.layers.len() / self.stages
    }

    /// The layers at position `stage` of every block.
    pub fn stage(&self, stage: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.blocks()).map(move |j| self.layers.start + j * self.stages + stage)
    }

    /// Tensor `j` between blocks: the run's input (`j = 0`) or block `j - 1`'s output.
    pub fn boundary(&self, j: usize) -> usize {
        self.layers.start + j * self.stages
    }
}

/// The layer whose input a layer's shortcut terms read (its block's first layer).
pub(crate) fn block_start(layers: &[FloatLayer], l: usize) -> usize {
    l - layers[l].shortcut.as_ref().map_or(0, |s| s.back)
}

/// The layers of each block, in order: a layer with a shortcut closes a block that starts
/// `back` layers earlier; every other layer is a block of its own.
pub(crate) fn blocks(layers: &[FloatLayer]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for l in 0..layers.len() {
        let start = block_start(layers, l);
        while out.last().is_some_and(|b| b.start >= start) {
            out.pop();
        }
        out.push(start..l + 1);
    }
    out
}

/// What a layer's shortcut is, structurally: none, identity, or a projection's geometry.
fn shortcut_shape(l: &FloatLayer) -> Option<(usize, Option<ConvShape>)> {
    l.shortcut.as_ref().map(|s| (s.back, s.projection.as_ref().map(|p| p.shape)))
}

/// Maximal runs of consecutive, stackable blocks of identical structure.
pub(crate) fn runs(layers: &[FloatLayer]) -> Vec<Run> {
    let same_layer = |a: &FloatLayer, b: &FloatLayer| {
        a.kind == b.kind && a.relu == b.relu && shortcut_shape(a) == shortcut_shape(b) && a.pool == b.pool
    };
    let stackable = |b: &Range<usize>| {
        b.clone().all(|l| layers[l].pool.is_none()) && layers[b.start].num_inputs() == layers[b.end - 1].num_outputs()
    };
    let mut out: Vec<Run> = Vec::new();
    let mut prev: Option<Range<usize>> = None;
    for b in blocks(layers) {
        let joins = prev.as_ref().is_some_and(|p| {
            p.len() == b.len()
                && stackable(p)
                && p.clone().zip(b.clone()).all(|(x, y)| same_layer(&layers[x], &layers[y]))
        });
        match out.last_mut() {
            Some(r) if joins => r.layers.end = b.end,
            _ => out.push(Run { layers: b.clone(), stages: b.len() }),
        }
        prev = Some(b);
    }
    out
}
