//! The tile step circuit and its native twin.

use super::geometry::{TileGeometry, TileSpec};
use super::pair::{pair_start, pair_start_native};
use super::state::{TileState, TILE_ARITY};
use super::terms::{alloc_term, equal_if, equals, product, select, Term};
use crate::commit::{
    chain_link, chain_link_native, domain_tag, hash, hash_native, model_update, model_update_native, model_update_with,
    LayerUpdate,
};
use crate::gadgets::bits::{add_constant, alloc_bits, alloc_uint, lc};
use crate::gadgets::linear::{
    either_packing, linear_hints, linear_hints_with, linear_requant, linear_requant_either, Linear, LinearHints,
    LinearShape,
};
use crate::gadgets::pool::{average_of_sum, pool_window, Pool, PoolHint};
use crate::layer::{alloc_layer_weights, weight_terms, zero_weights, LayerWeights};
use crate::quant::{bits_le, check_activations, QuantError, ACT_BITS};
use crate::state::{small, StepState};
use crate::F;
use ff::{Field, PrimeField};
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use std::sync::{Arc, Mutex};

/// Domain tag of a halo commitment (the rows two consecutive tiles share).
pub const TAG_HALO: u64 = 0xf01d_0006;
/// Domain tag of the running per-channel sums of a global average pooling.
pub const TAG_POOL_SUMS: u64 = 0xf01d_0007;
/// Domain tag of a grid tile's window rows that the next band does not share.
pub const TAG_GRID_FRONT: u64 = 0xf01d_000b;
/// Domain tag of a grid tile's hand-off: its window (front and shared rows) and the model
/// chain after its group.
pub const TAG_GRID_HALO: u64 = 0xf01d_000c;

/// The private values of a tiled layer (or two-layer block) that every tile takes.
#[derive(Clone, Debug, PartialEq)]
pub struct TileWitness {
    /// The (first) layer's weights and biases (the same in every tile).
    pub layer_weights: LayerWeights,
    /// A two-layer block's second layer's weights and biases.
    pub second_weights: Option<LayerWeights>,
    /// Blind of the input commitment (used by the first and last tiles).
    pub blind_in: F,
    /// Blind of the output commitment (used by the first tile).
    pub blind_out: F,
    /// The model commitment's secret salt.
    pub salt: F,
    /// What the tiles of a layer compute once and share (a cache: never part of what a
    /// tile proves).
    pub cache: TileCache,
}

impl TileWitness {
    /// The witness of blank tiles (parameter setup): these weights (zeros), zero blinds and
    /// salt, an empty cache.
    pub fn blank(layer_weights: LayerWeights, second_weights: Option<LayerWeights>) -> Self {
        let zero = F::ZERO;
        Self { layer_weights, second_weights, blind_in: zero, blind_out: zero, salt: zero, cache: TileCache::default() }
    }
}

/// What the tiles of a layer (or block) share natively, computed once per layer: a grid's
/// model chain before each of its groups (each tile would otherwise hash the weights of
/// every group before its own) and a pair's middle tensor and input chain. A cache: it
/// never changes what a tile proves, so witnesses compare equal whatever it holds.
#[derive(Clone, Debug, Default)]
pub struct TileCache(Arc<Mutex<Cached>>);

#[derive(Debug, Default)]
pub(super) struct Cached {
    /// Per layer update (its digest) and commitment before it: the chain before each group.
    chains: Vec<(F, F, Vec<F>)>,
    /// A pair's native values for the last block input seen.
    pub(super) pair: Option<Arc<super::pair::PairNative>>,
}

impl TileCache {
    /// The cached values, however a panicking holder left them.
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl PartialEq for TileCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[derive(Clone, Debug)]
struct Inner {
    spec: TileSpec,
    geometry: TileGeometry,
    /// The model-commitment digest of each layer of the tiled block (a grid: its group's
    /// part of the layer's).
    updates: Vec<LayerUpdate>,
    tile: usize,
    /// The tile's band of rows (its index in a row tiling) and group of channels (0 unless
    /// a grid).
    band: usize,
    group: usize,
    /// The (first) layer's weights and biases this tile computes with (a grid: its group's).
    weights: LayerWeights,
    /// A grid tile that starts a band (but the first): the hash of the previous band's
    /// window rows it does not share (opens the previous tile's hand-off); else 0.
    prev_front: F,
    rows: Vec<u8>,
    witness: TileWitness,
    hints: LinearHints,
    pool_hints: Vec<PoolHint>,
    /// A two-layer block: the second convolution's witness.
    second_hints: Option<LinearHints>,
    /// The tile's output rows (before a global pooling), channel-major.
    output: Vec<u8>,
    /// A global average pooling: the per-channel sums of the rows before this tile's.
    sums_before: Vec<u64>,
    /// A pass of a two-layer block tiled as a pair of grids (see [`super::pair`]).
    role: Role,
}

/// What a grid tile is: a layer's, or one pass of a pair.
#[derive(Clone, Debug, Default)]
pub(super) enum Role {
    #[default]
    Plain,
    /// The first pass: its output (the middle tensor) is chained, unblinded, from
    /// `H(TAG_PAIR, tag, block input commitment)`.
    First,
    /// The second pass: its input (the middle tensor) chain starts there, and it adds the
    /// block input's residual, streamed a row per band.
    Second(Box<super::pair::Shortcut>),
    /// A tile that serves both passes, the pass bit selecting what differs.
    Shared(Box<super::pair::Shared>),
}

/// A grid tile's hand-off: `H(tag, front, shared, model chain[, a pair's block input
/// chain before and after the band's row, and the block input's commitment])`.
fn grid_halo_native(parts: &[F]) -> F {
    let items: Vec<F> = std::iter::once(domain_tag(TAG_GRID_HALO, parts.len())).chain(parts.iter().copied()).collect();
    hash_native(&items)
}

/// One tile of a tiled layer as a Nova step (cheap to clone): all tiles of all layers
/// with one [`TileSpec`] share this circuit.
#[derive(Clone, Debug)]
pub struct TileStep(Arc<Inner>);

/// The convolution of one tile's band: the layer's, `band` rows high, no vertical padding
/// (padding rows are witness rows fixed to the zero point).
pub(crate) fn band_linear(spec: &TileSpec, g: &TileGeometry) -> Result<Linear, QuantError> {
    let layer = spec.tile_layer();
    let LinearShape::Conv(mut c) = layer.shape else {
        return Err(QuantError::BadSpec("only a convolution can be tiled".into()));
    };
    c.height = g.band;
    c.pads[0] = 0;
    c.pads[2] = 0;
    Ok(layer.linear(layer.zero_point).with_shape(LinearShape::Conv(c)))
}

/// A two-layer tile's second convolution: over the band of the first one's output rows
/// (no vertical padding: rows outside the image are cells set to the zero point), its
/// shortcut reading the `shortcut_len` witness rows from `shortcut_row`.
pub(crate) fn band_second(spec: &TileSpec, g: &TileGeometry) -> Result<Option<Linear>, QuantError> {
    let Some(second) = spec.second else { return Ok(None) };
    let LinearShape::Conv(mut c) = second.shape else {
        return Err(QuantError::BadSpec("only a convolution can be tiled".into()));
    };
    (c.height, c.pads[0], c.pads[2]) = (g.mid_band, 0, 0);
    let mut op = second.linear(spec.layer.zero_point).with_shape(LinearShape::Conv(c));
    op.projection = second.projection.map(|mut p| {
        p.height = g.shortcut_len;
        p
    });
    Ok(Some(op))
}

/// Rows `start..start + n` of a tile's witness rows (row by row, each channel by channel)
/// as a channel-major tensor (`ch × n × width`).
fn cut<T: Clone>(rows: &[Vec<T>], ch: usize, width: usize, start: usize, n: usize) -> Vec<T> {
    (0..ch).flat_map(|c| (start..start + n).flat_map(move |i| rows[i][c * width..(c + 1) * width].to_vec())).collect()
}

/// Native twin of [`mask_middle`]: tile `tile`'s first-layer outputs with the middle-band
/// rows outside the image set to `fill`.
fn mask_middle_native(g: &TileGeometry, tile: usize, ys: &[u8], width: usize, fill: u8) -> Vec<u8> {
    ys.iter().enumerate().map(|(j, &y)| if g.mid_is_real(tile, (j / width) % g.mid_band) { y } else { fill }).collect()
}

/// The first layer's outputs over a tile's middle band (`width` cells per row), the rows
/// outside the image — possible in the bands whose flags say so — set to `fill`: one
/// constraint per cell of those rows, none elsewhere.
fn mask_middle<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    g: &TileGeometry,
    linear: &[AllocatedNum<F>],
    width: usize,
    flags: &Flags,
    fill: F,
) -> Result<Vec<LinearCombination<F>>, SynthesisError> {
    let one = Term::constant::<CS>(F::ONE);
    let fill = Term::constant::<CS>(fill);
    linear
        .iter()
        .enumerate()
        .map(|(j, y)| {
            let i = (j / width) % g.mid_band;
            let Some(outside) = flags.mid_outside(g, i) else {
                return Ok(LinearCombination::zero() + y.get_variable());
            };
            let keep = one.plus(&outside, -F::ONE);
            let v = product(&mut cs.namespace(|| format!("mask{j}")), &keep, &Term::var(y).plus(&fill, -F::ONE))?;
            Ok(Term::var(&v).plus(&fill, F::ONE).0)
        })
        .collect()
}

