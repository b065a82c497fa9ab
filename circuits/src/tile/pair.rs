//! Pairs: a basic block (`conv → conv + shortcut`, a residual or a projection) proven as two
//! grids of tiles by one circuit (see [`super`], "Pairs of grids").

use super::channels::TAG_PAIR;
use super::geometry::{pools_globally, TileSpec};
use super::state::{TileState, TILE_ARITY};
use super::step::{band_linear, Flags, Role, TileStep, TileWitness};
use super::terms::{alloc_term, equal_if, product, select, Term};
use crate::commit::{chain_link, chain_link_native, domain_tag, hash, hash_native, LayerUpdate, Layout};
use crate::gadgets::bits::{alloc_uint, lc};
use crate::gadgets::conv::ConvShape;
use crate::gadgets::linear::{either_packing, linear_hints, Linear, LinearShape};
use crate::layer::{zero_weights, LayerWeights};
use crate::quant::{bits_le, QuantError, RequantSpec, ACT_BITS};
use crate::spec::{BlockSpec, LayerSpec, Links};
use crate::F;
use ff::Field;
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The first link's `prev` of a tensor chained after another's commitment (a block's
/// middle tensor after the block input): `H(TAG_PAIR, tag, commitment)`.
pub fn pair_start_native(tag: F, commitment: F) -> F {
    hash_native(&[domain_tag(TAG_PAIR, 3), tag, commitment])
}

/// In-circuit twin of [`pair_start_native`].
pub(super) fn pair_start<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    tag: F,
    commitment: &AllocatedNum<F>,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let items = [domain_tag(TAG_PAIR, 3), tag].map(Elt::num_from_fr::<CS>);
    hash(cs, &[items[0].clone(), items[1].clone(), Elt::Allocated(commitment.clone())])
}

/// How a pair of `channels` channels per tile whose second layer is `second` commits the
/// block's output: one row of a group per link, or, averaged globally, its one row (every
/// channel) in one link.
pub fn pair_output_links(second: &LayerSpec, channels: usize) -> Links {
    match pools_globally(second) {
        true => Links::Rows,
        false => Links::RowGroups(channels),
    }
}

/// A basic block tiled as a pair of grids: first every output row of every group of
/// `channels` channels of its first convolution (the middle tensor, committed one row of a
/// group per link), then the same grid of its second convolution with the shortcut (a
/// residual, or a projection of the block input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    /// The first convolution: no shortcut terms, no pooling.
    pub first: LayerSpec,
    /// The second: a residual of the block input (same dimensions) or a projection of it
    /// (its vertical stride the first convolution's, no vertical padding, a kernel no taller
    /// than that stride); pooled only by a global average, and then only when one tile
    /// serves both passes ([`Self::shares`], [`super::pair_pool`]).
    pub second: LayerSpec,
    /// Output channels per tile (whole model-commitment chunks of both layers).
    pub channels: usize,
    /// How the block input is committed: one row (of every channel, or of groups) per link.
    pub input: Links,
}

impl PairSpec {
    /// The first pass: a grid of the first convolution over the block input.
    pub fn pass_a(&self) -> TileSpec {
        TileSpec::grid(self.first, self.channels, self.input)
    }

    /// The second pass: a grid of the second convolution (its shortcut added by the pair)
    /// over the middle tensor.
    pub fn pass_b(&self) -> TileSpec {
        let layer = LayerSpec { skip: 0, projection: None, pool: None, ..self.second };
        TileSpec::grid(layer, self.channels, Links::RowGroups(self.channels))
    }

    /// Block input rows per output row: the first convolution's vertical stride.
    fn stride(&self) -> usize {
        match self.first.shape {
            LinearShape::Conv(c) => c.stride[0],
            LinearShape::Dense(_) => 1,
        }
    }

    /// Whether a second-pass tile streams only its own link of the block input ([`super`],
    /// "Own links"): a residual block whose input rows have one link per group of the pair.
    fn own_stream(&self) -> bool {
        let layout = self.block().input_layout();
        let groups = self.second.shape.num_biases() / self.channels.max(1);
        self.second.skip != 0
            && self.second.projection.is_none()
            && self.stride() == 1
            && layout.link_rows == 1
            && layout.links() == layout.dims[1] * groups
    }

    /// The block's channel tiling (its groups' weights and model-commitment chunks).
    fn groups(&self) -> super::GroupSpec {
        super::GroupSpec { layer: self.first, second: Some(self.second), input: self.input, channels: self.channels }
    }

    /// Tiles per pass.
    pub fn pass_tiles(&self) -> usize {
        self.pass_a().tiles()
    }

    /// Tiles per block: both passes.
    pub fn tiles(&self) -> usize {
        2 * self.pass_tiles()
    }

