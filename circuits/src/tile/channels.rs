//! Channel tiles: a convolution, or a two-layer residual block in two passes, proven one
//! group of output channels per Nova step (see [`super`], "Channel tiles").

use super::pair::pair_start;
use super::state::{TileState, TILE_ARITY};
use super::terms::{alloc_term, equal_if, equals, product, select, Term};
use super::TileWitness;
use crate::commit::{
    activation_commitment, activation_commitment_native, chain_link, chain_link_native, model_update,
    model_update_native, Chunks, LayerUpdate, Layout,
};
use crate::gadgets::bits::{alloc_uint, lc};
use crate::gadgets::linear::{linear_hints, linear_requant, LinearShape};
use crate::layer::{alloc_layer_weights, pool_outputs, weight_terms, zero_weights, LayerHints, LayerWeights};
use crate::quant::{bits_le, check_activations, QuantError, ACT_BITS};
use crate::spec::{BlockSpec, LayerSpec, Links};
use crate::state::StepState;
use crate::tile::geometry::pools_globally;
use crate::F;
use ff::Field;
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Domain tag of the start of a block's middle tensor chain (its first pass's output,
/// chained after the block input's commitment).
pub const TAG_PAIR: u64 = 0xf01d_000a;

/// A convolution, or a two-layer block, tiled by groups of output channels: every tile
/// reads the whole input and computes `channels` output channels (all rows) of one of the
/// block's layers, by one circuit shared by all its tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The (first) layer: a convolution without channel groups or shortcut terms; pooled
    /// or not when it is the only one (a pooling is per channel).
    pub layer: LayerSpec,
    /// A two-layer block's second layer: a convolution of the first one's output without
    /// channel groups, with the block's shortcut (a residual or a projection), not pooled
    /// or averaged globally.
    pub second: Option<LayerSpec>,
    /// How the block's input is committed (any way: every tile reads it whole).
    pub input: Links,
    /// Output channels per tile (whole model-commitment chunks of each layer, dividing
    /// each layer's output channels into at least two groups).
    pub channels: usize,
}

/// The output channels (units) a layer can be cut into groups of: a convolution's without
/// channel groups, or a dense layer's (alone, not in a block).
fn outputs(layer: &LayerSpec, alone: bool) -> Result<usize, QuantError> {
    match layer.shape {
        LinearShape::Conv(c) if c.groups == 1 => Ok(c.channels_out),
        LinearShape::Dense(d) if alone => Ok(d.outputs),
        _ => Err(QuantError::BadSpec(
            "only a convolution without channel groups, or a dense layer alone, can be tiled by channels".into(),
        )),
    }
}