/// A pooled tile's pooling over its band of convolution rows (no vertical padding: rows
/// outside the image are cells set to 0) and the band's dimensions.
fn band_pool(spec: &TileSpec, g: &TileGeometry) -> Option<(Pool, (usize, usize, usize))> {
    let mut pool = spec.band_pool()?;
    (pool.pads[0], pool.pads[2]) = (0, 0);
    let LinearShape::Conv(c) = spec.tile_layer().shape else { return None };
    Some((pool, (c.channels_out, g.mid_band, c.out_size().1)))
}

impl TileStep {
    /// Tile `tile` of the layer applied to its whole `input` (channel-major): cuts the
    /// tile's rows out of the input and computes the tile natively.
    pub fn new(spec: TileSpec, tile: usize, input: &[u8], witness: TileWitness) -> Result<Self, QuantError> {
        let g = spec.geometry()?;
        let layout = spec.block().input_layout();
        if input.len() != layout.len() {
            return Err(QuantError::WrongLength {
                what: "input activations",
                expected: layout.len(),
                got: input.len(),
            });
        }
        check_activations(input)?;
        if tile >= spec.tiles() {
            return Err(QuantError::BadSpec(format!("tile {tile} of {}", spec.tiles())));
        }
        let zp = spec.layer.zero_point;
        let band_rows = |band: usize| -> Vec<u8> {
            (0..g.rows())
                .flat_map(|i| match g.input_row(band, i) {
                    Some(y) => layout.row(y).map(|j| input[j]).collect::<Vec<_>>(),
                    None => vec![zp; layout.row_len()],
                })
                .collect()
        };
        let (band, group) = (tile / spec.groups(), tile % spec.groups());
        let mut step = Self::from_rows(spec, tile, band_rows(band), witness)?;
        if spec.channels.is_some() && group == 0 && band > 0 {
            let front = step.front_native(&band_rows(band - 1));
            Arc::make_mut(&mut step.0).prev_front = front;
        }
        if !spec.pools_globally() || tile == 0 {
            return Ok(step);
        }
        // the rows of the tiles before this one, natively
        let mut block = spec.block();
        if let Some(last) = block.stages.last_mut() {
            last.pool = None;
        }
        let w = &step.0.witness;
        let layers: Vec<LayerWeights> = std::iter::once(&w.layer_weights).chain(&w.second_weights).cloned().collect();
        let unpooled = crate::reference::run_native(&block, input, &layers)?;
        let [ch, height, width] = spec.tiled_dims();
        let before = tile * spec.rows * width;
        let sums = (0..ch).map(|c| unpooled[c * height * width..][..before].iter().map(|&v| u64::from(v)).sum());
        Ok(step.with_sums_before(sums.collect()))
    }

    /// A global average pooling: the per-channel sums of the rows before this tile (empty
    /// otherwise).
    pub fn sums_before(&self) -> &[u64] {
        &self.0.sums_before
    }

    /// The tile with other sums of the rows before it (a global average pooling's running
    /// sums): the honest ones are computed by [`Self::new`]; other values are a forger's.
    pub fn with_sums_before(&self, sums: Vec<u64>) -> Self {
        let mut inner = (*self.0).clone();
        inner.sums_before = sums;
        Self(Arc::new(inner))
    }

    /// Tile `tile` from explicit witness rows (row by row, each channel by channel), with
    /// the honest computation on them: what a prover who forges rows would do (tests).
    pub fn from_rows(spec: TileSpec, tile: usize, rows: Vec<u8>, witness: TileWitness) -> Result<Self, QuantError> {
        let g = spec.geometry()?;
        let [ch, _, width] = spec.layer.input_dims();
        let row_len = ch * width;
        if rows.len() != g.rows() * row_len {
            return Err(QuantError::WrongLength { what: "tile rows", expected: g.rows() * row_len, got: rows.len() });
        }
        check_activations(&rows)?;
        let by_row: Vec<Vec<u8>> = rows.chunks(row_len).map(<[u8]>::to_vec).collect();
        let band_values = cut(&by_row, ch, width, g.gap, g.band);
        let op = band_linear(&spec, &g)?;
        if tile >= spec.tiles() {
            return Err(QuantError::BadSpec(format!("tile {tile} of {}", spec.tiles())));
        }
        let (band, group) = (tile / spec.groups(), tile % spec.groups());
        let (weights, updates) = match spec.group_spec() {
            Some(groups) => (groups.group_weights(0, &witness.layer_weights, group), vec![groups.group_update(0)]),
            None => (witness.layer_weights.clone(), spec.block().updates()),
        };
        let w = &weights;
        let hints = linear_hints(&op, &band_values, &band_values, &w.weights, &w.bias)?;
        let ys = hints.ys();
        // first-layer rows outside the image (the bands that reach padding): 0 under pooling,
        // below every real cell; the second layer's zero point (its padding) in a block
        let mid_width = spec.conv()?.out_size().1;
        let layers = (band_pool(&spec, &g), band_second(&spec, &g)?, &witness.second_weights);
        let (pool_hints, second_hints, output) = match layers {
            (Some((pool, dims)), None, None) => {
                let masked = mask_middle_native(&g, band, &ys, mid_width, 0);
                let hints: Vec<PoolHint> = pool
                    .windows(dims)
                    .iter()
                    .map(|win| PoolHint::new(pool.kind, &win.iter().map(|&j| masked[j]).collect::<Vec<_>>()))
                    .collect();
                let out = hints.iter().map(|h| h.y.to_repr().as_ref()[0]).collect();
                (hints, None, out)
            }
            (None, Some(op2), Some(w2)) => {
                let masked = mask_middle_native(&g, band, &ys, mid_width, op2.zero_point);
                let xb = cut(&by_row, ch, width, g.shortcut_row, g.shortcut_len);
                let h2 = linear_hints(&op2, &masked, &xb, &w2.weights, &w2.bias)?;
                let out = h2.ys();
                (Vec::new(), Some(h2), out)
            }
            (None, None, None) => (Vec::new(), None, ys),
            _ => return Err(QuantError::BadSpec("a tile's weights must match its block's layers".into())),
        };
        let sums_before = vec![0; if spec.pools_globally() { spec.output_dims()[0] } else { 0 }];
        let inner = Inner {
            spec,
            geometry: g,
            updates,
            tile,
            band,
            group,
            weights,
            prev_front: F::ZERO,
            rows,
            witness,
            hints,
            pool_hints,
            second_hints,
            output,
            sums_before,
            role: Role::Plain,
        };
        Ok(Self(Arc::new(inner)))
    }