    /// Whether the block ends in a global average pooling, which the second pass
    /// accumulates over its tiles ([`super::pair_pool`]).
    pub fn pooled(&self) -> bool {
        pools_globally(&self.second)
    }

    /// How the block's output is committed ([`pair_output_links`]).
    pub fn output_links(&self) -> Links {
        pair_output_links(&self.second, self.channels)
    }

    /// The tiled block: its input committed as given, its output as [`Self::output_links`].
    pub fn block(&self) -> BlockSpec {
        BlockSpec::new(vec![self.first, self.second]).with_links([self.input, self.output_links()])
    }

    /// One tile's part of layer `stage`'s model-commitment update (as a channel tiling of
    /// the block cuts it).
    pub(super) fn update(&self, stage: usize) -> LayerUpdate {
        self.groups().group_update(stage)
    }

    /// Checks the block and both passes' grids.
    pub fn check(&self) -> Result<(), QuantError> {
        let bad = |m: &str| Err(QuantError::BadSpec(m.into()));
        self.block().check()?;
        let convs = matches!((self.first.shape, self.second.shape), (LinearShape::Conv(_), LinearShape::Conv(_)));
        if !convs || self.first.pool.is_some() || (self.second.pool.is_some() && !self.pooled()) {
            return bad("a pair of grids tiles two convolutions, not pooled (but globally averaged)");
        }
        if self.first.skip != 0 || self.first.projection.is_some() {
            return bad("a pair's first convolution has no shortcut");
        }
        let s = self.stride();
        match (self.second.skip, self.second.projection) {
            (0, Some(p)) if p.stride[0] == s && p.kernel[0] <= s && (p.pads[0], p.pads[2]) == (0, 0) => {}
            (0, Some(_)) => {
                return bad("a pair's projection has the first convolution's vertical stride, no vertical \
                            padding and a kernel no taller than it");
            }
            (0, None) | (_, Some(_)) => return bad("a pair's second convolution adds a residual or a projection"),
            (_, None) if s != 1 => return bad("a pair with a residual has a first convolution of stride 1"),
            _ => {}
        }
        if !matches!(self.input, Links::Rows | Links::RowGroups(_)) {
            return bad("a pair reads its input one row per link");
        }
        self.groups().check()?;
        let (a, b) = (self.pass_a(), self.pass_b());
        a.geometry()?;
        b.geometry()?;
        let rows = super::tiled_height(&self.block());
        if self.pooled() && !self.shares() {
            return bad("a pair averaged globally is an identity block whose passes share one tile");
        }
        if a.tiles() != b.tiles() || self.first.input_dims()[1] != s * rows {
            return bad("a pair's passes must cover the same rows and groups, and its input stride times its rows");
        }
        Ok(())
    }
}

impl PairSpec {
    /// A first-pass tile's role: a shared tile's (on a blank block input, running sums of
    /// zeros when pooled), else the first pass's.
    fn role_a(&self) -> Role {
        let sums_before = PairNative::blank_sums(self);
        match self.shares() {
            true => {
                let sc = PairStep::shortcut(self);
                Role::Shared(Box::new(Shared { sc, second: false, pair: *self, sums_before }))
            }
            false => Role::First,
        }
    }

    /// A second-pass tile's role, streaming `sc` beside it (pooled: the running sums of
    /// the tiles before it).
    fn role_b(&self, sc: Shortcut, sums_before: Vec<u64>) -> Role {
        match self.shares() {
            true => Role::Shared(Box::new(Shared { sc, second: true, pair: *self, sums_before })),
            false => Role::Second(Box::new(sc)),
        }
    }

    /// Whether one tile serves both passes ([`Shared`]): a residual block whose two
    /// convolutions have one geometry, read and write tensors of one layout (its input
    /// committed in rows of the pair's groups) and cut their weights into the same chunks —
    /// ResNet's identity blocks. Their circuits then differ only in constants that a pass
    /// bit selects; anything else (a projection block, an input in other links) keeps two
    /// passes, the idle one on blank values.
    pub fn shares(&self) -> bool {
        let (a, b) = (self.pass_a(), self.pass_b());
        let same_geometry = match (a.geometry(), b.geometry()) {
            (Ok(ga), Ok(gb)) => ga == gb,
            _ => false,
        };
        self.second.skip != 0
            && self.second.projection.is_none()
            && a.layer.shape == b.layer.shape
            && a.block().input_layout() == b.block().input_layout()
            && a.block().output_layout() == b.block().output_layout()
            && self.update(0).chunks == self.update(1).chunks
            && same_geometry
            && self.shared_ops(&a).is_ok()
    }

