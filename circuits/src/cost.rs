//! Constraint accounting of a layer step, by synthesizing it into a counting system.

use crate::count_cs::{count, CountCS};
use crate::gadgets::linear::{Linear, LinearShape};
use crate::gadgets::pack::Packing;
use crate::gadgets::requant::requant_constraints;
use crate::layer::{BlockSpec, LayerSpec, LayerStep};
use crate::quant::QuantError;
use crate::quant::{ACT_BITS, BIAS_BITS, WEIGHT_BITS};
use crate::state::ARITY;
use crate::step::{grid_spec, group_spec, pair_spec, tile_spec, Tiling};
use crate::tile::{band_linear, band_second, GroupSpec, GroupStep, PairSpec, PairStep, TileSpec, TileStep, TILE_ARITY};

/// Constraints of the range checks of a layer's weights (8 bits) and biases (32 bits).
fn weight_range(op: &Linear) -> usize {
    op.num_weights() * WEIGHT_BITS as usize + op.shape.num_biases() * BIAS_BITS as usize
}

/// Size of one layer step circuit (without Nova's own verifier circuit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepCost {
    /// Total constraints of the step.
    pub constraints: usize,
    /// Total variables of the step (the state inputs excluded).
    pub variables: usize,
    /// Multiply-accumulates (padding taps excluded).
    pub macs: usize,
    /// Constraints of the packed products (one per shared factor of a pack; one per pack
    /// with no tap) and of the sums of other factors they share.
    pub products: usize,
    /// Constraints of requantize+ReLU+clamp, all outputs.
    pub requant: usize,
    /// Constraints of pooling, all pooled outputs.
    pub pool: usize,
    /// Constraints of the 7-bit range checks of the input activations.
    pub input_range: usize,
    /// Constraints of the range checks of the weights (8 bits) and biases (32 bits).
    pub weight_range: usize,
    /// Everything else: the Poseidon commitments, the counter, and with several layers per
    /// step the enable bits and pass-through selections.
    pub hashing: usize,
}

impl StepCost {
    /// Synthesizes a blank one-layer step of `spec` and counts.
    pub fn of(spec: &LayerSpec) -> Self {
        Self::of_step(&BlockSpec::layer(*spec), 1)
    }

    /// Synthesizes a blank step of `block` (`layers_per_step` one-layer blocks, or one
    /// multi-layer block) and counts; the per-part fields then cover all its layers (range
    /// checks of the input once).
    pub fn of_step(block: &BlockSpec, layers_per_step: usize) -> Self {
        let k = layers_per_step.max(1);
        let cs = count(&LayerStep::blank(block.clone(), k)).expect("a blank step synthesizes");
        let mut parts = [0usize; 5];
        for j in 0..k {
            let i = j % block.num_stages();
            let (spec, op) = (&block.stages[i], block.linear(i));
            let outputs = op.shape.num_outputs();
            parts[0] += op.macs();
            parts[1] += Packing::of(&op).product_constraints(&op);
            parts[2] += outputs * requant_constraints(spec.requant);
            parts[3] += match (spec.pool, spec.shape) {
                (Some(p), LinearShape::Conv(c)) => p.constraints(c.output_dims()),
                _ => 0,
            };
            parts[4] += weight_range(&op);
        }
        let [macs, products, requant, pool, weight_range] = parts;
        let input_range = block.num_inputs() * ACT_BITS as usize;
        Self::counted(&cs, ARITY, [macs, products, requant, pool, input_range, weight_range])
    }

    /// The counts of a synthesized step (state of `arity` elements), given the parts
    /// `[macs, products, requant, pool, input_range, weight_range]`; the rest is hashing.
    fn counted(cs: &CountCS, arity: usize, parts: [usize; 6]) -> Self {
        let [macs, products, requant, pool, input_range, weight_range] = parts;
        let counted = products + requant + pool + input_range + weight_range;
        Self {
            constraints: cs.num_constraints(),
            variables: cs.num_aux() - arity,
            macs,
            products,
            requant,
            pool,
            input_range,
            weight_range,
            hashing: cs.num_constraints().saturating_sub(counted),
        }
    }

    /// Synthesizes a blank tile of a tiled layer and counts (the per-part fields cover
    /// the tile's band; `hashing` also holds its padding, halo and selection constraints).
    pub fn of_tile(spec: &TileSpec) -> Result<Self, QuantError> {
        let g = spec.geometry()?;
        let cs = count(&TileStep::blank(*spec)?).map_err(|e| QuantError::BadSpec(e.to_string()))?;
        // the block's multiply-accumulates per tile; the bands also multiply padding rows
        // (and a two-layer tile recomputes the first layer's rows its neighbours need)
        let block = spec.block();
        let macs = block.macs() / spec.tiles();
        let band_ops: Vec<Linear> = std::iter::once(band_linear(spec, &g)?).chain(band_second(spec, &g)?).collect();
        let products = band_ops.iter().map(|op| Packing::of(op).product_constraints(op)).sum();
        let requant = band_ops.iter().map(|op| op.shape.num_outputs() * requant_constraints(op.requant)).sum();
        let pool = match spec.band_pool() {
            Some(mut p) => {
                (p.pads[0], p.pads[2]) = (0, 0);
                let LinearShape::Conv(band) = band_ops[0].shape else {
                    return Err(QuantError::BadSpec("a dense tile".into()));
                };
                p.constraints(band.output_dims())
            }
            // a global average: one mean per channel (its running sums are hashing)
            None if spec.pools_globally() => {
                let [ch, h, w] = spec.tiled_dims();
                ch * crate::gadgets::pool::window_constraints(crate::gadgets::pool::PoolKind::Average, h * w)
            }
            None => 0,
        };
        let input_range = g.rows() * spec.input_dims()[0] * spec.input_dims()[2] * ACT_BITS as usize;
        let weight_range = match spec.channels {
            Some(_) => weight_range(&spec.tile_layer().linear(spec.layer.zero_point)),
            None => (0..block.num_stages()).map(|i| weight_range(&block.linear(i))).sum(),
        };
        Ok(Self::counted(&cs, TILE_ARITY, [macs, products, requant, pool, input_range, weight_range]))
    }

