//! The tile step circuit and its native twin.

use super::geometry::{TileGeometry, TileSpec};
use super::state::{TileState, TILE_ARITY};
use super::terms::{alloc_term, equal_if, is_zero, product, select, Term};
use crate::commit::{
    chain_link, chain_link_native, domain_tag, hash, hash_native, model_update, model_update_native, LayerUpdate,
    Layout,
};
use crate::gadgets::bits::{alloc_uint, lc};
use crate::gadgets::linear::{linear_hints, linear_requant, Linear, LinearHints, LinearShape};
use crate::gadgets::pool::{average_of_sum, pool_window, Pool, PoolHint};
use crate::layer::{alloc_layer_weights, weight_terms, zero_weights, LayerWeights};
use crate::quant::{bits_le, check_activations, QuantError, ACT_BITS};
use crate::state::StepState;
use crate::F;
use ff::{Field, PrimeField};
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use std::sync::Arc;

/// Domain tag of a halo commitment (the rows two consecutive tiles share).
pub const TAG_HALO: u64 = 0xf01d_0006;
/// Domain tag of the running per-channel sums of a global average pooling.
pub const TAG_POOL_SUMS: u64 = 0xf01d_0007;

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
}

#[derive(Clone, Debug)]
struct Inner {
    spec: TileSpec,
    geometry: TileGeometry,
    /// The model-commitment digest of each layer of the tiled block.
    updates: Vec<LayerUpdate>,
    tile: usize,
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
}

/// One tile of a tiled layer as a Nova step (cheap to clone): all tiles of all layers
/// with one [`TileSpec`] share this circuit.
#[derive(Clone, Debug)]
pub struct TileStep(Arc<Inner>);