    /// Both passes' band convolutions in a shared tile of geometry `spec`'s (the second with
    /// its residual), each requantized at the wider of the two accumulator widths (the
    /// narrower layer's bound is then not enforced: an accumulator past it would saturate
    /// as the requantization defines, where the native reference refuses it).
    pub(super) fn shared_ops(&self, spec: &TileSpec) -> Result<(Linear, Linear), QuantError> {
        let g = spec.geometry()?;
        let acc_bits = self.first.requant.acc_bits().max(self.second.requant.acc_bits());
        let widen = |mut op: Linear| -> Result<Linear, QuantError> {
            op.requant = RequantSpec::new(op.requant.shift(), acc_bits)?;
            Ok(op)
        };
        let a = widen(band_linear(&self.pass_a(), &g)?)?;
        let b = band_linear(&self.pass_b(), &g)?;
        let b = widen(Linear { skip: self.second.skip, block_zero_point: self.first.zero_point, ..b })?;
        either_packing(&a, &b)?;
        Ok((a, b))
    }
}

/// A tile of a pair whose passes share one circuit ([`PairSpec::shares`]): the pass bit
/// `p` (from the block's tile index) selects the first layer's constants or the second's —
/// the padding value (each layer's input zero point), the spec digest its weights' chunks
/// absorb into the model commitment, the requantization shift and the input's zero point
/// ([`crate::gadgets::linear::linear_requant_either`]), where the input chain starts (the
/// block input's tag and blind, or the middle tensor after the block input's commitment)
/// and where the output chain starts (the middle tensor after the block input's
/// commitment, or the block output's tag and blind) — and gates the second layer's
/// residual and its check that the block input streamed beside it is the committed one.
/// Everything else (the window, its hashes, the weights' range checks, the products, the
/// hand-offs) is one set of cells that the first pass fills with the block input's rows
/// and the first layer's group weights, the second with the middle tensor's and the
/// second layer's. With `p` fixed, the circuit is the two-pass pair's active tile (the
/// hand-offs carry the streamed block input's chain values times `p`: zeros in the first
/// pass, as if it had none), so the pair's argument carries over; a tile run with the other pass's
/// bit is another index, which the index argument rules out.
#[derive(Clone, Debug)]
pub(super) struct Shared {
    /// The block input streamed beside the tile (blank in the first pass).
    pub(super) sc: Shortcut,
    /// The pass: false the first, true the second.
    pub(super) second: bool,
    pub(super) pair: PairSpec,
    /// A pooled pair ([`super::pair_pool`]): the per-channel sums of the block output's
    /// rows before this tile (zeros in the first pass); else empty.
    pub(super) sums_before: Vec<u64>,
}

impl Shared {
    /// The two layers' input zero points, in pass order.
    pub(super) fn zero_points(&self) -> (F, F) {
        let zp = |l: &LayerSpec| F::from(u64::from(l.zero_point));
        (zp(&self.pair.first), zp(&self.pair.second))
    }

    /// The two layers' spec digests (as their tiles absorb them), in pass order.
    pub(super) fn digests(&self) -> (F, F) {
        (self.pair.update(0).digest, self.pair.update(1).digest)
    }
}

/// A pair's native values shared by the tiles of a block: its input, the middle tensor,
/// and the input's chain after each row.
#[derive(Debug)]
pub(super) struct PairNative {
    input: Vec<u8>,
    mid: Vec<u8>,
    /// The block input's chain after each of its links.
    links: Vec<F>,
    /// A pooled pair: the block's output before the pooling (channel-major); else empty.
    out: Vec<u8>,
}

impl PairNative {
    fn new(spec: &PairSpec, input: &[u8], w: &TileWitness, blind: F) -> Result<Self, QuantError> {
        let op = spec.first.linear(spec.first.zero_point);
        let w1 = &w.layer_weights;
        let mid = linear_hints(&op, input, input, &w1.weights, &w1.bias)?.ys();
        let out = match (spec.pooled(), &w.second_weights) {
            (true, Some(w2)) => {
                let op = LayerSpec { pool: None, ..spec.second }.linear(spec.first.zero_point);
                linear_hints(&op, &mid, input, &w2.weights, &w2.bias)?.ys()
            }
            _ => Vec::new(),
        };
        Ok(Self { input: input.to_vec(), mid, links: Self::links(spec, input, blind), out })
    }

    /// Running sums of zeros of a pooled pair (none otherwise).
    fn blank_sums(spec: &PairSpec) -> Vec<u64> {
        vec![0; if spec.pooled() { spec.second.shape.num_biases() } else { 0 }]
    }

    /// A pooled pair's running sums before second-pass tile `local`: per channel, its
    /// rows above the tile's band, and the band's row in the groups before the tile's.
    fn sums_before(&self, spec: &PairSpec, local: usize) -> Vec<u64> {
        if !spec.pooled() {
            return Vec::new();
        }
        let [ch, h, w] = spec.pass_b().output_dims();
        let groups = ch / spec.channels;
        let (band, group) = (local / groups, local % groups);
        (0..ch)
            .map(|c| {
                let rows = band + usize::from(c / spec.channels < group);
                self.out[c * h * w..][..rows * w].iter().map(|&v| u64::from(v)).sum()
            })
            .collect()
    }