    /// This grid tile as a pass of a pair ([`super::pair`]): its role and its part of the
    /// block's model update; a second pass computes its layer again with the residual.
    pub(super) fn with_role(&self, role: Role, update: LayerUpdate) -> Result<Self, QuantError> {
        let mut inner = (*self.0).clone();
        inner.updates = vec![update];
        let g = &inner.geometry;
        let [ch, _, width] = inner.spec.layer.input_dims();
        let band = |rows: &[u8]| {
            let by_row: Vec<Vec<u8>> = rows.chunks(ch * width).map(<[u8]>::to_vec).collect();
            cut(&by_row, ch, width, g.gap, g.band)
        };
        match &role {
            Role::Second(sc) => {
                let band_values = band(&inner.rows);
                let op = sc.op(band_linear(&inner.spec, g)?);
                inner.weights = sc.group_weights(&inner.witness.layer_weights, inner.group);
                let (w, xb) = (&inner.weights, sc.shortcut_native(inner.group));
                inner.hints = linear_hints(&op, &band_values, &xb, &w.weights, &w.bias)?;
            }
            Role::Shared(sh) => {
                let band_values = band(&inner.rows);
                let (a, b) = sh.pair.shared_ops(&inner.spec)?;
                let packing = either_packing(&a, &b)?;
                if sh.second {
                    inner.weights = sh.sc.group_weights(&inner.witness.layer_weights, inner.group);
                }
                let w = &inner.weights;
                // the first pass adds no residual: its block input terms are gated to 0
                let (op, xb) = match sh.second {
                    true => (b, sh.sc.shortcut_native(inner.group)),
                    false => (a, vec![0; b.shape.num_outputs()]),
                };
                inner.hints = linear_hints_with(&op, packing, (&band_values, &xb), &w.weights, &w.bias)?;
            }
            Role::Plain | Role::First => {}
        }
        if matches!(role, Role::Second(_) | Role::Shared(_)) {
            inner.output = inner.hints.ys();
        }
        inner.role = role;
        Ok(Self(Arc::new(inner)))
    }

    /// A shared tile ([`super::pair::Shared`]) as the given pass sees its cells (the same
    /// witness, that pass's constants): what it computes when run at an index of that pass.
    pub(super) fn in_pass(&self, second: bool) -> Self {
        match &self.0.role {
            Role::Shared(sh) if sh.second != second => {
                let mut inner = (*self.0).clone();
                inner.updates = vec![sh.pair.update(usize::from(second))];
                inner.role = Role::Shared(Box::new(super::pair::Shared { second, ..(**sh).clone() }));
                Self(Arc::new(inner))
            }
            _ => self.clone(),
        }
    }

    /// The tile with other witness rows and the honest computation on them, in the same
    /// place and role (a forger's: tests).
    pub(super) fn with_rows(&self, rows: Vec<u8>) -> Result<Self, QuantError> {
        let inner = &*self.0;
        let mut step = Self::from_rows(inner.spec, inner.tile, rows, inner.witness.clone())?;
        Arc::make_mut(&mut step.0).prev_front = inner.prev_front;
        step.with_role(inner.role.clone(), inner.updates[0])
    }

    /// A shared pair tile's pass-independent part.
    pub(super) fn shared(&self) -> Option<&super::pair::Shared> {
        match &self.0.role {
            Role::Shared(sh) => Some(sh),
            _ => None,
        }
    }

    /// A pair's second-pass tile's shortcut (a clone).
    pub(super) fn shortcut(&self) -> Option<super::pair::Shortcut> {
        match &self.0.role {
            Role::Second(sc) => Some((**sc).clone()),
            Role::Shared(sh) if sh.second => Some(sh.sc.clone()),
            _ => None,
        }
    }

    /// Tile 0 of the given spec with all-zero values, for parameter setup.
    pub fn blank(spec: TileSpec) -> Result<Self, QuantError> {
        let input = vec![0; spec.layer.num_inputs()];
        let (layer_weights, second_weights) = (zero_weights(&spec.layer), spec.second.as_ref().map(zero_weights));
        let witness = TileWitness::blank(layer_weights, second_weights);
        Self::new(spec, 0, &input, witness)
    }

    /// The tile's index in its layer.
    pub fn tile(&self) -> usize {
        self.0.tile
    }

    /// The tile's witness rows (row by row, each channel by channel).
    pub fn rows(&self) -> &[u8] {
        &self.0.rows
    }

    /// The tile spec.
    pub fn spec(&self) -> &TileSpec {
        &self.0.spec
    }

    /// The tile's output rows, channel-major (`channels × rows × width`); before the
    /// pooling when the block ends in a global one.
    pub fn output(&self) -> &[u8] {
        &self.0.output
    }

    /// A global average pooling: the running per-channel sums after this tile, and the
    /// witness of their means (the pooled output, used by the last tile).
    fn pooled(&self) -> Option<(Vec<u64>, Vec<PoolHint>)> {
        let inner = &*self.0;
        if !inner.spec.pools_globally() {
            return None;
        }
        let [ch, height, width] = inner.spec.tiled_dims();
        let cells = inner.spec.rows * width;
        let sums: Vec<u64> = (0..ch)
            .map(|c| {
                inner.sums_before[c] + inner.output[c * cells..][..cells].iter().map(|&v| u64::from(v)).sum::<u64>()
            })
            .collect();
        let hints = sums.iter().map(|&s| PoolHint::average(s, (height * width) as u64)).collect();
        Some((sums, hints))
    }

    fn sums_tag(&self) -> F {
        domain_tag(TAG_POOL_SUMS, self.0.sums_before.len())
    }

    fn row(&self, i: usize) -> &[u8] {
        let n = self.0.rows.len() / self.0.geometry.rows();
        &self.0.rows[i * n..(i + 1) * n]
    }

    fn output_row(&self, r: usize) -> Vec<u8> {
        let [_, _, width] = self.0.spec.output_dims();
        let ch = self.0.output.len() / (self.0.spec.rows * width).max(1);
        let rows = self.0.spec.rows;
        (0..ch).flat_map(|c| (0..width).map(move |x| (c * rows + r) * width + x)).map(|i| self.0.output[i]).collect()
    }

    fn halo_tag(&self) -> F {
        let g = &self.0.geometry;
        domain_tag(TAG_HALO, g.halo * self.row(0).len())
    }

    /// Values per output link (a row, or a row of a group of channels).
    fn output_link_len(&self) -> usize {
        let layout = self.0.spec.block().output_layout();
        (layout.link_channels * layout.dims[2]).max(1)
    }

    /// Values per input link (a row, or a row of a group of channels).
    fn input_link_len(&self) -> usize {
        let layout = self.0.spec.block().input_layout();
        layout.link_channels * layout.dims[2]
    }

    /// The input chain after absorbing witness row `i` (one link per input link of it),
    /// from `start` (the layout's tag and the blind) or the running chain.
    fn absorb_native(&self, chain: F, start: Option<(F, F)>, i: usize) -> F {
        let mut links = self.row(i).chunks(self.input_link_len());
        let (prev, aux) = start.unwrap_or((chain, F::ZERO));
        let first = links.next().map_or(prev, |v| chain_link_native(prev, aux, v));
        links.fold(first, |acc, v| chain_link_native(acc, F::ZERO, v))
    }

    /// Witness rows of a grid tile's window that the next band does not share: the first
    /// `advance` and the tail.
    fn front_rows(&self) -> std::ops::Range<usize> {
        0..self.0.geometry.advance
    }

    fn front_tag(&self) -> F {
        let g = &self.0.geometry;
        domain_tag(TAG_GRID_FRONT, (g.advance + g.tail) * self.row(0).len())
    }

    /// The hash of the front rows (and tail) of a band's witness `rows`.
    fn front_native(&self, rows: &[u8]) -> F {
        let g = &self.0.geometry;
        let n = rows.len() / g.rows();
        let front = self.front_rows();
        let values: Vec<u8> =
            rows[front.start * n..front.end * n].iter().chain(&rows[g.window() * n..]).copied().collect();
        chain_link_native(self.front_tag(), F::ZERO, &values)
    }

    /// The hash of the rows a tile shares with the next band (`advance .. window`), or of
    /// its first `halo` rows (those it shares with the previous band).
    fn shared_native(&self, rows: std::ops::Range<usize>) -> F {
        let values: Vec<u8> = rows.flat_map(|i| self.row(i).to_vec()).collect();
        chain_link_native(self.halo_tag(), F::ZERO, &values)
    }