/// The convolution of one tile's band: the layer's, `band` rows high, no vertical padding
/// (padding rows are witness rows fixed to the zero point).
pub(crate) fn band_linear(spec: &TileSpec, g: &TileGeometry) -> Result<Linear, QuantError> {
    let mut c = spec.conv()?;
    c.height = g.band;
    c.pads[0] = 0;
    c.pads[2] = 0;
    let zp = spec.layer.zero_point;
    Ok(spec.layer.linear(zp).with_shape(LinearShape::Conv(c)))
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
/// outside the image — possible in the first or last tile only, selected by their flags —
/// set to `fill`: one constraint per cell of those rows, none elsewhere.
fn mask_middle<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    g: &TileGeometry,
    linear: &[AllocatedNum<F>],
    width: usize,
    (first, last): (&Term, &Term),
    fill: F,
) -> Result<Vec<LinearCombination<F>>, SynthesisError> {
    let one = Term::constant::<CS>(F::ONE);
    let fill = Term::constant::<CS>(fill);
    linear
        .iter()
        .enumerate()
        .map(|(j, y)| {
            let i = (j / width) % g.mid_band;
            let (top, bottom) = (g.mid_pad_first[i], g.mid_pad_last[i]);
            if !top && !bottom {
                return Ok(LinearCombination::zero() + y.get_variable());
            }
            let outside = first.scaled(F::from(u64::from(top))).plus(last, F::from(u64::from(bottom)));
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
    let c = spec.conv().ok()?;
    Some((pool, (c.channels_out, g.mid_band, c.out_size().1)))
}

impl TileStep {
    /// Tile `tile` of the layer applied to its whole `input` (channel-major): cuts the
    /// tile's rows out of the input and computes the tile natively.
    pub fn new(spec: TileSpec, tile: usize, input: &[u8], witness: TileWitness) -> Result<Self, QuantError> {
        let g = spec.geometry()?;
        let layout = Layout::by_rows(spec.layer.input_dims());
        if input.len() != layout.len() {
            return Err(QuantError::WrongLength {
                what: "input activations",
                expected: layout.len(),
                got: input.len(),
            });
        }
        check_activations(input)?;
        if tile >= g.tiles {
            return Err(QuantError::BadSpec(format!("tile {tile} of {}", g.tiles)));
        }
        let zp = spec.layer.zero_point;
        let rows: Vec<u8> = (0..g.rows())
            .flat_map(|i| match g.input_row(tile, i) {
                Some(y) => layout.row(y).map(|j| input[j]).collect::<Vec<_>>(),
                None => vec![zp; layout.row_len()],
            })
            .collect();
        let step = Self::from_rows(spec, tile, rows, witness)?;
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
        let band = cut(&by_row, ch, width, g.gap, g.band);
        let op = band_linear(&spec, &g)?;
        let w = &witness.layer_weights;
        let hints = linear_hints(&op, &band, &band, &w.weights, &w.bias)?;
        let ys = hints.ys();
        // first-layer rows outside the image (first or last tile only): 0 under pooling,
        // below every real cell; the second layer's zero point (its padding) in a block
        let mid_width = spec.conv()?.out_size().1;
        let layers = (band_pool(&spec, &g), band_second(&spec, &g)?, &witness.second_weights);
        let (pool_hints, second_hints, output) = match layers {
            (Some((pool, dims)), None, None) => {
                let masked = mask_middle_native(&g, tile, &ys, mid_width, 0);
                let hints: Vec<PoolHint> = pool
                    .windows(dims)
                    .iter()
                    .map(|win| PoolHint::new(pool.kind, &win.iter().map(|&j| masked[j]).collect::<Vec<_>>()))
                    .collect();
                let out = hints.iter().map(|h| h.y.to_repr().as_ref()[0]).collect();
                (hints, None, out)
            }
            (None, Some(op2), Some(w2)) => {
                let masked = mask_middle_native(&g, tile, &ys, mid_width, op2.zero_point);
                let xb = cut(&by_row, ch, width, g.shortcut_row, g.shortcut_len);
                let h2 = linear_hints(&op2, &masked, &xb, &w2.weights, &w2.bias)?;
                let out = h2.ys();
                (Vec::new(), Some(h2), out)
            }
            (None, None, None) => (Vec::new(), None, ys),
            _ => return Err(QuantError::BadSpec("a tile's weights must match its block's layers".into())),
        };
        let updates = spec.block().updates();
        let sums_before = vec![0; if spec.pools_globally() { spec.output_dims()[0] } else { 0 }];
        let inner = Inner {
            spec,
            geometry: g,
            updates,
            tile,
            rows,
            witness,
            hints,
            pool_hints,
            second_hints,
            output,
            sums_before,
        };
        Ok(Self(Arc::new(inner)))
    }

    /// Tile 0 of the given spec with all-zero values, for parameter setup.
    pub fn blank(spec: TileSpec) -> Result<Self, QuantError> {
        let input = vec![0; spec.layer.num_inputs()];
        let (layer_weights, second_weights) = (zero_weights(&spec.layer), spec.second.as_ref().map(zero_weights));
        let witness =
            TileWitness { layer_weights, second_weights, blind_in: F::ZERO, blind_out: F::ZERO, salt: F::ZERO };
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
        let [ch, _, width] = self.0.spec.output_dims();
        let rows = self.0.spec.rows;
        (0..ch).flat_map(|c| (0..width).map(move |x| (c * rows + r) * width + x)).map(|i| self.0.output[i]).collect()
    }

    fn halo_tag(&self) -> F {
        let g = &self.0.geometry;
        domain_tag(TAG_HALO, g.halo * self.row(0).len())
    }

    /// The state after this tile, computed natively from the state before it (which must
    /// be at this tile's index: the circuit reads the index from the state).
    pub fn next_state(&self, z: &TileState) -> TileState {
        let (inner, g) = (&*self.0, &self.0.geometry);
        let t = z.tile as usize;
        let (first, last) = (t == 0, t + 1 == g.tiles);
        let halo_out = if g.halo > 0 {
            let shared: Vec<u8> = (g.advance..g.window()).flat_map(|i| self.row(i).to_vec()).collect();
            chain_link_native(self.halo_tag(), F::ZERO, &shared)
        } else {
            F::ZERO
        };
        let input_tag = Layout::by_rows(inner.spec.input_dims()).tag();
        let mut chain = z.in_chain;
        for i in (0..g.rows()).filter(|&i| g.absorbs(t, i)) {
            let (prev, aux) =
                if first && i == g.first_row() { (input_tag, inner.witness.blind_in) } else { (chain, F::ZERO) };
            chain = chain_link_native(prev, aux, self.row(i));
        }
        let prev_model = if first { z.base.model } else { z.prev_model };
        let salt = inner.witness.salt;
        let weights = std::iter::once(&inner.witness.layer_weights).chain(&inner.witness.second_weights);
        let model = inner
            .updates
            .iter()
            .zip(weights)
            .fold(prev_model, |acc, (u, w)| model_update_native(acc, u, salt, &w.weights, &w.bias));
        let output_tag = Layout::by_rows(inner.spec.output_dims()).tag();
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
                for r in 0..inner.spec.rows {
                    let (prev, aux) =
                        if first && r == 0 { (output_tag, inner.witness.blind_out) } else { (out, F::ZERO) };
                    out = chain_link_native(prev, aux, &self.output_row(r));
                }
                (out, out)
            }
        };
        let keep = |v: F| if last { F::ZERO } else { v };
        TileState {
            base: StepState {
                layer: z.base.layer + if last { inner.spec.num_stages() as u64 } else { 0 },
                model,
                activations: if last { out } else { z.base.activations },
            },
            tile: if last { 0 } else { z.tile + 1 },
            prev_model: keep(prev_model),
            in_chain: keep(chain),
            halo: keep(halo_out),
            out_chain: keep(carry),
        }
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
        let [layer, model, acts, tile, prev_model, in_chain, halo, out_chain] = z else {
            return Err(SynthesisError::Unsatisfiable(format!("state arity {} != {TILE_ARITY}", z.len())));
        };
        let (inner, g) = (&*self.0, &self.0.geometry);
        let spec = &inner.spec;
        let one = Term::constant::<CS>(F::ONE);

        // the tile index: first and last tile flags
        let tile_t = Term::var(tile);
        let first = Term::var(&is_zero(&mut cs.namespace(|| "first"), &tile_t)?);
        let last_index = Term::constant::<CS>(F::from((g.tiles - 1) as u64));
        let last = Term::var(&is_zero(&mut cs.namespace(|| "last"), &tile_t.plus(&last_index, -F::ONE))?);
        let not_first = one.plus(&first, -F::ONE);
        let not_last = one.plus(&last, -F::ONE);

        // witness rows: 7-bit range checks; rows that are padding (or unused) in this tile
        // hold the zero point, one constraint per value of the rows that can be
        let row_len = inner.rows.len() / g.rows();
        let zp = Term::constant::<CS>(F::from(u64::from(spec.layer.zero_point)));
        let mut rows: Vec<Vec<Num<F>>> = Vec::with_capacity(g.rows());
        for i in 0..g.rows() {
            let mut cs = cs.namespace(|| format!("row{i}"));
            let values: Vec<Num<F>> = (0..row_len)
                .map(|j| {
                    let a = inner.rows[i * row_len + j];
                    alloc_uint(&mut cs.namespace(|| format!("a{j}")), &bits_le(a.into(), ACT_BITS))
                })
                .collect::<Result<_, _>>()?;
            let padding = if i >= g.window() {
                Some(not_last.clone())
            } else {
                let (top, bottom) = (g.pad_first[i], g.pad_last[i]);
                match (top, bottom) {
                    (false, false) => None,
                    _ => Some(first.scaled(F::from(u64::from(top))).plus(&last, F::from(u64::from(bottom)))),
                }
            };
            if let Some(padding) = padding {
                for (j, v) in values.iter().enumerate() {
                    let v = Term(lc(v), v.get_value());
                    equal_if(&mut cs.namespace(|| format!("pad{j}")), &padding, &v, &zp);
                }
            }
            rows.push(values);
        }

        // halo: the rows shared with the previous tile open its commitment; the rows
        // shared with the next one are committed for it
        let halo_tag = Elt::num_from_fr::<CS>(self.halo_tag());
        let zero = || Elt::num_from_fr::<CS>(F::ZERO);
        let halo_out = if g.halo > 0 {
            let shared = |range: std::ops::Range<usize>| range.flat_map(|i| rows[i].clone()).collect::<Vec<_>>();
            let opened = chain_link(&mut cs.namespace(|| "open halo"), halo_tag.clone(), zero(), &shared(0..g.halo))?;
            equal_if(&mut cs.namespace(|| "halo opens"), &not_first, &Term::var(&opened), &Term::var(halo));
            Term::var(&chain_link(
                &mut cs.namespace(|| "commit halo"),
                halo_tag,
                zero(),
                &shared(g.advance..g.window()),
            )?)
        } else {
            Term::constant::<CS>(F::ZERO)
        };

        // input chain: absorb the rows this tile is the first to read, in order; input row
        // 0 starts the chain from the input layout's tag and blind
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(inner.witness.blind_in))?;
        let input_tag = Term::constant::<CS>(Layout::by_rows(spec.input_dims()).tag());
        let mut chain = Term::var(in_chain);
        for (i, values) in rows.iter().enumerate() {
            let mut cs = cs.namespace(|| format!("absorb{i}"));
            // absorbed when real, and (halo rows) only by the first tile
            let absorb = if i >= g.window() {
                last.clone()
            } else if i < g.halo {
                if g.pad_first[i] {
                    continue;
                }
                first.clone()
            } else {
                let top = first.scaled(F::from(u64::from(g.pad_first[i])));
                one.plus(&top.plus(&last, F::from(u64::from(g.pad_last[i]))), -F::ONE)
            };
            let (prev, aux) = if i == g.first_row() {
                let prev = select(&mut cs.namespace(|| "start"), &first, &input_tag, &chain)?;
                let aux = product(&mut cs.namespace(|| "blind"), &first, &Term::var(&blind_in))?;
                (Elt::Allocated(prev), Elt::Allocated(aux))
            } else {
                (Elt::Allocated(alloc_term(&mut cs, &chain)?), zero())
            };
            let link = Term::var(&chain_link(&mut cs.namespace(|| "link"), prev, aux, values)?);
            let always = i >= g.halo && i < g.window() && !g.pad_first[i] && !g.pad_last[i];
            chain =
                if always { link } else { Term::var(&select(&mut cs.namespace(|| "keep"), &absorb, &link, &chain)?) };
        }
        // the last tile: the chain must be the layer's input commitment
        equal_if(&mut cs.namespace(|| "input opens"), &last, &chain, &Term::var(acts));

        // weights: int8 range checks; every tile derives the model commitment from the
        // one before the layer, and all but the first must land on the first one's
        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(inner.witness.salt))?;
        let (weights_unsigned, bias) = alloc_layer_weights(cs, &inner.witness.layer_weights)?;
        let before = select(&mut cs.namespace(|| "model before"), &first, &Term::var(model), &Term::var(prev_model))?;
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

        // the convolution of the band
        let op = band_linear(spec, g).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
        let (weights_lc, bias_lc) = weight_terms::<CS>(weights_unsigned, &bias);
        let [ch, _, width] = spec.input_dims();
        let row_lcs: Vec<Vec<LinearCombination<F>>> = rows.iter().map(|r| r.iter().map(lc).collect()).collect();
        let band = cut(&row_lcs, ch, width, g.gap, g.band);
        let linear =
            linear_requant(&mut cs.namespace(|| "compute"), &op, (&band, &band), &weights_lc, &bias_lc, &inner.hints)?;
        // first-layer rows outside the image (first or last tile only): 0 under pooling,
        // the second layer's zero point (its padding) in a block
        let unsupported = |e: QuantError| SynthesisError::Unsatisfiable(e.to_string());
        let mid_width = spec.conv().map_err(unsupported)?.out_size().1;
        let flags = (&first, &last);
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
            let flags = (&first, &not_first);
            self.pool_globally(&mut cs.namespace(|| "global pooling"), &outputs, flags, out_chain, &blind_out)?
        } else {
            let out = self.chain_rows(cs, &outputs, &first, out_chain, &blind_out)?;
            (out.clone(), out)
        };

        // the next state: a layer ends with its last tile
        let mut ns = cs.namespace(|| "next state");
        let cs = &mut ns;
        let stages = F::from(spec.num_stages() as u64);
        let next_layer = alloc_term(&mut cs.namespace(|| "layer"), &Term::var(layer).plus(&last, stages))?;
        let next_acts = select(&mut cs.namespace(|| "activations"), &last, &out, &Term::var(acts))?;
        let next_tile = product(&mut cs.namespace(|| "tile"), &not_last, &tile_t.plus(&one, F::ONE))?;
        let prev_out = product(&mut cs.namespace(|| "prev model"), &not_last, &Term::var(&before))?;
        let chain_out = product(&mut cs.namespace(|| "in chain"), &not_last, &chain)?;
        let halo_next = product(&mut cs.namespace(|| "halo"), &not_last, &halo_out)?;
        let out_next = product(&mut cs.namespace(|| "out chain"), &not_last, &carry)?;
        Ok(vec![next_layer, next_model, next_acts, next_tile, prev_out, chain_out, halo_next, out_next])
    }
}