    /// The block input's chain (committed under `blind`) after each of its links.
    fn links(spec: &PairSpec, input: &[u8], blind: F) -> Vec<F> {
        let layout = spec.block().input_layout();
        let mut chain = (layout.tag(), blind);
        (0..layout.links())
            .map(|j| {
                let values: Vec<u8> = layout.link(j).into_iter().map(|i| input[i]).collect();
                chain = (chain_link_native(chain.0, chain.1, &values), F::ZERO);
                chain.0
            })
            .collect()
    }
}

/// What a second-pass tile reads of the block input: the rows of its band (every channel,
/// in commitment order; one, or the first convolution's stride), the input's chain before
/// them, and the input's commitment; or, streaming its own link ([`PairSpec::own_stream`]),
/// its group's link of its band's row and the chain before that link.
#[derive(Clone, Debug)]
pub(super) struct Shortcut {
    /// The tile streams its own link only.
    own: bool,
    skip: u32,
    /// A projection, over the rows the tile reads (`rows` high, all channels).
    projection: Option<ConvShape>,
    block_zero_point: u8,
    layout: Layout,
    /// Output channels per group.
    channels: usize,
    /// The block's channel tiling (the second layer's group weights).
    groups: super::GroupSpec,
    /// The block input rows of the band, in commitment order: `stride` of them (own link:
    /// the group's link of the band's row).
    row: Vec<u8>,
    /// The chain before the row (0 in the first band); own link: before the link (0 in
    /// the first tile).
    pub(super) prev: F,
    /// A band's first group (but the first band's): the previous band's `prev`; else (and
    /// with own links) 0.
    prev_prev: F,
    /// The block input's commitment.
    pub(super) total: F,
}

/// A second-pass tile's block input values in the circuit.
pub(super) struct PairVars {
    prev: AllocatedNum<F>,
    after: AllocatedNum<F>,
    /// Rows streamed whole (none with own links).
    prev_prev: Option<AllocatedNum<F>>,
    pub(super) total: AllocatedNum<F>,
    /// What the second convolution's shortcut reads (a residual: the tile's group's).
    pub(super) residual: Vec<LinearCombination<F>>,
    /// A residual's group flags (in a shared tile, times the pass bit); none for a projection.
    pub(super) flags: Vec<Term>,
}

/// What a second-pass tile's hand-off carries besides a grid's: what it hands on, what
/// the previous tile's must hold in the same band, and in the band above. Rows streamed
/// whole: `(prev, after, total)`, the same in a band, the band above's `(prev_prev, prev,
/// total)`; own links: `(after, total)`, opened by `(prev, total)` — the chain runs from
/// tile to tile.
pub(super) struct Carried {
    pub(super) out: Vec<AllocatedNum<F>>,
    pub(super) same: Vec<AllocatedNum<F>>,
    pub(super) band: Vec<AllocatedNum<F>>,
}

impl PairVars {
    /// What the hand-off carries; in a shared tile (`gate`: its pass bit) multiplied by the
    /// bit, so the first pass, which streams a blank block input, carries zeros.
    pub(super) fn carried<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        gate: Option<&Term>,
    ) -> Result<Carried, SynthesisError> {
        let mut gated = |name: &str, v: &AllocatedNum<F>| match gate {
            Some(bit) => product(&mut cs.namespace(|| format!("gated {name}")), bit, &Term::var(v)),
            None => Ok(v.clone()),
        };
        let (prev, after, total) =
            (gated("prev", &self.prev)?, gated("after", &self.after)?, gated("total", &self.total)?);
        match &self.prev_prev {
            Some(pp) => {
                let pp = gated("prev prev", pp)?;
                let out = vec![prev.clone(), after, total.clone()];
                Ok(Carried { same: out.clone(), out, band: vec![pp, prev, total] })
            }
            None => {
                let opens = vec![prev, total.clone()];
                Ok(Carried { out: vec![after, total], same: opens.clone(), band: opens })
            }
        }
    }
}

impl Shortcut {
    /// The second convolution with the shortcut.
    pub(super) fn op(&self, op: Linear) -> Linear {
        Linear { skip: self.skip, projection: self.projection, block_zero_point: self.block_zero_point, ..op }
    }

    /// Group `group`'s weights of the second layer (its own rows, then its projection's)
    /// out of the layer's `w`.
    pub(super) fn group_weights(&self, w: &LayerWeights, group: usize) -> LayerWeights {
        self.groups.group_weights(1, w, group)
    }

    fn link_len(&self) -> usize {
        self.layout.link_channels * self.layout.dims[2]
    }