    /// A grid tile's model chain before group `group`: the layer's update over the groups
    /// before it, from the model commitment before the layer.
    fn prior_model(&self, before_layer: F, group: usize) -> F {
        let inner = &*self.0;
        let Some(spec) = inner.spec.group_spec() else { return before_layer };
        let update = inner.updates[0];
        let mut cache = inner.witness.cache.lock();
        let hit = |c: &(F, F, Vec<F>)| c.0 == update.digest && c.1 == before_layer;
        if !cache.chains.iter().any(hit) {
            let (w, salt) = (&inner.witness.layer_weights, inner.witness.salt);
            let chains = (0..inner.spec.groups())
                .scan(before_layer, |acc, g| {
                    let before = *acc;
                    let gw = match &inner.role {
                        Role::Second(sc) => sc.group_weights(w, g),
                        Role::Shared(sh) if sh.second => sh.sc.group_weights(w, g),
                        _ => spec.group_weights(0, w, g),
                    };
                    *acc = model_update_native(before, &update, salt, &gw.weights, &gw.bias);
                    Some(before)
                })
                .collect();
            // a pair alternates two layers' chains; nothing older is read again
            if cache.chains.len() >= 2 {
                cache.chains.remove(0);
            }
            cache.chains.push((update.digest, before_layer, chains));
        }
        cache.chains.iter().find(|c| hit(c)).map_or(before_layer, |c| c.2[group])
    }

    /// The state after a grid tile (see [`Self::next_state`]).
    fn next_state_grid(&self, z: &TileState) -> TileState {
        let (inner, g) = (&*self.0, &self.0.geometry);
        let t = z.tile as usize;
        let (band, group) = (t / inner.spec.groups(), t % inner.spec.groups());
        let (t_first, t_last) = (t == 0, t + 1 == inner.spec.tiles());
        let before_layer = if t_first { z.base.model } else { z.prev_model };
        let start = if group == 0 { before_layer } else { self.prior_model(before_layer, group) };
        let w = &inner.weights;
        let chain = model_update_native(start, &inner.updates[0], inner.witness.salt, &w.weights, &w.bias);
        let model = if band == 0 { chain } else { z.base.model };
        let input_tag = inner.spec.block().input_layout().tag();
        // a pair's second pass reads the middle tensor, chained after the block input's
        // commitment (unblinded); it carries that commitment and the block input's chain
        let (input_start, extra) = match &inner.role {
            Role::Second(sc) => {
                let extra = sc.handoff_native((band, group), inner.witness.blind_in);
                ((pair_start_native(input_tag, sc.total), F::ZERO), extra)
            }
            // a shared tile carries the block input's chain in its second pass, zeros in its first
            Role::Shared(sh) if sh.second => {
                let extra = sh.sc.handoff_native((band, group), inner.witness.blind_in);
                ((pair_start_native(input_tag, sh.sc.total), F::ZERO), extra)
            }
            Role::Shared(sh) => ((input_tag, inner.witness.blind_in), vec![F::ZERO; sh.sc.handoff_len()]),
            _ => ((input_tag, inner.witness.blind_in), Vec::new()),
        };
        let mut in_chain = z.in_chain;
        if g.own_links {
            let (prev, aux) = if t_first { input_start } else { (z.in_chain, F::ZERO) };
            let link = self.row(g.top).chunks(self.input_link_len()).nth(group).unwrap_or(&[]);
            in_chain = chain_link_native(prev, aux, link);
        } else {
            for i in (0..g.rows()).filter(|&i| group == 0 && g.absorbs(band, i)) {
                let start = (t_first && i == g.first_row()).then_some(input_start);
                in_chain = self.absorb_native(in_chain, start, i);
            }
        }
        let shared = self.shared_native(g.advance..g.window());
        let mut parts = vec![self.front_native(&inner.rows), shared, chain];
        parts.extend(extra);
        let halo = grid_halo_native(&parts);
        let output_tag = inner.spec.block().output_layout().tag();
        let first_pass = match &inner.role {
            Role::First => true,
            Role::Shared(sh) => !sh.second,
            _ => false,
        };
        let output_start = match first_pass {
            true => (pair_start_native(output_tag, z.base.activations), F::ZERO),
            false => (output_tag, inner.witness.blind_out),
        };
        let (prev, aux) = if t_first { output_start } else { (z.out_chain, F::ZERO) };
        let out = chain_link_native(prev, aux, &inner.output);
        // a pair averaged globally: the second pass carries the running sums
        let (out, carry) = match &inner.role {
            Role::Shared(sh) if sh.second && sh.pair.pooled() => {
                sh.pool_native(&inner.output, group, inner.witness.blind_out)
            }
            _ => (out, out),
        };
        end_state(z, (t_last, 1), (model, out), [before_layer, in_chain, halo, carry])
    }

    /// The state after this tile, computed natively from the state before it (which must
    /// be at this tile's index: the circuit reads the index from the state).
    pub fn next_state(&self, z: &TileState) -> TileState {
        if self.0.spec.channels.is_some() {
            return self.next_state_grid(z);
        }
        let (inner, g) = (&*self.0, &self.0.geometry);
        let t = z.tile as usize;
        let (first, last) = (t == 0, t + 1 == g.tiles);
        let halo_out = if g.halo > 0 { self.shared_native(g.advance..g.window()) } else { F::ZERO };
        let input_tag = inner.spec.block().input_layout().tag();
        let mut chain = z.in_chain;
        for i in (0..g.rows()).filter(|&i| g.absorbs(t, i)) {
            let start = (first && i == g.first_row()).then_some((input_tag, inner.witness.blind_in));
            chain = self.absorb_native(chain, start, i);
        }
        let prev_model = if first { z.base.model } else { z.prev_model };
        let salt = inner.witness.salt;
        let weights = std::iter::once(&inner.weights).chain(&inner.witness.second_weights);
        let model = inner
            .updates
            .iter()
            .zip(weights)
            .fold(prev_model, |acc, (u, w)| model_update_native(acc, u, salt, &w.weights, &w.bias));
        let output_tag = inner.spec.block().output_layout().tag();
        // the output chain (and what the next tile takes over: the same chain, or the
        // running sums of a global pooling, whose one output row only the last tile chains)
        let (out, carry) = match self.pooled() {
            Some((sums, hints)) => {
                let means: Vec<u8> = hints.iter().map(|h| h.y.to_repr().as_ref()[0]).collect();
                let out = chain_link_native(output_tag, inner.witness.blind_out, &means);
                let items: Vec<F> = std::iter::once(self.sums_tag()).chain(sums.into_iter().map(F::from)).collect();
                (out, hash_native(&items))
            }
            None => {
                let mut out = z.out_chain;
                let per_link = self.output_link_len();
                for r in 0..inner.spec.rows {
                    for (k, link) in self.output_row(r).chunks(per_link).enumerate() {
                        let start = first && r == 0 && k == 0;
                        let (prev, aux) = if start { (output_tag, inner.witness.blind_out) } else { (out, F::ZERO) };
                        out = chain_link_native(prev, aux, link);
                    }
                }
                (out, out)
            }
        };
        end_state(z, (last, inner.spec.num_stages()), (model, out), [prev_model, chain, halo_out, carry])
    }
}

impl StepCircuit<F> for TileStep {
    fn arity(&self) -> usize {
        TILE_ARITY
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        self.synthesize_pass(cs, z, None)
    }
}

impl TileStep {
    /// The step; a tile shared by a pair's two passes ([`super::pair::Shared`]) takes its
    /// pass bit (boolean, constrained by the pair from the block's tile index).
    pub(super) fn synthesize_pass<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
        pass: Option<&Num<F>>,
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        // run at an index of the other pass, a shared tile computes that pass on its cells
        if let (Role::Shared(sh), Some(bit)) = (&self.0.role, pass) {
            if bit.get_value().is_some_and(|v| (v == F::ONE) != sh.second) {
                return self.in_pass(!sh.second).synthesize_pass(cs, z, pass);
            }
        }
        let [layer, model, acts, tile, prev_model, in_chain, halo, out_chain] = z else {
            return Err(SynthesisError::Unsatisfiable(format!("state arity {} != {TILE_ARITY}", z.len())));
        };
        let (inner, g) = (&*self.0, &self.0.geometry);
        let spec = &inner.spec;
        let grid = spec.channels.is_some();
        let one = Term::constant::<CS>(F::ONE);
        let tile_t = Term::var(tile);
        let f = self.flags(&mut cs.namespace(|| "tile index"), &tile_t)?;
        let (first, last) = (&f.first, &f.last);
        let not_first = one.plus(first, -F::ONE);
        let not_last = one.plus(last, -F::ONE);
        let not_t_last = one.plus(&f.t_last, -F::ONE);
        let shared = match (&inner.role, pass) {
            (Role::Shared(sh), Some(bit)) => Some((&**sh, Term(lc(bit), bit.get_value()), bit)),
            (Role::Shared(_), None) => {
                return Err(SynthesisError::Unsatisfiable("a shared tile needs its pass".into()))
            }
            _ => None,
        };