impl GroupSpec {
    /// Checks what the type cannot.
    pub fn check(&self) -> Result<(), QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        self.block().check()?;
        if self.layer.skip != 0 || self.layer.projection.is_some() {
            return bad("a channel-tiled block's first layer has no shortcut".into());
        }
        if let Some(second) = self.second {
            if self.layer.pool.is_some() || (second.pool.is_some() && !pools_globally(&second)) {
                return bad("a channel-tiled block is pooled only globally, after its second layer".into());
            }
            if second.skip != 0 && second.projection.is_some() {
                return bad("a channel-tiled block's shortcut is a residual or a projection, not both".into());
            }
        }
        for layer in self.stages() {
            let alone = self.second.is_none();
            let (outputs, g, chunk) = (outputs(&layer, alone)?, self.channels, layer.chunks().channels);
            if g == 0 || !outputs.is_multiple_of(g) || outputs / g < 2 {
                return bad(format!("{g} channels per tile do not cut {outputs} output channels in groups"));
            }
            if !g.is_multiple_of(chunk) {
                return bad(format!("{g} channels per tile are not whole model-commitment chunks of {chunk}"));
            }
        }
        Ok(())
    }

    fn stages(&self) -> impl Iterator<Item = LayerSpec> {
        std::iter::once(self.layer).chain(self.second)
    }

    /// Layers per block (1 or 2).
    pub fn num_stages(&self) -> usize {
        1 + usize::from(self.second.is_some())
    }

    /// Tiles of the first layer (the first pass of a block).
    pub fn first_tiles(&self) -> usize {
        self.layer.shape.num_biases() / self.channels.max(1)
    }

    /// Tiles per block: one per group of output channels of each layer.
    pub fn tiles(&self) -> usize {
        self.stages().map(|l| l.shape.num_biases() / self.channels.max(1)).sum()
    }

    /// The tiled block: its input committed as given, its output one group of channels per
    /// link.
    pub fn block(&self) -> BlockSpec {
        BlockSpec::new(self.stages().collect()).with_links([self.input, Links::Channels(self.channels)])
    }

    /// Layer `stage` restricted to one group of output channels (what a tile computes).
    pub fn group_layer(&self, stage: usize) -> LayerSpec {
        let mut layer = if stage == 0 { self.layer } else { self.second.unwrap_or(self.layer) };
        match &mut layer.shape {
            LinearShape::Conv(c) => c.channels_out = self.channels,
            LinearShape::Dense(d) => d.outputs = self.channels,
        }
        if let Some(p) = &mut layer.projection {
            p.channels_out = self.channels;
        }
        layer
    }

    /// One tile's part of layer `stage`'s model-commitment update: the layer's digest, its
    /// chunks of the group's channels (whole chunks, in the layer's order).
    pub fn group_update(&self, stage: usize) -> LayerUpdate {
        let update = self.block().updates()[stage];
        LayerUpdate { chunks: Chunks { outputs: self.channels, ..update.chunks }, ..update }
    }

    /// Layer `stage`'s weights and biases of output group `group`: the group's own rows,
    /// then its projection rows (the order its model-commitment chunks absorb them).
    pub fn group_weights(&self, stage: usize, w: &LayerWeights, group: usize) -> LayerWeights {
        let chunks = self.block().updates()[stage].chunks;
        let (g, outputs) = (self.channels, chunks.outputs);
        let own = &w.weights[group * g * chunks.own..(group + 1) * g * chunks.own];
        let proj = outputs * chunks.own + group * g * chunks.projection
            ..outputs * chunks.own + (group + 1) * g * chunks.projection;
        LayerWeights {
            weights: own.iter().chain(&w.weights[proj]).copied().collect(),
            bias: w.bias[group * g..(group + 1) * g].to_vec(),
        }
    }

    /// How a block's middle tensor (its first layer's output) is chained by the first
    /// pass: one group of channels per link, after the block input's commitment.
    fn mid_layout(&self) -> Layout {
        Layout::by_channels(self.layer.output_dims(), self.channels)
    }

    /// The first link's `prev` of the middle chain: a hash of its tag, its layout's and the
    /// block input's commitment.
    fn mid_start_native(&self, input_commitment: F) -> F {
        super::pair_start_native(self.mid_layout().tag(), input_commitment)
    }

    /// Layer `stage`'s group output link's values: `channels × H × W` of its output, as
    /// the layer's output layout reads one link (row by row, each row channel by channel).
    fn link_order(&self, stage: usize) -> Vec<usize> {
        let [_, h, w] = self.group_layer(stage).output_dims();
        Layout::whole([self.channels, h, w]).link(0)
    }
}

/// Cells per channel of a convolution's output (before any pooling).
fn conv_cells(layer: &LayerSpec) -> usize {
    match layer.shape {
        LinearShape::Conv(c) => {
            let (h, w) = c.out_size();
            h * w
        }
        LinearShape::Dense(_) => 1,
    }
}

/// A residual's shortcut for group `group` of the output channels: the block input's
/// channels of that group; a projection reads the whole block input.
fn shortcut_native(second: &LayerSpec, input: &[u8], group: Option<usize>, channels: usize) -> Vec<u8> {
    if second.skip == 0 {
        return input.to_vec();
    }
    let cells = conv_cells(second);
    match group {
        Some(g) => input[g * channels * cells..(g + 1) * channels * cells].to_vec(),
        None => vec![0; channels * cells],
    }
}

/// The honest computation of a block's second layer in tile `tile` on `w` (its group's
/// weights, or zeros when the tile computes the first layer), from the block input and
/// the middle tensor.
fn second_hints(
    spec: &GroupSpec,
    tile: usize,
    (input, mid): (&[u8], &[u8]),
    w: &LayerWeights,
) -> Result<LayerHints, QuantError> {
    let (active, group) = spec.locate(tile);
    let layer = spec.group_layer(1);
    let op = layer.linear(spec.layer.zero_point);
    let xb = shortcut_native(&layer, input, (active == 1).then_some(group), spec.channels);
    Ok(LayerHints::with_linear(&layer, linear_hints(&op, mid, &xb, &w.weights, &w.bias)?))
}