    /// The input's chain after the row (own link: after the link): from the layout's tag
    /// and `blind` in the first band (own link: the first tile), else from `prev`.
    fn after_native(&self, (band, group): (usize, usize), blind: F) -> F {
        let first = band == 0 && (group == 0 || !self.own);
        let mut links = self.row.chunks(self.link_len());
        let (prev, aux) = if first { (self.layout.tag(), blind) } else { (self.prev, F::ZERO) };
        let first = links.next().map_or(prev, |v| chain_link_native(prev, aux, v));
        links.fold(first, |acc, v| chain_link_native(acc, F::ZERO, v))
    }

    /// How many values the hand-off carries besides a grid's (see [`Carried`]).
    pub(super) fn handoff_len(&self) -> usize {
        if self.own {
            2
        } else {
            3
        }
    }

    /// What tile `(band, group)`'s hand-off carries besides a grid's (see [`Carried`]).
    pub(super) fn handoff_native(&self, at: (usize, usize), blind: F) -> Vec<F> {
        let after = self.after_native(at, blind);
        match self.own {
            true => vec![after, self.total],
            false => vec![self.prev, after, self.total],
        }
    }

    /// The rows' values (row after row, each channel by channel) in channel-major order,
    /// as a projection reads them.
    fn channel_major(&self) -> Vec<usize> {
        let [c, _, w] = self.layout.dims;
        let rows = self.row.len() / (c * w).max(1);
        (0..c).flat_map(|ch| (0..rows).flat_map(move |y| (0..w).map(move |x| (y * c + ch) * w + x))).collect()
    }

    /// What group `group`'s shortcut reads: a residual its channels of the row,
    /// channel-major; a projection every row, channel-major.
    pub(super) fn shortcut_native(&self, group: usize) -> Vec<u8> {
        if self.projection.is_some() {
            return self.channel_major().into_iter().map(|i| self.row[i]).collect();
        }
        if self.own {
            return self.row.clone();
        }
        let (g, w) = (self.channels, self.layout.dims[2]);
        (0..g).flat_map(|c| (0..w).map(move |x| (group * g + c) * w + x)).map(|i| self.row[i]).collect()
    }

    /// The rows (range-checked), their chain links from `prev` (the first band: from the
    /// layout's tag and `blind`), the check that the last tile's chain is the input's
    /// commitment, and what the shortcut reads: a projection the rows, a residual the
    /// group's channels of the row, selected by the group flags (one product per value).
    /// Own link: the tile's link only, chained from `prev` (the first tile: from the tag
    /// and `blind`), the residual itself.
    ///
    /// In a tile shared by both passes (`gate`: its pass bit) the check and the residual
    /// hold in the second pass only: the residual is multiplied by the bit.
    pub(super) fn stream<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        f: &Flags,
        blind: &AllocatedNum<F>,
        gate: Option<&Term>,
    ) -> Result<PairVars, SynthesisError> {
        let values: Vec<_> = self
            .row
            .iter()
            .enumerate()
            .map(|(j, &a)| alloc_uint(&mut cs.namespace(|| format!("x{j}")), &bits_le(a.into(), ACT_BITS)))
            .collect::<Result<_, _>>()?;
        let prev = AllocatedNum::alloc(cs.namespace(|| "prev"), || Ok(self.prev))?;
        let prev_prev = match self.own {
            true => None,
            false => Some(AllocatedNum::alloc(cs.namespace(|| "prev prev"), || Ok(self.prev_prev))?),
        };
        let total = AllocatedNum::alloc(cs.namespace(|| "total"), || Ok(self.total))?;
        let tag = Term::constant::<CS>(self.layout.tag());
        let first = if self.own { &f.t_first } else { &f.first };
        let start = select(&mut cs.namespace(|| "start"), first, &tag, &Term::var(&prev))?;
        let aux = product(&mut cs.namespace(|| "blind"), first, &Term::var(blind))?;
        let (mut chain, mut aux) = (Elt::Allocated(start), Elt::Allocated(aux));
        for (k, link) in values.chunks(self.link_len()).enumerate() {
            chain = Elt::Allocated(chain_link(&mut cs.namespace(|| format!("link{k}")), chain, aux, link)?);
            aux = Elt::num_from_fr::<CS>(F::ZERO);
        }
        let Elt::Allocated(after) = chain else { return Err(SynthesisError::Unsatisfiable("an empty row".into())) };
        let opens = match gate {
            Some(bit) => Term::var(&product(&mut cs.namespace(|| "second pass ends"), bit, &f.t_last)?),
            None => f.t_last.clone(),
        };
        equal_if(&mut cs.namespace(|| "input opens"), &opens, &Term::var(&after), &Term::var(&total));
        if self.projection.is_some() {
            let residual = self.channel_major().into_iter().map(|i| lc(&values[i])).collect();
            return Ok(PairVars { prev, after, prev_prev, total, residual, flags: Vec::new() });
        }
        let flags: Vec<Term> = match gate {
            Some(bit) => f
                .groups
                .iter()
                .enumerate()
                .map(|(k, flag)| {
                    product(&mut cs.namespace(|| format!("gated group {k}")), bit, flag).map(|v| Term::var(&v))
                })
                .collect::<Result<_, _>>()?,
            None => f.groups.clone(),
        };
        if self.own {
            let residual = values
                .iter()
                .enumerate()
                .map(|(o, v)| match gate {
                    Some(bit) => {
                        product(&mut cs.namespace(|| format!("residual {o}")), bit, &Term(lc(v), v.get_value()))
                            .map(|p| LinearCombination::zero() + p.get_variable())
                    }
                    None => Ok(lc(v)),
                })
                .collect::<Result<_, SynthesisError>>()?;
            return Ok(PairVars { prev, after, prev_prev, total, residual, flags });
        }
        let (g, w) = (self.channels, self.layout.dims[2]);
        let residual = (0..g * w)
            .map(|o| {
                let (c, x) = (o / w, o % w);
                flags.iter().enumerate().try_fold(LinearCombination::zero(), |acc, (k, flag)| {
                    let v = &values[(k * g + c) * w + x];
                    let p =
                        product(&mut cs.namespace(|| format!("residual {k} {o}")), flag, &Term(lc(v), v.get_value()))?;
                    Ok(acc + p.get_variable())
                })
            })
            .collect::<Result<_, SynthesisError>>()?;
        Ok(PairVars { prev, after, prev_prev, total, residual, flags })
    }
}