        // witness rows: 7-bit range checks; rows that are padding (or unused) in this tile
        // hold the zero point, one constraint per value of the rows that can be
        let row_len = inner.rows.len() / g.rows();
        // a shared tile: the first layer's zero point or, selected by the pass bit, the second's
        let zp = match &shared {
            Some((sh, bit, _)) => {
                let (z0, z1) = sh.zero_points();
                Term::constant::<CS>(z0).plus(bit, z1 - z0)
            }
            None => Term::constant::<CS>(F::from(u64::from(spec.layer.zero_point))),
        };
        let mut rows: Vec<Vec<Num<F>>> = Vec::with_capacity(g.rows());
        for i in 0..g.rows() {
            let mut cs = cs.namespace(|| format!("row{i}"));
            let values: Vec<Num<F>> = (0..row_len)
                .map(|j| {
                    let a = inner.rows[i * row_len + j];
                    alloc_uint(&mut cs.namespace(|| format!("a{j}")), &bits_le(a.into(), ACT_BITS))
                })
                .collect::<Result<_, _>>()?;
            let padding = if i >= g.window() { Some(not_last.clone()) } else { f.padding(g, i) };
            if let Some(padding) = padding {
                for (j, v) in values.iter().enumerate() {
                    let v = Term(lc(v), v.get_value());
                    equal_if(&mut cs.namespace(|| format!("pad{j}")), &padding, &v, &zp);
                }
            }
            rows.push(values);
        }

        // halo of a row tiling: the rows shared with the previous tile open its
        // commitment; the rows shared with the next one are committed for it
        let halo_tag = Elt::num_from_fr::<CS>(self.halo_tag());
        let zero = || Elt::num_from_fr::<CS>(F::ZERO);
        let halo_rows = if g.halo > 0 && !grid {
            let opened =
                chain_link(&mut cs.namespace(|| "open halo"), halo_tag.clone(), zero(), &span(&rows, 0..g.halo))?;
            equal_if(&mut cs.namespace(|| "halo opens"), &not_first, &Term::var(&opened), &Term::var(halo));
            let next = chain_link(
                &mut cs.namespace(|| "commit halo"),
                halo_tag.clone(),
                zero(),
                &span(&rows, g.advance..g.window()),
            )?;
            Term::var(&next)
        } else {
            Term::constant::<CS>(F::ZERO)
        };

        // input chain: the rows this tile is the first to read ([`Self::absorb_rows`]) or,
        // with own links, its own link ([`Self::absorb_own`]); input row 0 starts the chain
        // from the input layout's tag and blind
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(inner.witness.blind_in))?;
        let in_tag = spec.block().input_layout().tag();
        // a pair's second pass: the block input's row and commitment, its chain starts the
        // middle tensor's, unblinded
        let pair = match (&inner.role, &shared) {
            (Role::Second(sc), _) => Some(sc.stream(&mut cs.namespace(|| "block input"), &f, &blind_in, None)?),
            (_, Some((sh, bit, _))) => {
                Some(sh.sc.stream(&mut cs.namespace(|| "block input"), &f, &blind_in, Some(bit))?)
            }
            _ => None,
        };
        let tag = Term::constant::<CS>(in_tag);
        let input_tag = match &pair {
            Some(p) => {
                let mid = Term::var(&pair_start(&mut cs.namespace(|| "middle start"), in_tag, &p.total)?);
                match &shared {
                    Some((_, bit, _)) => Term::var(&select(&mut cs.namespace(|| "input start"), bit, &mid, &tag)?),
                    None => mid,
                }
            }
            None => tag,
        };
        // the first link's blind: the first tile's, but a second pass chains the middle
        // tensor, unblinded (a shared tile: the blind times 1 - p)
        let start_aux = match (&pair, &shared) {
            (Some(_), None) => zero(),
            _ => {
                let blind = product(&mut cs.namespace(|| "blind"), &f.t_first, &Term::var(&blind_in))?;
                Elt::Allocated(match &shared {
                    Some((_, bit, _)) => {
                        let not_p = one.plus(bit, -F::ONE);
                        product(&mut cs.namespace(|| "first pass blind"), &not_p, &Term::var(&blind))?
                    }
                    None => blind,
                })
            }
        };
        let chain = match g.own_links {
            true => {
                self.absorb_own(&mut cs.namespace(|| "own link"), &f, &rows[g.top], (&input_tag, in_chain, start_aux))?
            }
            false => self.absorb_rows(cs, &f, &rows, (&input_tag, in_chain, start_aux))?,
        };
        // the last tile: the chain must be the layer's input commitment
        equal_if(&mut cs.namespace(|| "input opens"), &f.t_last, &chain, &Term::var(acts));

        // weights: int8 range checks
        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(inner.witness.salt))?;
        let (weights_unsigned, bias) = alloc_layer_weights(cs, &inner.weights)?;
        let (before, next_model, second_weights, halo_out) = if grid {
            let gate = shared.as_ref().map(|(_, bit, _)| bit);
            let carried = match &pair {
                Some(p) => Some(p.carried(&mut cs.namespace(|| "carried"), gate)?),
                None => None,
            };
            let digest = match &shared {
                Some((sh, _, bit)) => {
                    let (d0, d1) = sh.digests();
                    Elt::Num(add_constant::<CS>((*bit).clone().scale(d1 - d0), d0))
                }
                None => Elt::num_from_fr::<CS>(inner.updates[0].digest),
            };
            let (before, next_model, halo_out) = self.grid_model(
                cs,
                &f,
                (model, prev_model, halo),
                (&salt, &weights_unsigned, &bias),
                &digest,
                (&rows, carried),
            )?;
            (before, next_model, None, halo_out)
        } else {
            // every tile derives the model commitment from the one before the layer, and
            // all but the first must land on the first one's
            let before =
                select(&mut cs.namespace(|| "model before"), first, &Term::var(model), &Term::var(prev_model))?;
            let mut next_model = model_update(
                &mut cs.namespace(|| "model commitment"),
                &inner.updates[0],
                &salt,
                &before,
                &weights_unsigned,
                &bias,
            )?;
            let second_weights = match &inner.witness.second_weights {
                Some(w2) => {
                    let (w2u, b2) = alloc_layer_weights(&mut cs.namespace(|| "second layer"), w2)?;
                    next_model = model_update(
                        &mut cs.namespace(|| "model commitment 2"),
                        &inner.updates[1],
                        &salt,
                        &next_model,
                        &w2u,
                        &b2,
                    )?;
                    Some(weight_terms::<CS>(w2u, &b2))
                }
                None => None,
            };
            equal_if(&mut cs.namespace(|| "same weights"), &not_first, &Term::var(&next_model), &Term::var(model));
            (before, next_model, second_weights, halo_rows)
        };

        // the convolution of the band
        let op = band_linear(spec, g).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
        let (weights_lc, bias_lc) = weight_terms::<CS>(weights_unsigned, &bias);
        let [ch, _, width] = spec.input_dims();
        let row_lcs: Vec<Vec<LinearCombination<F>>> = rows.iter().map(|r| r.iter().map(lc).collect()).collect();
        let band = cut(&row_lcs, ch, width, g.gap, g.band);
        // a pair's second pass adds the block input's residual (its group's channels)
        let (op, xb) = match (&inner.role, &pair) {
            (Role::Second(sc), Some(p)) => (sc.op(op), p.residual.clone()),
            _ => (op, band.clone()),
        };
        let linear = match (&shared, &pair) {
            (Some((sh, _, bit)), Some(p)) => {
                let (a, b) = sh.pair.shared_ops(spec).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
                let ns = &mut cs.namespace(|| "compute");
                linear_requant_either(ns, (&a, &b), bit, (&band, &p.residual), (&weights_lc, &bias_lc), &inner.hints)?
            }
            _ => {
                linear_requant(&mut cs.namespace(|| "compute"), &op, (&band, &xb), &weights_lc, &bias_lc, &inner.hints)?
            }
        };
        // first-layer rows outside the image (the bands that reach padding): 0 under pooling,
        // the second layer's zero point (its padding) in a block
        let unsupported = |e: QuantError| SynthesisError::Unsatisfiable(e.to_string());
        let mid_width = spec.conv().map_err(unsupported)?.out_size().1;
        let flags = &f;
        let second = band_second(spec, g).map_err(unsupported)?;
        let outputs: Vec<Num<F>> = match (band_pool(spec, g), second, second_weights, &inner.second_hints) {
            (None, Some(op2), Some((w2, b2)), Some(hints2)) => {
                let fill = F::from(u64::from(op2.zero_point));
                let cells = mask_middle(&mut cs.namespace(|| "middle"), g, &linear, mid_width, flags, fill)?;
                let xb = cut(&row_lcs, ch, width, g.shortcut_row, g.shortcut_len);
                let ys = linear_requant(&mut cs.namespace(|| "compute second"), &op2, (&cells, &xb), &w2, &b2, hints2)?;
                ys.into_iter().map(Num::from).collect()
            }
            (None, None, None, None) => linear.into_iter().map(Num::from).collect(),
            (Some((pool, dims)), None, None, None) => {
                let cells = mask_middle(&mut cs.namespace(|| "middle"), g, &linear, mid_width, flags, F::ZERO)?;
                let windows = pool.windows(dims);
                if windows.len() != inner.pool_hints.len() {
                    return Err(SynthesisError::Unsatisfiable("pooling witness has the wrong length".into()));
                }
                windows
                    .iter()
                    .zip(&inner.pool_hints)
                    .enumerate()
                    .map(|(o, (win, hint))| {
                        let win: Vec<_> = win.iter().map(|&j| cells[j].clone()).collect();
                        pool_window(&mut cs.namespace(|| format!("pool{o}")), pool.kind, &win, hint)
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(SynthesisError::Unsatisfiable("a tile's weights must match its block's layers".into())),
        };

        let blind_out = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(inner.witness.blind_out))?;
        let (out, carry) = if spec.pools_globally() {
            let flags = (first, &not_first);
            self.pool_globally(&mut cs.namespace(|| "global pooling"), &outputs, flags, out_chain, &blind_out)?
        } else {
            let out_tag = spec.block().output_layout().tag();
            // a shared tile: the middle tensor after the block input (unblinded) in the first
            // pass, the block output from its tag and blind in the second
            let gated;
            let start = match (&inner.role, &shared) {
                (_, Some((_, bit, _))) => {
                    gated = product(&mut cs.namespace(|| "second pass blind"), bit, &Term::var(&blind_out))?;
                    let mid = pair_start(&mut cs.namespace(|| "output middle start"), out_tag, acts)?;
                    let tag = Term::constant::<CS>(out_tag);
                    let start = select(&mut cs.namespace(|| "output start"), bit, &tag, &Term::var(&mid))?;
                    (Term::var(&start), Some(&gated))
                }
                (Role::First, _) => {
                    (Term::var(&pair_start(&mut cs.namespace(|| "middle start"), out_tag, acts)?), None)
                }
                _ => (Term::constant::<CS>(out_tag), Some(&blind_out)),
            };
            let out = self.chain_rows(cs, &outputs, &f.t_first, out_chain, start)?;
            // a pair averaged globally: its second pass hands on the running sums instead
            match (&shared, &pair) {
                (Some((sh, bit, _)), Some(p)) if sh.pair.pooled() => {
                    let ns = &mut cs.namespace(|| "global pooling");
                    let (means, sums) =
                        sh.pool(ns, (&outputs, &inner.output), &p.flags, (&f.t_first, bit), out_chain, &blind_out)?;
                    let out_pooled = select(&mut ns.namespace(|| "output"), bit, &Term::var(&means), &out)?;
                    let carry = select(&mut ns.namespace(|| "carry"), bit, &Term::var(&sums), &out)?;
                    (Term::var(&out_pooled), Term::var(&carry))
                }
                _ => (out.clone(), out),
            }
        };

        // the next state: a layer ends with its last tile
        let mut ns = cs.namespace(|| "next state");
        let cs = &mut ns;
        let stages = F::from(spec.num_stages() as u64);
        let next_layer = alloc_term(&mut cs.namespace(|| "layer"), &Term::var(layer).plus(&f.t_last, stages))?;
        let next_acts = select(&mut cs.namespace(|| "activations"), &f.t_last, &out, &Term::var(acts))?;
        let next_tile = product(&mut cs.namespace(|| "tile"), &not_t_last, &tile_t.plus(&one, F::ONE))?;
        let prev_out = product(&mut cs.namespace(|| "prev model"), &not_t_last, &Term::var(&before))?;
        let chain_out = product(&mut cs.namespace(|| "in chain"), &not_t_last, &chain)?;
        let halo_next = product(&mut cs.namespace(|| "halo"), &not_t_last, &halo_out)?;
        let out_next = product(&mut cs.namespace(|| "out chain"), &not_t_last, &carry)?;
        Ok(vec![next_layer, next_model, next_acts, next_tile, prev_out, chain_out, halo_next, out_next])
    }
}