#[derive(Clone, Debug)]
struct Inner {
    spec: GroupSpec,
    updates: Vec<LayerUpdate>,
    tile: usize,
    input: Vec<u8>,
    /// A block's middle tensor (the first layer's output), whole; empty for one layer.
    mid: Vec<u8>,
    /// Per layer: the active layer's group weights, the other's zeros.
    weights: Vec<LayerWeights>,
    /// Per layer: the honest computation on those weights.
    hints: Vec<LayerHints>,
    blind_in: F,
    blind_out: F,
    salt: F,
}

/// One tile (a group of output channels of one of its layers) of a channel-tiled layer or
/// block as a Nova step (cheap to clone): all tiles of all blocks with one [`GroupSpec`]
/// share this circuit.
#[derive(Clone, Debug)]
pub struct GroupStep(Arc<Inner>);

impl GroupStep {
    /// Tile `tile` of the block applied to its whole `input` (channel-major), with the
    /// whole layers' weights in `witness` (the tile takes its group's).
    pub fn new(spec: GroupSpec, tile: usize, input: &[u8], witness: &TileWitness) -> Result<Self, QuantError> {
        spec.check()?;
        if tile >= spec.tiles() {
            return Err(QuantError::BadSpec(format!("tile {tile} of {}", spec.tiles())));
        }
        let layers: Vec<&LayerWeights> =
            std::iter::once(&witness.layer_weights).chain(&witness.second_weights).collect();
        if layers.len() != spec.num_stages() {
            return Err(QuantError::BadSpec("a tile's weights must match its block's layers".into()));
        }
        for (stage, (w, l)) in layers.iter().zip(spec.stages()).enumerate() {
            if w.weights.len() != l.num_weights() || w.bias.len() != l.shape.num_biases() {
                let what = if stage == 0 { "layer weights" } else { "second layer weights" };
                return Err(QuantError::WrongLength { what, expected: l.num_weights(), got: w.weights.len() });
            }
        }
        let (stage, group) = spec.locate(tile);
        let weights = spec.group_weights(stage, layers[stage], group);
        Self::from_group(spec, tile, input.to_vec(), weights, witness)
    }

    /// Tile `tile` with explicit group weights (of the layer the tile computes) and input,
    /// with the honest computation on them: what a prover who forges them would do (tests).
    pub fn from_group(
        spec: GroupSpec,
        tile: usize,
        input: Vec<u8>,
        weights: LayerWeights,
        witness: &TileWitness,
    ) -> Result<Self, QuantError> {
        spec.check()?;
        if input.len() != spec.layer.num_inputs() {
            let expected = spec.layer.num_inputs();
            return Err(QuantError::WrongLength { what: "input activations", expected, got: input.len() });
        }
        check_activations(&input)?;
        let active = spec.locate(tile).0;
        // a block's middle tensor: its first layer on the whole input
        let mid = match spec.second {
            Some(_) => {
                let w = &witness.layer_weights;
                let op = spec.layer.linear(spec.layer.zero_point);
                linear_hints(&op, &input, &input, &w.weights, &w.bias)?.ys()
            }
            None => Vec::new(),
        };
        let mut all_weights = Vec::new();
        let mut hints = Vec::new();
        for stage in 0..spec.num_stages() {
            let layer = spec.group_layer(stage);
            let w = if stage == active { weights.clone() } else { zero_weights(&layer) };
            hints.push(match stage {
                0 => {
                    let op = layer.linear(spec.layer.zero_point);
                    LayerHints::with_linear(&layer, linear_hints(&op, &input, &input, &w.weights, &w.bias)?)
                }
                _ => second_hints(&spec, tile, (&input, &mid), &w)?,
            });
            all_weights.push(w);
        }
        let (blind_in, blind_out, salt) = (witness.blind_in, witness.blind_out, witness.salt);
        let updates = (0..spec.num_stages()).map(|s| spec.group_update(s)).collect();
        let inner = Inner { spec, updates, tile, input, mid, weights: all_weights, hints, blind_in, blind_out, salt };
        Ok(Self(Arc::new(inner)))
    }

    /// The tile with another middle tensor (a block's first layer's output, whole) and the
    /// honest computation of its second layer on it: what a prover who forges the middle
    /// tensor would do (tests). The honest one is computed by [`Self::new`].
    pub fn with_middle(&self, mid: Vec<u8>) -> Result<Self, QuantError> {
        let mut inner = (*self.0).clone();
        check_activations(&mid)?;
        if mid.len() != inner.mid.len() {
            return Err(QuantError::WrongLength {
                what: "middle activations",
                expected: inner.mid.len(),
                got: mid.len(),
            });
        }
        if inner.spec.second.is_some() {
            inner.hints[1] = second_hints(&inner.spec, inner.tile, (&inner.input, &mid), &inner.weights[1])?;
        }
        inner.mid = mid;
        Ok(Self(Arc::new(inner)))
    }