impl TileStep {
    /// The output chain over the tile's rows in order (output row 0, in the first tile,
    /// starts it from the output layout's tag and `blind_out`).
    fn chain_rows<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        outputs: &[Num<F>],
        first: &Term,
        out_chain: &AllocatedNum<F>,
        blind_out: &AllocatedNum<F>,
    ) -> Result<Term, SynthesisError> {
        let spec = &self.0.spec;
        let zero = || Elt::num_from_fr::<CS>(F::ZERO);
        let output_tag = Term::constant::<CS>(Layout::by_rows(spec.output_dims()).tag());
        let [och, _, owidth] = spec.output_dims();
        let mut out = Term::var(out_chain);
        for r in 0..spec.rows {
            let mut cs = cs.namespace(|| format!("output row {r}"));
            let values: Vec<Num<F>> = (0..och)
                .flat_map(|c| (0..owidth).map(move |x| (c * spec.rows + r) * owidth + x))
                .map(|o| outputs[o].clone())
                .collect();
            let (prev, aux) = if r == 0 {
                let prev = select(&mut cs.namespace(|| "start"), first, &output_tag, &out)?;
                let aux = product(&mut cs.namespace(|| "blind"), first, &Term::var(blind_out))?;
                (Elt::Allocated(prev), Elt::Allocated(aux))
            } else {
                (Elt::Allocated(alloc_term(&mut cs, &out)?), zero())
            };
            out = Term::var(&chain_link(&mut cs.namespace(|| "link"), prev, aux, &values)?);
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
        let output_tag = Elt::num_from_fr::<CS>(Layout::by_rows(inner.spec.output_dims()).tag());
        let out = chain_link(&mut cs.namespace(|| "output"), output_tag, Elt::Allocated(blind_out.clone()), &means)?;
        Ok((Term::var(&out), Term::var(&carry)))
    }
}