/// The values of witness rows `range`, row after row.
fn span(rows: &[Vec<Num<F>>], range: std::ops::Range<usize>) -> Vec<Num<F>> {
    range.flat_map(|i| rows[i].clone()).collect()
}

/// The state after a tile that started from `z`: the layer ends (`stages` more layers, the
/// output commitment `out` as the activations, the tile slots cleared) with the layer's
/// last tile; else the index advances and the tile slots take `[prev_model, in_chain,
/// halo, out_chain]`.
fn end_state(z: &TileState, (last, stages): (bool, usize), (model, out): (F, F), slots: [F; 4]) -> TileState {
    let [prev_model, in_chain, halo, out_chain] = slots.map(|v| if last { F::ZERO } else { v });
    TileState {
        base: StepState {
            layer: z.base.layer + if last { stages as u64 } else { 0 },
            model,
            activations: if last { out } else { z.base.activations },
        },
        tile: if last { 0 } else { z.tile + 1 },
        prev_model,
        in_chain,
        halo,
        out_chain,
    }
}

/// A tile's position: its band's first and last flags (padding, masking), its own in the
/// layer (chains start and end), and its group's in the band (a grid; 1 otherwise).
pub(super) struct Flags {
    pub(super) first: Term,
    last: Term,
    /// One per band of [`TileGeometry::pad_inner`], in its order.
    inner: Vec<Term>,
    pub(super) t_first: Term,
    pub(super) t_last: Term,
    g_first: Term,
    g_last: Term,
    /// A grid: the group, one-hot (empty otherwise).
    pub(super) groups: Vec<Term>,
    /// The tile index's value (absent during setup).
    index: Option<usize>,
}

impl Flags {
    /// 1 in the bands where witness row `i` (before the tail) is padding; `None` when it
    /// is in none.
    fn padding(&self, g: &TileGeometry, i: usize) -> Option<Term> {
        self.outside(g.pad_first[i], g.pad_last[i], g.pad_inner.iter().map(|p| p.rows[i]))
    }

    /// 1 in the bands where middle row `i` is outside the image; `None` when it is in none.
    fn mid_outside(&self, g: &TileGeometry, i: usize) -> Option<Term> {
        self.outside(g.mid_pad_first[i], g.mid_pad_last[i], g.pad_inner.iter().map(|p| p.mid[i]))
    }

    fn outside(&self, top: bool, bottom: bool, inner: impl Iterator<Item = bool>) -> Option<Term> {
        let inner: Vec<&Term> = self.inner.iter().zip(inner).filter(|&(_, pad)| pad).map(|(f, _)| f).collect();
        if !top && !bottom && inner.is_empty() {
            return None;
        }
        let mut sum = self.first.scaled(F::from(u64::from(top)));
        for flag in inner {
            sum = sum.plus(flag, F::ONE);
        }
        Some(sum.plus(&self.last, F::from(u64::from(bottom))))
    }
}

/// "band = b" for each inner band that reaches padding (none for most tilings, so their
/// circuits are those of a geometry without them).
fn inner_flags<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    g: &TileGeometry,
    band: &Term,
) -> Result<Vec<Term>, SynthesisError> {
    g.pad_inner.iter().map(|p| equals(&mut cs.namespace(|| format!("band {}", p.band)), band, p.band)).collect()
}