/// One tile of a pair of grids as a Nova step (cheap to clone): tiles `0..T` the first
/// pass's, `T..2T` the second's; the circuit holds both passes' tiles, the other one at
/// its first tile on blank values, and keeps the active one's state.
#[derive(Clone, Debug)]
pub struct PairStep {
    spec: PairSpec,
    tile: usize,
    a: TileStep,
    b: TileStep,
    /// One tile serves both passes ([`Shared`]): `a` and `b` are both the active one.
    shared: bool,
}

impl PairStep {
    /// Tile `tile` of the block applied to its whole `input` (channel-major), with both
    /// layers' weights in `witness`.
    pub fn new(spec: PairSpec, tile: usize, input: &[u8], witness: &TileWitness) -> Result<Self, QuantError> {
        spec.check()?;
        let t = spec.pass_tiles();
        if tile >= 2 * t {
            return Err(QuantError::BadSpec(format!("tile {tile} of {}", 2 * t)));
        }
        let second_weights = witness
            .second_weights
            .clone()
            .ok_or_else(|| QuantError::BadSpec("a pair's witness holds both layers' weights".into()))?;
        let shared = spec.shares();
        if tile < t {
            let w = TileWitness { second_weights: None, ..witness.clone() };
            let a = TileStep::new(spec.pass_a(), tile, input, w)?;
            if shared {
                let a = a.with_role(spec.role_a(), spec.update(0))?;
                return Ok(Self { spec, tile, a: a.clone(), b: a, shared });
            }
            let a = a.with_role(Role::First, spec.update(0))?;
            return Ok(Self { spec, tile, a, b: Self::blank_b(&spec)?, shared });
        }
        let native = {
            let mut cache = witness.cache.lock();
            match cache.pair.clone().filter(|n| n.input == input) {
                Some(n) => n,
                None => {
                    let n = Arc::new(PairNative::new(&spec, input, witness, witness.blind_in)?);
                    cache.pair = Some(n.clone());
                    n
                }
            }
        };
        let local = tile - t;
        let w = TileWitness { layer_weights: second_weights, second_weights: None, ..witness.clone() };
        let b = TileStep::new(spec.pass_b(), local, &native.mid, w)?;
        let sc = Self::shortcut_at(&spec, (input, &native.links), local);
        let b = b.with_role(spec.role_b(sc, native.sums_before(&spec, local)), spec.update(1))?;
        if shared {
            return Ok(Self { spec, tile, a: b.clone(), b, shared });
        }
        let a = TileStep::blank(spec.pass_a())?.with_role(Role::First, spec.update(0))?;
        Ok(Self { spec, tile, a, b, shared })
    }

    /// A shortcut on blank values.
    fn shortcut(spec: &PairSpec) -> Shortcut {
        let layout = spec.block().input_layout();
        let projection =
            spec.second.projection.map(|p| ConvShape { height: spec.stride(), channels_out: spec.channels, ..p });
        let own = spec.own_stream();
        let row_len = if own { layout.link(0).len() } else { layout.row_len() * spec.stride() };
        Shortcut {
            own,
            skip: spec.second.skip,
            projection,
            block_zero_point: spec.first.zero_point,
            layout,
            channels: spec.channels,
            groups: spec.groups(),
            row: vec![0; row_len],
            prev: F::ZERO,
            prev_prev: F::ZERO,
            total: F::ZERO,
        }
    }