    /// A block's middle tensor as the tile holds it (empty for one layer).
    pub fn middle(&self) -> &[u8] {
        &self.0.mid
    }

    /// Tile 0 of the given spec with all-zero values, for parameter setup.
    pub fn blank(spec: GroupSpec) -> Result<Self, QuantError> {
        let witness = TileWitness::blank(zero_weights(&spec.layer), spec.second.as_ref().map(zero_weights));
        Self::new(spec, 0, &vec![0; spec.layer.num_inputs()], &witness)
    }

    /// The tile's index in its block.
    pub fn tile(&self) -> usize {
        self.0.tile
    }

    /// The spec.
    pub fn spec(&self) -> &GroupSpec {
        &self.0.spec
    }

    /// The group's output channels (`channels × H × W`, channel-major) of the layer the
    /// tile computes.
    pub fn output(&self) -> Vec<u8> {
        self.0.hints[self.0.spec.locate(self.0.tile).0].output()
    }

    /// The state after this tile, computed natively from the state before it (which must
    /// be at this tile's index: the circuit reads the index from the state).
    pub fn next_state(&self, z: &TileState) -> TileState {
        let inner = &*self.0;
        let spec = &inner.spec;
        let t = z.tile as usize;
        let (stage, group) = spec.locate(t);
        let last = t + 1 == spec.tiles() || (spec.second.is_some() && t + 1 == spec.first_tiles());
        let w = &inner.weights[stage];
        let model = model_update_native(z.base.model, &inner.updates[stage], inner.salt, &w.weights, &w.bias);
        let start = match stage {
            0 if spec.second.is_some() => spec.mid_start_native(self.input_commitment()),
            _ => spec.block().output_layout().tag(),
        };
        let blind = if stage + 1 == spec.num_stages() { inner.blind_out } else { F::ZERO };
        let (prev, aux) = if group == 0 { (start, blind) } else { (z.out_chain, F::ZERO) };
        let output = inner.hints[stage].output();
        let values: Vec<u8> = spec.link_order(stage).into_iter().map(|i| output[i]).collect();
        let link = chain_link_native(prev, aux, &values);
        let ends = t + 1 == spec.tiles();
        let base = StepState {
            layer: z.base.layer + if ends { spec.num_stages() as u64 } else { 0 },
            model,
            activations: if last { link } else { z.base.activations },
        };
        let mut next = TileState::boundary(base);
        if !ends {
            next.tile = z.tile + 1;
            next.out_chain = if last { F::ZERO } else { link };
        }
        next
    }

    /// The block input's commitment every tile opens (native).
    pub fn input_commitment(&self) -> F {
        let inner = &*self.0;
        activation_commitment_native(&inner.input, inner.spec.block().input_layout(), inner.blind_in)
    }
}

impl GroupSpec {
    /// The layer (0 or 1) tile `tile` computes and its group of output channels.
    pub fn locate(&self, tile: usize) -> (usize, usize) {
        let first = self.first_tiles();
        if self.second.is_some() && tile >= first {
            (1, tile - first)
        } else {
            (0, tile)
        }
    }
}

/// Allocates activations with their 7-bit range checks.
fn alloc_acts<CS: ConstraintSystem<F>>(cs: &mut CS, values: &[u8]) -> Result<Vec<Num<F>>, SynthesisError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &a)| alloc_uint(&mut cs.namespace(|| format!("a{i}")), &bits_le(a.into(), ACT_BITS)))
        .collect()
}