impl TileStep {
    /// The tile's [`Flags`] from its index. A row tiling: the band is the tile. A grid:
    /// `tile = band·groups + group` with the group one-hot and the band range-checked,
    /// which (the index being below `bands·groups`) is the one decomposition.
    fn flags<CS: ConstraintSystem<F>>(&self, cs: &mut CS, tile_t: &Term) -> Result<Flags, SynthesisError> {
        let (inner, g) = (&*self.0, &self.0.geometry);
        if inner.spec.channels.is_none() {
            let first = equals(&mut cs.namespace(|| "first"), tile_t, 0)?;
            let last = equals(&mut cs.namespace(|| "last"), tile_t, g.tiles - 1)?;
            let inner = inner_flags(cs, g, tile_t)?;
            let one = Term::constant::<CS>(F::ONE);
            let (t_first, t_last, g_first, g_last) = (first.clone(), last.clone(), one.clone(), one);
            let groups = Vec::new();
            return Ok(Flags { first, last, inner, t_first, t_last, g_first, g_last, groups, index: None });
        }
        let groups = inner.spec.groups();
        // the witness follows the index in the state (a step run at another index than its
        // own computes the same transition as its native twin, and fails its checks)
        let at = tile_t.1.as_ref().and_then(small).map(|t| t as usize);
        let (band_value, group_value) = at.map_or((inner.band, inner.group), |t| (t / groups, t % groups));
        let one_hot: Vec<F> = (0..groups).map(|k| F::from(u64::from(k == group_value))).collect();
        let flags: Vec<Term> = alloc_bits(&mut cs.namespace(|| "group"), &one_hot)?.iter().map(Term::var).collect();
        let mut sum = Term::constant::<CS>(F::ZERO);
        let mut index = Term::constant::<CS>(F::ZERO);
        for (k, flag) in flags.iter().enumerate() {
            sum = sum.plus(flag, F::ONE);
            index = index.plus(flag, F::from(k as u64));
        }
        cs.enforce(|| "one group", |lc| lc + CS::one(), |_| sum.0.clone(), |lc| lc + CS::one());
        let bits = usize::BITS - (g.tiles - 1).leading_zeros();
        let band = alloc_uint(&mut cs.namespace(|| "band"), &bits_le(band_value as u64, bits.max(1)))?;
        let band = Term(lc(&band), band.get_value());
        let whole = band.scaled(F::from(groups as u64)).plus(&index, F::ONE);
        cs.enforce(|| "tile = band·groups + group", |lc| lc + CS::one(), |_| whole.0.clone(), |_| tile_t.0.clone());
        let first = equals(&mut cs.namespace(|| "first band"), &band, 0)?;
        let last = equals(&mut cs.namespace(|| "last band"), &band, g.tiles - 1)?;
        let (g_first, g_last) = (flags[0].clone(), flags[groups - 1].clone());
        let t_first = Term::var(&product(&mut cs.namespace(|| "first tile"), &first, &g_first)?);
        let t_last = Term::var(&product(&mut cs.namespace(|| "last tile"), &last, &g_last)?);
        let inner = inner_flags(cs, g, &band)?;
        Ok(Flags { first, last, inner, t_first, t_last, g_first, g_last, groups: flags, index: at })
    }

    /// The input chain after the rows this tile is the first to read, in order (a grid:
    /// the first group of each band), one link per input link of a row; input row 0 starts
    /// the chain from `start` and `aux` (the input layout's tag and the first tile's blind).
    fn absorb_rows<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        f: &Flags,
        rows: &[Vec<Num<F>>],
        (start, in_chain, start_aux): (&Term, &AllocatedNum<F>, Elt<F>),
    ) -> Result<Term, SynthesisError> {
        let g = &self.0.geometry;
        let grid = self.0.spec.channels.is_some();
        let one = Term::constant::<CS>(F::ONE);
        let zero = || Elt::num_from_fr::<CS>(F::ZERO);
        let link_len = self.input_link_len();
        let mut chain = Term::var(in_chain);
        for (i, values) in rows.iter().enumerate() {
            let mut cs = cs.namespace(|| format!("absorb{i}"));
            // absorbed when real, and (halo rows) only by the first tile
            let absorb = if i >= g.window() {
                f.last.clone()
            } else if i < g.halo {
                if g.pad_first[i] {
                    continue;
                }
                f.first.clone()
            } else {
                f.padding(g, i).map_or(one.clone(), |padding| one.plus(&padding, -F::ONE))
            };
            let always = i >= g.halo && i < g.window() && !g.may_pad(i);
            let (absorb, always) = match (grid, always) {
                (false, _) => (absorb, always),
                (true, true) => (f.g_first.clone(), false),
                (true, false) => (Term::var(&product(&mut cs.namespace(|| "in group 0"), &absorb, &f.g_first)?), false),
            };
            let (mut prev, mut aux) = if i == g.first_row() {
                let prev = select(&mut cs.namespace(|| "start"), &f.t_first, start, &chain)?;
                (Elt::Allocated(prev), start_aux.clone())
            } else {
                (Elt::Allocated(alloc_term(&mut cs, &chain)?), zero())
            };
            for (k, link) in values.chunks(link_len).enumerate() {
                prev = Elt::Allocated(chain_link(&mut cs.namespace(|| format!("link{k}")), prev, aux, link)?);
                aux = zero();
            }
            let Elt::Allocated(link) = prev else { return Err(SynthesisError::Unsatisfiable("an empty row".into())) };
            let link = Term::var(&link);
            chain =
                if always { link } else { Term::var(&select(&mut cs.namespace(|| "keep"), &absorb, &link, &chain)?) };
        }
        Ok(chain)
    }

    /// Own links ([`TileGeometry::own_links`]): the input chain after this tile's link —
    /// its group's of its band's row, witness row `top`, selected by the one-hot group
    /// flags (one product per value of the row) — from the previous tile's chain, or (the
    /// first tile) from `start` and `aux`.
    fn absorb_own<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        f: &Flags,
        centre: &[Num<F>],
        (start, in_chain, aux): (&Term, &AllocatedNum<F>, Elt<F>),
    ) -> Result<Term, SynthesisError> {
        let link_len = self.input_link_len();
        if centre.len() != link_len * f.groups.len() {
            return Err(SynthesisError::Unsatisfiable("a row of one link per group".into()));
        }
        let link = (0..link_len)
            .map(|j| {
                f.groups.iter().enumerate().try_fold(Num::zero(), |acc, (k, flag)| {
                    let v = &centre[k * link_len + j];
                    let p =
                        product(&mut cs.namespace(|| format!("select {k} {j}")), flag, &Term(lc(v), v.get_value()))?;
                    Ok(acc.add(&Num::from(p)))
                })
            })
            .collect::<Result<Vec<_>, SynthesisError>>()?;
        let prev = select(&mut cs.namespace(|| "start"), &f.t_first, start, &Term::var(in_chain))?;
        Ok(Term::var(&chain_link(&mut cs.namespace(|| "link"), Elt::Allocated(prev), aux, &link)?))
    }

    /// A grid tile's model chain and hand-off. The model slot runs the layer's chunk chain
    /// group by group through the first band and holds its end afterwards; `prev_model`
    /// holds the commitment before the layer. Every band re-derives the chain with its
    /// groups' weights (the chain so far travels in the hand-off) and its last group must
    /// land on the first band's end, so every band computes with the first band's weights.
    /// The hand-off `H(tag, front, shared, chain)` commits the tile's window: the next
    /// group (same band) opens it with its own rows, the next band's first group with its
    /// halo rows as `shared` (and the front as a hint). Returns (the commitment before the
    /// layer, the next model slot, the hand-off).
    fn grid_model<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        f: &Flags,
        (model, prev_model, halo): (&AllocatedNum<F>, &AllocatedNum<F>, &AllocatedNum<F>),
        (salt, weights, bias): (&AllocatedNum<F>, &[Num<F>], &[Num<F>]),
        digest: &Elt<F>,
        (rows, carried): (&[Vec<Num<F>>], Option<super::pair::Carried>),
    ) -> Result<(AllocatedNum<F>, AllocatedNum<F>, Term), SynthesisError> {
        let (inner, g) = (&*self.0, &self.0.geometry);
        let one = Term::constant::<CS>(F::ONE);
        let not_first = one.plus(&f.first, -F::ONE);
        let before =
            select(&mut cs.namespace(|| "model before"), &f.t_first, &Term::var(model), &Term::var(prev_model))?;
        // the chain before this group (a band's first group: the previous band's, whole)
        let group = f.index.map_or(inner.group, |t| t % inner.spec.groups());
        let running = AllocatedNum::alloc(cs.namespace(|| "chain before"), || match group {
            0 => model.get_value().ok_or(SynthesisError::AssignmentMissing),
            _ => before.get_value().map(|b| self.prior_model(b, group)).ok_or(SynthesisError::AssignmentMissing),
        })?;
        let start = select(&mut cs.namespace(|| "start"), &f.g_first, &Term::var(&before), &Term::var(&running))?;
        let update = (inner.updates[0].chunks, digest);
        let chain = model_update_with(&mut cs.namespace(|| "model chain"), update, salt, &start, weights, bias)?;
        let next_model = select(&mut cs.namespace(|| "model"), &f.first, &Term::var(&chain), &Term::var(model))?;
        let check = product(&mut cs.namespace(|| "band end"), &not_first, &f.g_last)?;
        equal_if(&mut cs.namespace(|| "same weights"), &Term::var(&check), &Term::var(&chain), &Term::var(model));

        let zero = || Elt::num_from_fr::<CS>(F::ZERO);
        let front_tag = Elt::num_from_fr::<CS>(self.front_tag());
        let mut front_rows = span(rows, self.front_rows());
        front_rows.extend(span(rows, g.window()..g.rows()));
        let front = chain_link(&mut cs.namespace(|| "front"), front_tag, zero(), &front_rows)?;
        let halo_tag = || Elt::num_from_fr::<CS>(self.halo_tag());
        let shared =
            chain_link(&mut cs.namespace(|| "shared"), halo_tag(), zero(), &span(rows, g.advance..g.window()))?;
        let opened = chain_link(&mut cs.namespace(|| "halo rows"), halo_tag(), zero(), &span(rows, 0..g.halo))?;
        let prev_front = AllocatedNum::alloc(cs.namespace(|| "previous front"), || Ok(inner.prev_front))?;
        // a pair's second pass also carries the block input's chain and its commitment
        // ([`super::pair::Carried`]: rows streamed whole, or own links)
        let (now, same, before_band) = match carried {
            Some(c) => (c.out, c.same, c.band),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let tag = || Elt::num_from_fr::<CS>(domain_tag(TAG_GRID_HALO, 3 + now.len()));
        let handoff = |cs: &mut CS, name: &str, parts: [&AllocatedNum<F>; 3], extra: &[AllocatedNum<F>]| {
            let parts = parts.into_iter().chain(extra).map(|p| Elt::Allocated(p.clone()));
            let items: Vec<Elt<F>> = std::iter::once(tag()).chain(parts).collect();
            hash(&mut cs.namespace(|| name.to_string()), &items).map(|h| Term::var(&h))
        };
        let same = handoff(cs, "same window", [&front, &shared, &running], &same)?;
        equal_if(&mut cs.namespace(|| "same band opens"), &one.plus(&f.g_first, -F::ONE), &same, &Term::var(halo));
        let next_band = handoff(cs, "next band", [&prev_front, &opened, &running], &before_band)?;
        let opens = product(&mut cs.namespace(|| "band start"), &f.g_first, &not_first)?;
        equal_if(&mut cs.namespace(|| "next band opens"), &Term::var(&opens), &next_band, &Term::var(halo));
        let out = handoff(cs, "hand-off", [&front, &shared, &chain], &now)?;
        Ok((before, next_model, out))
    }
}