    /// Second-pass tile `local`'s shortcut: its band's rows of `input` (own link: its
    /// link), whose chain after each link is `links`.
    fn shortcut_at(spec: &PairSpec, (input, links): (&[u8], &[F]), local: usize) -> Shortcut {
        let groups = spec.pass_b().groups();
        let (band, group) = (local / groups, local % groups);
        let layout = spec.block().input_layout();
        let total = links.last().copied().unwrap_or(F::ZERO);
        let blank = Self::shortcut(spec);
        if blank.own {
            let row = layout.link(local).into_iter().map(|i| input[i]).collect();
            let prev = local.checked_sub(1).map_or(F::ZERO, |j| links[j]);
            return Shortcut { row, prev, total, ..blank };
        }
        let s = spec.stride();
        let per_row = layout.links() / layout.dims[1].max(1);
        // the chain after the last row of band `b` (none before the first band)
        let chain = |b: Option<usize>| b.map_or(F::ZERO, |b| links[(s * b + s) * per_row - 1]);
        Shortcut {
            row: (s * band..s * band + s).flat_map(|y| layout.row(y)).map(|i| input[i]).collect(),
            prev: chain(band.checked_sub(1)),
            prev_prev: if group == 0 { chain(band.checked_sub(2)) } else { F::ZERO },
            total,
            ..blank
        }
    }

    /// The second pass's first tile on zeros (its weights the second layer's, the
    /// projection's included).
    fn blank_b(spec: &PairSpec) -> Result<TileStep, QuantError> {
        let sc = Self::shortcut(spec);
        let witness = TileWitness::blank(zero_weights(&spec.second), None);
        let b = TileStep::new(spec.pass_b(), 0, &vec![0; spec.second.num_inputs()], witness)?;
        b.with_role(spec.role_b(sc, PairNative::blank_sums(spec)), spec.update(1))
    }

    /// Tile 0 of the given spec with all-zero values, for parameter setup.
    pub fn blank(spec: PairSpec) -> Result<Self, QuantError> {
        let witness = TileWitness::blank(zero_weights(&spec.first), Some(zero_weights(&spec.second)));
        Self::new(spec, 0, &vec![0; spec.first.num_inputs()], &witness)
    }

    /// The tile's index in its block.
    pub fn tile(&self) -> usize {
        self.tile
    }

    /// The pair's spec.
    pub fn spec(&self) -> &PairSpec {
        &self.spec
    }

    /// The active pass's tile (the first pass's before `pass_tiles`).
    pub fn pass(&self) -> &TileStep {
        if self.tile < self.spec.pass_tiles() {
            &self.a
        } else {
            &self.b
        }
    }

    /// The tile with the active pass's witness rows replaced (the block input's rows in
    /// the first pass, the middle tensor's in the second) and the honest computation on
    /// them: a forger's (tests).
    pub fn with_rows(&self, rows: Vec<u8>) -> Result<Self, QuantError> {
        let mut step = self.clone();
        match self.tile < self.spec.pass_tiles() {
            true => step.a = self.a.with_rows(rows)?,
            false => step.b = self.b.with_rows(rows)?,
        }
        if self.shared {
            step.a = step.pass().clone();
            step.b = step.a.clone();
        }
        Ok(step)
    }

    /// A second-pass tile whose residual and block input chain are another block input's
    /// (`input`, committed under `blind`), consistently; it claims that input's commitment,
    /// or (`keep`) the one it had: a forger's (tests).
    pub fn with_block_input(&self, input: &[u8], blind: F, keep: bool) -> Result<Self, QuantError> {
        let t = self.spec.pass_tiles();
        let local = self.tile.checked_sub(t).ok_or_else(|| QuantError::BadSpec("a first-pass tile".into()))?;
        let links = PairNative::links(&self.spec, input, blind);
        let mut sc = Self::shortcut_at(&self.spec, (input, &links), local);
        if let (true, Some(own)) = (keep, self.b.shortcut()) {
            sc.total = own.total;
        }
        let b = self.b.with_role(self.spec.role_b(sc, self.sums_before()), self.spec.update(1))?;
        let a = if self.shared { b.clone() } else { self.a.clone() };
        Ok(Self { a, b, ..self.clone() })
    }

    /// A pooled pair's running sums before this tile (zeros in the first pass; empty unless
    /// the pair is averaged globally).
    pub fn sums_before(&self) -> Vec<u64> {
        self.pass().shared().map_or_else(Vec::new, |sh| sh.sums_before.clone())
    }

    /// The tile claiming other running sums before it (its computation unchanged): a
    /// forger's (tests).
    pub fn with_sums_before(&self, sums: Vec<u64>) -> Result<Self, QuantError> {
        let step = self.pass();
        let Some(sh) = step.shared() else { return Err(QuantError::BadSpec("not a pooled pair's tile".into())) };
        let role = Role::Shared(Box::new(Shared { sums_before: sums, ..sh.clone() }));
        let step = step.with_role(role, self.spec.update(usize::from(sh.second)))?;
        Ok(Self { a: step.clone(), b: step, ..self.clone() })
    }