    /// Synthesizes a blank channel tile of a channel-tiled convolution or block and counts
    /// (the per-part fields cover the tile's group of output channels of every layer of
    /// the block, all of which every tile holds; the inputs are read whole).
    pub fn of_group(spec: &GroupSpec) -> Result<Self, QuantError> {
        spec.check()?;
        let cs = count(&GroupStep::blank(*spec)?).map_err(|e| QuantError::BadSpec(e.to_string()))?;
        // both layers of a block are in every tile (one of them active)
        let mut parts = [0usize; 6];
        for stage in 0..spec.num_stages() {
            let layer = spec.group_layer(stage);
            let op = layer.linear(layer.zero_point);
            parts[0] += op.macs();
            parts[1] += Packing::of(&op).product_constraints(&op);
            parts[2] += op.shape.num_outputs() * requant_constraints(layer.requant);
            parts[3] += match (layer.pool, layer.shape) {
                (Some(p), LinearShape::Conv(c)) => p.constraints(c.output_dims()),
                _ => 0,
            };
            parts[4] += layer.num_inputs() * ACT_BITS as usize;
            parts[5] += weight_range(&op);
        }
        Ok(Self::counted(&cs, TILE_ARITY, parts))
    }

    /// Synthesizes a blank tile of a pair of grids and counts (the parts are both passes'
    /// tiles', which every tile holds; the block input's row it streams is hashing).
    pub fn of_pair(spec: &PairSpec) -> Result<Self, QuantError> {
        spec.check()?;
        let cs = count(&PairStep::blank(*spec)?).map_err(|e| QuantError::BadSpec(e.to_string()))?;
        let (a, b) = (Self::of_tile(&spec.pass_a())?, Self::of_tile(&spec.pass_b())?);
        let macs = spec.block().macs() / spec.tiles();
        let parts = [a.products + b.products, a.requant + b.requant, 0, a.input_range + b.input_range];
        let [products, requant, pool, input_range] = parts;
        let weight_range = a.weight_range + b.weight_range;
        Ok(Self::counted(&cs, TILE_ARITY, [macs, products, requant, pool, input_range, weight_range]))
    }

    /// [`Self::of_tile`], [`Self::of_group`] or [`Self::of_pair`], as `tiling` cuts `block`.
    pub fn of_tiling(block: &BlockSpec, tiling: Tiling) -> Result<Self, QuantError> {
        match tiling {
            Tiling::Rows(rows) => Self::of_tile(&tile_spec(block, rows)?),
            Tiling::Channels(channels) => Self::of_group(&group_spec(block, channels)?),
            Tiling::Grid(channels) => Self::of_tile(&grid_spec(block, channels)?),
            Tiling::Pair(channels) => Self::of_pair(&pair_spec(block, channels)?),
        }
    }

    /// An upper estimate of a step of one block (every pack at full fan-in, the
    /// requantization per output, 9 per weight and 33 per bias, 8 per input, the hashes of
    /// the input's and the output's links), without synthesizing it: a block reading the
    /// rows of groups of channels a pair writes hashes thousands of short links.
    pub fn rough(block: &BlockSpec) -> usize {
        let layers: usize = (0..block.num_stages())
            .map(|i| {
                let op = block.linear(i);
                Packing::of(&op).product_constraints_bound(&op)
                    + op.shape.num_outputs() * requant_constraints(block.stages[i].requant)
                    + op.num_weights() * 9
                    + op.shape.num_biases() * 33
            })
            .sum();
        let links = block.input_layout().chain_constraints() + block.output_layout().chain_constraints();
        layers + block.num_inputs() * 8 + links + 10_000
    }

    /// Constraints per multiply-accumulate, everything included.
    pub fn per_mac(&self) -> f64 {
        self.constraints as f64 / self.macs as f64
    }
}

/// Constraints of any step circuit (a transformer's steps included), synthesized on a
/// blank state and counted.
pub fn step_constraints<C: nova_snark::traits::circuit::StepCircuit<crate::F>>(
    step: &C,
) -> Result<usize, nova_snark::frontend::SynthesisError> {
    count(step).map(|cs| cs.num_constraints())
}
