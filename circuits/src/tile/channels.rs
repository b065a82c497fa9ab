//! Channel tiles: a convolution proven one group of output channels per Nova step (see
//! [`super`], "Channel tiles").

use super::state::{TileState, TILE_ARITY};
use super::terms::{alloc_term, is_zero, product, select, Term};
use super::TileWitness;
use crate::commit::{
    activation_commitment, activation_commitment_native, chain_link, chain_link_native, model_update,
    model_update_native, Chunks, LayerUpdate, Layout,
};
use crate::gadgets::bits::{alloc_uint, lc};
use crate::gadgets::linear::{linear_hints, linear_requant, LinearShape};
use crate::layer::{alloc_layer_weights, pool_outputs, weight_terms, LayerHints, LayerWeights};
use crate::quant::{bits_le, check_activations, QuantError, ACT_BITS};
use crate::spec::{BlockSpec, LayerSpec, Links};
use crate::state::StepState;
use crate::F;
use ff::Field;
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A convolution tiled by groups of output channels: every tile reads the whole input and
/// computes `channels` output channels (all rows), by one circuit shared by all its tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The layer: a convolution without channel groups or shortcut terms; pooled or not
    /// (a pooling is per channel).
    pub layer: LayerSpec,
    /// How its input is committed (any way: every tile reads it whole).
    pub input: Links,
    /// Output channels per tile (a multiple of the layer's model-commitment chunk, dividing
    /// its output channels into at least two groups).
    pub channels: usize,
}

impl GroupSpec {
    /// Checks what the type cannot.
    pub fn check(&self) -> Result<(), QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        self.block().check()?;
        let LinearShape::Conv(c) = self.layer.shape else { return bad("only a convolution can be tiled".into()) };
        if c.groups != 1 || self.layer.skip != 0 || self.layer.projection.is_some() {
            return bad("a channel-tiled convolution has no channel groups and no shortcut".into());
        }
        let (g, chunk) = (self.channels, self.layer.chunks().channels);
        if g == 0 || !c.channels_out.is_multiple_of(g) || c.channels_out / g < 2 {
            return bad(format!("{g} channels per tile do not cut {} output channels in groups", c.channels_out));
        }
        if !g.is_multiple_of(chunk) {
            return bad(format!("{g} channels per tile are not whole model-commitment chunks of {chunk}"));
        }
        Ok(())
    }

    /// Tiles per layer.
    pub fn tiles(&self) -> usize {
        self.layer.shape.num_biases() / self.channels.max(1)
    }

    /// The tiled layer as a block: its input committed as given, its output one group of
    /// channels per link.
    pub fn block(&self) -> BlockSpec {
        BlockSpec::layer(self.layer).with_links([self.input, Links::Channels(self.channels)])
    }

    /// The layer restricted to one group of output channels (what a tile computes).
    pub fn group_layer(&self) -> LayerSpec {
        let mut layer = self.layer;
        if let LinearShape::Conv(c) = &mut layer.shape {
            c.channels_out = self.channels;
        }
        layer
    }

    /// One tile's part of the layer's model-commitment update: the layer's digest, its
    /// chunks of the group's channels (whole chunks, in the layer's order).
    pub fn group_update(&self) -> LayerUpdate {
        let update = self.layer.update_at(0, 1);
        let chunks = Chunks { outputs: self.channels, ..update.chunks };
        LayerUpdate { chunks, ..update }
    }

    /// The group's output link's layout and values: `channels × H × W` of the output, read
    /// as the layer's output layout reads one link (row by row, each row channel by channel).
    fn link_order(&self) -> Vec<usize> {
        let [_, h, w] = self.layer.output_dims();
        Layout::whole([self.channels, h, w]).link(0)
    }
}

#[derive(Clone, Debug)]
struct Inner {
    spec: GroupSpec,
    update: LayerUpdate,
    tile: usize,
    input: Vec<u8>,
    weights: LayerWeights,
    hints: LayerHints,
    blind_in: F,
    blind_out: F,
    salt: F,
}

/// One tile (a group of output channels) of a channel-tiled layer as a Nova step (cheap
/// to clone): all tiles of all layers with one [`GroupSpec`] share this circuit.
#[derive(Clone, Debug)]
pub struct GroupStep(Arc<Inner>);