impl TileStep {
    /// The output chain over the tile's rows in order (output row 0, in the first tile,
    /// starts it from `output_tag` — the output layout's tag, or a pair's middle start —
    /// and `blind_out`, if any).
    fn chain_rows<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        outputs: &[Num<F>],
        first: &Term,
        out_chain: &AllocatedNum<F>,
        (output_tag, blind_out): (Term, Option<&AllocatedNum<F>>),
    ) -> Result<Term, SynthesisError> {
        let spec = &self.0.spec;
        let zero = || Elt::num_from_fr::<CS>(F::ZERO);
        let [_, _, owidth] = spec.output_dims();
        let och = outputs.len() / (spec.rows * owidth).max(1);
        let mut out = Term::var(out_chain);
        for r in 0..spec.rows {
            let mut cs = cs.namespace(|| format!("output row {r}"));
            let values: Vec<Num<F>> = (0..och)
                .flat_map(|c| (0..owidth).map(move |x| (c * spec.rows + r) * owidth + x))
                .map(|o| outputs[o].clone())
                .collect();
            let (mut prev, mut aux) = if r == 0 {
                let prev = select(&mut cs.namespace(|| "start"), first, &output_tag, &out)?;
                let aux = match blind_out {
                    Some(b) => Elt::Allocated(product(&mut cs.namespace(|| "blind"), first, &Term::var(b))?),
                    None => zero(),
                };
                (Elt::Allocated(prev), aux)
            } else {
                (Elt::Allocated(alloc_term(&mut cs, &out)?), zero())
            };
            // a row written in groups of channels: one link per group, in order
            for (k, link) in values.chunks(self.output_link_len()).enumerate() {
                let name = if k == 0 { "link".to_string() } else { format!("link {k}") };
                let next = chain_link(&mut cs.namespace(|| name), prev, aux, link)?;
                (prev, aux) = (Elt::Allocated(next), zero());
            }
            let Elt::Allocated(last) = prev else { return Err(SynthesisError::Unsatisfiable("an empty row".into())) };
            out = Term::var(&last);
        }
        Ok(out)
    }

    /// A global average pooling over the tiles: the per-channel sums of the rows before
    /// this tile (0 in the first tile, else opened from the previous tile's commitment
    /// `carried`) plus this tile's rows are committed for the next tile; their means,
    /// chained as the block's one output row under `blind_out`, are the output (used by
    /// the last tile only). Returns `(output chain, commitment to the sums)`.
    fn pool_globally<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        outputs: &[Num<F>],
        (first, not_first): (&Term, &Term),
        carried: &AllocatedNum<F>,
        blind_out: &AllocatedNum<F>,
    ) -> Result<(Term, Term), SynthesisError> {
        let inner = &*self.0;
        let (_, hints) = self.pooled().ok_or(SynthesisError::Unsatisfiable("no global pooling".into()))?;
        let [ch, height, width] = inner.spec.tiled_dims();
        let cells = inner.spec.rows * width;
        if outputs.len() != ch * cells || inner.sums_before.len() != ch {
            return Err(SynthesisError::Unsatisfiable("pooling witness has the wrong length".into()));
        }
        let tag = Elt::num_from_fr::<CS>(self.sums_tag());
        let zero = Term::constant::<CS>(F::ZERO);
        let mut before = vec![tag.clone()];
        let mut after = vec![tag];
        let mut means = Vec::with_capacity(ch);
        for c in 0..ch {
            let mut cs = cs.namespace(|| format!("channel {c}"));
            let prev = AllocatedNum::alloc(cs.namespace(|| "sum before"), || Ok(F::from(inner.sums_before[c])))?;
            equal_if(&mut cs.namespace(|| "starts at 0"), first, &Term::var(&prev), &zero);
            let rows = &outputs[c * cells..][..cells];
            let sum = rows.iter().fold(Term::var(&prev), |acc, v| acc.plus(&Term(v.lc(F::ONE), v.get_value()), F::ONE));
            let next = alloc_term(&mut cs.namespace(|| "sum after"), &sum)?;
            let mean = average_of_sum(&mut cs.namespace(|| "mean"), sum.0, (height * width) as u64, &hints[c])?;
            before.push(Elt::Allocated(prev));
            after.push(Elt::Allocated(next));
            means.push(mean);
        }
        let opened = hash(&mut cs.namespace(|| "open sums"), &before)?;
        equal_if(&mut cs.namespace(|| "sums open"), not_first, &Term::var(&opened), &Term::var(carried));
        let carry = hash(&mut cs.namespace(|| "commit sums"), &after)?;
        let output_tag = Elt::num_from_fr::<CS>(inner.spec.block().output_layout().tag());
        let out = chain_link(&mut cs.namespace(|| "output"), output_tag, Elt::Allocated(blind_out.clone()), &means)?;
        Ok((Term::var(&out), Term::var(&carry)))
    }
}