    /// The active pass's witness rows (row by row, each channel by channel).
    pub fn pass_rows(&self) -> Vec<u8> {
        self.pass().rows().to_vec()
    }

    /// The state after this tile, computed natively from the state before it.
    pub fn next_state(&self, z: &TileState) -> TileState {
        let t = self.spec.pass_tiles();
        let index = z.tile as usize;
        let (step, local) = if index < t { (&self.a, index) } else { (&self.b, index - t) };
        // a shared tile at an index of the other pass computes that pass on its cells
        let step = if self.shared { &step.in_pass(index >= t) } else { step };
        let mut next = step.next_state(&TileState { tile: local as u64, ..*z });
        let ends = index >= t && next.base.layer != z.base.layer;
        next.tile = if ends { 0 } else { z.tile + 1 };
        next
    }
}

impl StepCircuit<F> for PairStep {
    fn arity(&self) -> usize {
        TILE_ARITY
    }

    /// `tile = p·T + l` with `p` a bit and `0 ≤ l < T` (both range-checked: the one
    /// decomposition of an index below `2T`); pass A runs at index `(1 - p)·l`, pass B at
    /// `p·l`, so the inactive one sits at its first tile, where none of its checks reads
    /// the state; the next state is the active pass's, its tile index the block's.
    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [layer, _, _, tile, ..] = z else {
            return Err(SynthesisError::Unsatisfiable(format!("state arity {} != {TILE_ARITY}", z.len())));
        };
        let t = self.spec.pass_tiles();
        let one = Term::constant::<CS>(F::ONE);
        let index = tile.get_value().and_then(|v| crate::state::small(&v)).map(|v| v as usize);
        let at = index.unwrap_or(self.tile);
        let (p_value, l_value) = (u64::from(at >= t), (at % t) as u64);
        let bits = (usize::BITS - (t - 1).leading_zeros()).max(1);
        let p = alloc_uint(&mut cs.namespace(|| "pass"), &bits_le(p_value, 1))?;
        let l = alloc_uint(&mut cs.namespace(|| "local"), &bits_le(l_value, bits))?;
        let below = (t as u64 - 1).saturating_sub(l_value);
        let rest = alloc_uint(&mut cs.namespace(|| "below T"), &bits_le(below, bits))?;
        let bit = p;
        let (p, l) = (Term(lc(&bit), bit.get_value()), Term(lc(&l), l.get_value()));
        cs.enforce(
            || "l + rest = T - 1",
            |lc| lc + CS::one(),
            |_| l.plus(&Term(lc(&rest), rest.get_value()), F::ONE).0,
            |lc| lc + (F::from(t as u64 - 1), CS::one()),
        );
        let whole = p.scaled(F::from(t as u64)).plus(&l, F::ONE);
        cs.enforce(|| "tile = p·T + l", |lc| lc + CS::one(), |_| whole.0.clone(), |_| Term::var(tile).0);
        let with = |local: AllocatedNum<F>| {
            let mut z = z.to_vec();
            z[3] = local;
            z
        };
        let mut next = if self.shared {
            let local = alloc_term(&mut cs.namespace(|| "local index"), &l)?;
            self.a.synthesize_pass(&mut cs.namespace(|| "shared pass"), &with(local), Some(&bit))?
        } else {
            let not_p = one.plus(&p, -F::ONE);
            let l_a = product(&mut cs.namespace(|| "first index"), &not_p, &l)?;
            let l_b = product(&mut cs.namespace(|| "second index"), &p, &l)?;
            let na = self.a.synthesize(&mut cs.namespace(|| "first pass"), &with(l_a))?;
            let nb = self.b.synthesize(&mut cs.namespace(|| "second pass"), &with(l_b))?;
            let mut cs = cs.namespace(|| "next state");
            na.iter()
                .zip(&nb)
                .enumerate()
                .map(|(k, (a, b))| select(&mut cs.namespace(|| format!("slot {k}")), &p, &Term::var(b), &Term::var(a)))
                .collect::<Result<Vec<_>, _>>()?
        };
        // the block ends when the second pass ends (its layer counter moves)
        let mut cs = cs.namespace(|| "block tile");
        let moved = Term::var(&next[0]).plus(&Term::var(layer), -F::ONE);
        let ends = product(&mut cs.namespace(|| "ends"), &p, &moved)?;
        let after = Term::var(tile).plus(&one, F::ONE);
        next[3] = product(&mut cs.namespace(|| "tile"), &one.plus(&Term::var(&ends), -F::ONE), &after)?;
        Ok(next)
    }
}