impl GroupStep {
    /// Tile `tile` of the layer applied to its whole `input` (channel-major), with the
    /// whole layer's weights in `witness` (the tile takes its group's).
    pub fn new(spec: GroupSpec, tile: usize, input: &[u8], witness: &TileWitness) -> Result<Self, QuantError> {
        spec.check()?;
        if tile >= spec.tiles() {
            return Err(QuantError::BadSpec(format!("tile {tile} of {}", spec.tiles())));
        }
        let w = &witness.layer_weights;
        let own = spec.layer.shape.num_weights() / spec.tiles();
        let (g, n) = (spec.channels, spec.tiles());
        if w.weights.len() != own * n || w.bias.len() != g * n {
            return Err(QuantError::WrongLength { what: "layer weights", expected: own * n, got: w.weights.len() });
        }
        let weights = LayerWeights {
            weights: w.weights[tile * own..(tile + 1) * own].to_vec(),
            bias: w.bias[tile * g..(tile + 1) * g].to_vec(),
        };
        Self::from_group(spec, tile, input.to_vec(), weights, witness)
    }

    /// Tile `tile` with explicit group weights and input, with the honest computation on
    /// them: what a prover who forges them would do (tests).
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
        let layer = spec.group_layer();
        let op = layer.linear(layer.zero_point);
        let linear = linear_hints(&op, &input, &input, &weights.weights, &weights.bias)?;
        let hints = LayerHints::with_linear(&layer, linear);
        let (blind_in, blind_out, salt) = (witness.blind_in, witness.blind_out, witness.salt);
        let update = spec.group_update();
        Ok(Self(Arc::new(Inner { spec, update, tile, input, weights, hints, blind_in, blind_out, salt })))
    }

    /// Tile 0 of the given spec with all-zero values, for parameter setup.
    pub fn blank(spec: GroupSpec) -> Result<Self, QuantError> {
        let layer_weights =
            LayerWeights { weights: vec![0; spec.layer.num_weights()], bias: vec![0; spec.layer.shape.num_biases()] };
        let witness =
            TileWitness { layer_weights, second_weights: None, blind_in: F::ZERO, blind_out: F::ZERO, salt: F::ZERO };
        Self::new(spec, 0, &vec![0; spec.layer.num_inputs()], &witness)
    }

    /// The tile's index in its layer.
    pub fn tile(&self) -> usize {
        self.0.tile
    }

    /// The spec.
    pub fn spec(&self) -> &GroupSpec {
        &self.0.spec
    }

    /// The group's output channels (`channels × H × W`, channel-major).
    pub fn output(&self) -> Vec<u8> {
        self.0.hints.output()
    }

    /// The state after this tile, computed natively from the state before it (which must
    /// be at this tile's index: the circuit reads the index from the state).
    pub fn next_state(&self, z: &TileState) -> TileState {
        let inner = &*self.0;
        let spec = &inner.spec;
        let (first, last) = (z.tile == 0, z.tile as usize + 1 == spec.tiles());
        let w = &inner.weights;
        let model = model_update_native(z.base.model, &inner.update, inner.salt, &w.weights, &w.bias);
        let (prev, aux) =
            if first { (spec.block().output_layout().tag(), inner.blind_out) } else { (z.out_chain, F::ZERO) };
        let output = self.output();
        let values: Vec<u8> = spec.link_order().into_iter().map(|i| output[i]).collect();
        let link = chain_link_native(prev, aux, &values);
        let base = StepState {
            layer: z.base.layer + u64::from(last),
            model,
            activations: if last { link } else { z.base.activations },
        };
        let mut next = TileState::boundary(base);
        if !last {
            (next.tile, next.out_chain) = (z.tile + 1, link);
        }
        next
    }

    /// The input commitment every tile opens (native, for tests).
    pub fn input_commitment(&self) -> F {
        let inner = &*self.0;
        activation_commitment_native(&inner.input, inner.spec.block().input_layout(), inner.blind_in)
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
        let one = Term::constant::<CS>(F::ONE);

        // the tile index: first and last tile flags
        let tile_t = Term::var(tile);
        let first = Term::var(&is_zero(&mut cs.namespace(|| "first"), &tile_t)?);
        let last_index = Term::constant::<CS>(F::from((spec.tiles() - 1) as u64));
        let last = Term::var(&is_zero(&mut cs.namespace(|| "last"), &tile_t.plus(&last_index, -F::ONE))?);
        let not_last = one.plus(&last, -F::ONE);

        // the whole input: 7-bit range checks, and it opens the layer's input commitment
        // (in every tile: the slot holds it until the last tile)
        let input: Vec<Num<F>> = inner
            .input
            .iter()
            .enumerate()
            .map(|(i, &a)| alloc_uint(&mut cs.namespace(|| format!("in{i}")), &bits_le(a.into(), ACT_BITS)))
            .collect::<Result<_, _>>()?;
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(inner.blind_in))?;
        let opened =
            activation_commitment(&mut cs.namespace(|| "open input"), &input, block.input_layout(), &blind_in)?;
        cs.enforce(
            || "input opens z_in.activations",
            |lc| lc + opened.get_variable(),
            |lc| lc + CS::one(),
            |lc| lc + acts.get_variable(),
        );

        // the group's weights: range checks, absorbed into the running model commitment
        // (the slot itself carries the chain over the layer's chunks, tile by tile)
        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(inner.salt))?;
        let (weights_unsigned, bias) = alloc_layer_weights(cs, &inner.weights)?;
        let next_model = model_update(
            &mut cs.namespace(|| "model commitment"),
            &inner.update,
            &salt,
            model,
            &weights_unsigned,
            &bias,
        )?;

        // the group's output channels
        let layer_spec = spec.group_layer();
        let op = layer_spec.linear(layer_spec.zero_point);
        let (weights_lc, bias_lc) = weight_terms::<CS>(weights_unsigned, &bias);
        let input_lc: Vec<_> = input.iter().map(lc).collect();
        let linear = linear_requant(
            &mut cs.namespace(|| "compute"),
            &op,
            (&input_lc, &input_lc),
            &weights_lc,
            &bias_lc,
            &inner.hints.linear,
        )?;
        let outputs = pool_outputs(&mut cs.namespace(|| "pool"), &layer_spec, linear, &inner.hints.pool)?;

        // the group's link of the output chain (the first tile starts it from the output
        // layout's tag and blind_out)
        let blind_out = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(inner.blind_out))?;
        let output_tag = Term::constant::<CS>(block.output_layout().tag());
        let prev = select(&mut cs.namespace(|| "start"), &first, &output_tag, &Term::var(out_chain))?;
        let aux = product(&mut cs.namespace(|| "blind"), &first, &Term::var(&blind_out))?;
        let values: Vec<Num<F>> = spec.link_order().into_iter().map(|i| outputs[i].clone()).collect();
        let link = Term::var(&chain_link(
            &mut cs.namespace(|| "output link"),
            Elt::Allocated(prev),
            Elt::Allocated(aux),
            &values,
        )?);

        // the next state: the layer ends with its last tile
        let mut ns = cs.namespace(|| "next state");
        let cs = &mut ns;
        let next_layer = alloc_term(&mut cs.namespace(|| "layer"), &Term::var(layer).plus(&last, F::ONE))?;
        let next_acts = select(&mut cs.namespace(|| "activations"), &last, &link, &Term::var(acts))?;
        let next_tile = product(&mut cs.namespace(|| "tile"), &not_last, &tile_t.plus(&one, F::ONE))?;
        // the row tiles' slots stay 0
        let zero = Term::constant::<CS>(F::ZERO);
        let prev_model = alloc_term(&mut cs.namespace(|| "prev model"), &zero)?;
        let in_chain = alloc_term(&mut cs.namespace(|| "in chain"), &zero)?;
        let halo = alloc_term(&mut cs.namespace(|| "halo"), &zero)?;
        let out_next = product(&mut cs.namespace(|| "out chain"), &not_last, &link)?;
        Ok(vec![next_layer, next_model, next_acts, next_tile, prev_model, in_chain, halo, out_next])
    }
}