impl GroupStep {
    /// Layer `stage`'s group in the circuit: its weights range-checked and applied to the
    /// model chain from `model`, its outputs computed from `input` (and the shortcut's
    /// `xb`), pooled as the layer says. Returns (outputs, the model chain after it).
    fn group_layer<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        stage: usize,
        (input, xb): (&[LinearCombination<F>], &[LinearCombination<F>]),
        (salt, model): (&AllocatedNum<F>, &AllocatedNum<F>),
    ) -> Result<(Vec<Num<F>>, AllocatedNum<F>), SynthesisError> {
        let inner = &*self.0;
        let (weights_unsigned, bias) = alloc_layer_weights(cs, &inner.weights[stage])?;
        let next_model = model_update(
            &mut cs.namespace(|| "model commitment"),
            &inner.updates[stage],
            salt,
            model,
            &weights_unsigned,
            &bias,
        )?;
        let layer = inner.spec.group_layer(stage);
        let op = layer.linear(inner.spec.layer.zero_point);
        let (weights_lc, bias_lc) = weight_terms::<CS>(weights_unsigned, &bias);
        let hints = &inner.hints[stage];
        let linear =
            linear_requant(&mut cs.namespace(|| "compute"), &op, (input, xb), &weights_lc, &bias_lc, &hints.linear)?;
        let outputs = pool_outputs(&mut cs.namespace(|| "pool"), &layer, linear, &hints.pool)?;
        Ok((outputs, next_model))
    }

    /// Layer `stage`'s output link: `H(prev, aux, its group's values)`, where the first
    /// group starts from `start` and `blind`, every other from the running chain.
    fn output_link<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        stage: usize,
        outputs: &[Num<F>],
        (first, start, blind): (&Term, &Term, Option<&AllocatedNum<F>>),
        out_chain: &AllocatedNum<F>,
    ) -> Result<Term, SynthesisError> {
        let prev = select(&mut cs.namespace(|| "start"), first, start, &Term::var(out_chain))?;
        let aux = match blind {
            Some(b) => Elt::Allocated(product(&mut cs.namespace(|| "blind"), first, &Term::var(b))?),
            None => Elt::num_from_fr::<CS>(F::ZERO),
        };
        let values: Vec<Num<F>> = self.0.spec.link_order(stage).into_iter().map(|i| outputs[i].clone()).collect();
        Ok(Term::var(&chain_link(&mut cs.namespace(|| "link"), Elt::Allocated(prev), aux, &values)?))
    }
}

impl StepCircuit<F> for GroupStep {
    fn arity(&self) -> usize {
        TILE_ARITY
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [layer, model, acts, tile, _, _, _, out_chain] = z else {
            return Err(SynthesisError::Unsatisfiable(format!("state arity {} != {TILE_ARITY}", z.len())));
        };
        let inner = &*self.0;
        let spec = &inner.spec;
        let block = spec.block();
        let (tiles, first_tiles) = (spec.tiles(), spec.first_tiles());
        let one = Term::constant::<CS>(F::ONE);

        // the tile index: a flag for the first and last tiles of the first layer, and for
        // every tile of the second (the pass flag is their sum)
        let tile_t = Term::var(tile);
        let mut flag = |k: usize| equals(&mut cs.namespace(|| format!("tile is {k}")), &tile_t, k);
        let first_a = flag(0)?;
        let last_a = flag(first_tiles - 1)?;
        let pass_b: Vec<Term> = (first_tiles..tiles).map(&mut flag).collect::<Result<_, _>>()?;
        let second = pass_b.iter().fold(Term::constant::<CS>(F::ZERO), |acc, f| acc.plus(f, F::ONE));

        // the block input, whole: range checks; it opens the input commitment, which the
        // activations slot holds during the first layer's tiles
        let input = alloc_acts(&mut cs.namespace(|| "input"), &inner.input)?;
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(inner.blind_in))?;
        let opened =
            activation_commitment(&mut cs.namespace(|| "open input"), &input, block.input_layout(), &blind_in)?;
        let in_first = one.plus(&second, -F::ONE);
        equal_if(
            &mut cs.namespace(|| "input opens z_in.activations"),
            &in_first,
            &Term::var(&opened),
            &Term::var(acts),
        );

        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(inner.salt))?;
        let blind_out = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(inner.blind_out))?;
        let input_lc: Vec<_> = input.iter().map(lc).collect();
        let output_tag = Term::constant::<CS>(block.output_layout().tag());

        // the first layer's group
        let (outputs_a, model_a) =
            self.group_layer(&mut cs.namespace(|| "first layer"), 0, (&input_lc, &input_lc), (&salt, model))?;
        let Some(second_spec) = spec.second else {
            let link = self.output_link(
                &mut cs.namespace(|| "output"),
                0,
                &outputs_a,
                (&first_a, &output_tag, Some(&blind_out)),
                out_chain,
            )?;
            return self.next_state_vars(cs, (layer, acts, tile), (&last_a, &last_a), (&link, model_a));
        };

        // a block: the first pass chains its groups after the input's commitment
        let mid_start = pair_start(&mut cs.namespace(|| "middle start"), spec.mid_layout().tag(), &opened)?;
        let mid_start = Term::var(&mid_start);
        let link_a = self.output_link(
            &mut cs.namespace(|| "first output"),
            0,
            &outputs_a,
            (&first_a, &mid_start, None),
            out_chain,
        )?;

        // the second pass reads the middle tensor whole: range checks, and with the
        // block input it opens the first pass's chain, which the activations slot holds
        let mid = alloc_acts(&mut cs.namespace(|| "middle"), &inner.mid)?;
        let layout = spec.mid_layout();
        let mut chain = mid_start.clone();
        for j in 0..layout.links() {
            let values: Vec<Num<F>> = layout.link(j).into_iter().map(|i| mid[i].clone()).collect();
            let prev = Elt::Allocated(alloc_term(&mut cs.namespace(|| format!("middle prev {j}")), &chain)?);
            let link = chain_link(
                &mut cs.namespace(|| format!("middle link {j}")),
                prev,
                Elt::num_from_fr::<CS>(F::ZERO),
                &values,
            )?;
            chain = Term::var(&link);
        }
        equal_if(&mut cs.namespace(|| "middle opens z_in.activations"), &second, &chain, &Term::var(acts));

        // the shortcut: a residual reads the block input's channels of the tile's group
        // (one product per input value: the group flags select them), a projection all
        let xb: Vec<LinearCombination<F>> = if second_spec.skip == 0 {
            input_lc.clone()
        } else {
            let n = spec.channels * conv_cells(&second_spec);
            (0..n)
                .map(|i| {
                    pass_b.iter().enumerate().try_fold(LinearCombination::zero(), |acc, (g, f)| {
                        let x = Term(input_lc[g * n + i].clone(), input[g * n + i].get_value());
                        let p = product(&mut cs.namespace(|| format!("shortcut {g} {i}")), f, &x)?;
                        Ok(acc + p.get_variable())
                    })
                })
                .collect::<Result<_, SynthesisError>>()?
        };
        let mid_lc: Vec<_> = mid.iter().map(lc).collect();
        let (outputs_b, model_b) =
            self.group_layer(&mut cs.namespace(|| "second layer"), 1, (&mid_lc, &xb), (&salt, model))?;
        let link_b = self.output_link(
            &mut cs.namespace(|| "second output"),
            1,
            &outputs_b,
            (&pass_b[0], &output_tag, Some(&blind_out)),
            out_chain,
        )?;

        let link = Term::var(&select(&mut cs.namespace(|| "link"), &second, &link_b, &link_a)?);
        let model = select(&mut cs.namespace(|| "model"), &second, &Term::var(&model_b), &Term::var(&model_a))?;
        let last = last_a.plus(pass_b.last().unwrap_or(&last_a), F::ONE);
        let ends = pass_b.last().cloned().unwrap_or(last_a);
        self.next_state_vars(cs, (layer, acts, tile), (&last, &ends), (&link, model))
    }
}

impl GroupStep {
    /// The state after the tile: a layer (or a block's first pass) hands its output chain
    /// on with its `last` tile, the block ends (the layer counter advances) with its
    /// `ends` tile; the row tiles' slots stay 0.
    fn next_state_vars<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        (layer, acts, tile): (&AllocatedNum<F>, &AllocatedNum<F>, &AllocatedNum<F>),
        (last, ends): (&Term, &Term),
        (link, model): (&Term, AllocatedNum<F>),
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let mut ns = cs.namespace(|| "next state");
        let cs = &mut ns;
        let one = Term::constant::<CS>(F::ONE);
        let stages = F::from(self.0.spec.num_stages() as u64);
        let next_layer = alloc_term(&mut cs.namespace(|| "layer"), &Term::var(layer).plus(ends, stages))?;
        let next_acts = select(&mut cs.namespace(|| "activations"), last, link, &Term::var(acts))?;
        let next_tile =
            product(&mut cs.namespace(|| "tile"), &one.plus(ends, -F::ONE), &Term::var(tile).plus(&one, F::ONE))?;
        let zero = Term::constant::<CS>(F::ZERO);
        let prev_model = alloc_term(&mut cs.namespace(|| "prev model"), &zero)?;
        let in_chain = alloc_term(&mut cs.namespace(|| "in chain"), &zero)?;
        let halo = alloc_term(&mut cs.namespace(|| "halo"), &zero)?;
        let out_next = product(&mut cs.namespace(|| "out chain"), &one.plus(last, -F::ONE), link)?;
        Ok(vec![next_layer, model, next_acts, next_tile, prev_model, in_chain, halo, out_next])
    }
}
