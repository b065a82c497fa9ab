//! The step circuit of a segment: layers (or blocks) whole per step, or a tiled layer a
//! band of rows or a group of output channels per step. One type, so that Nova's
//! parameters, keys and proofs of every segment share their types.

use crate::layer::{BlockSpec, LayerStep};
use crate::mux::MuxStep;
use crate::quant::QuantError;
use crate::spec::Links;
use crate::tile::{GroupSpec, GroupStep, PairSpec, PairStep, TileSpec, TileState, TileStep, TileWitness};
use crate::transformer::{EmbedStep, HeadStep, TransformerStep};
use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};

/// A segment's step circuit.
#[derive(Clone, Debug)]
pub enum Step {
    /// Whole layers or blocks ([`LayerStep`], state arity [`crate::state::ARITY`]).
    Layer(LayerStep),
    /// One tile of a row-tiled layer ([`TileStep`], state arity [`crate::tile::TILE_ARITY`]).
    Tile(TileStep),
    /// One group of output channels of a channel-tiled layer ([`GroupStep`], the same state).
    Group(GroupStep),
    /// One tile of a residual block tiled as a pair of grids ([`PairStep`], the same state).
    Pair(Box<PairStep>),
    /// A GPT's embedding ([`EmbedStep`]: token ids to the stream, state arity 3).
    Embed(Box<EmbedStep>),
    /// One transformer block ([`TransformerStep`]: stream to stream, state arity 3).
    Block(Box<TransformerStep>),
    /// A GPT's head ([`HeadStep`]: stream to the last position's logits, state arity 3).
    Head(Box<HeadStep>),
    /// One step of a multiplexed segment ([`MuxStep`]: several segments' step circuits,
    /// one selected per step, state arity [`crate::mux::MUX_ARITY`]).
    Mux(Box<MuxStep>),
}

/// How a segment's block is cut into tiles, one per Nova step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tiling {
    /// Bands of this many output rows (all channels), of a block of one or two layers.
    Rows(usize),
    /// Groups of this many output channels (all rows), of one convolution.
    Channels(usize),
    /// One output row of a group of this many output channels, of one convolution: the
    /// tiles run row by row and, within a row, group by group.
    Grid(usize),
    /// A residual basic block as a grid of this many output channels per tile of its first
    /// convolution, then one of its second (with the residual): a pair of grids.
    Pair(usize),
}

impl Step {
    /// A blank step of a segment's shape, for parameter setup: one tile of its block when
    /// tiled, else `layers_per_step` layers (or one block) per step.
    pub fn blank(block: &BlockSpec, layers_per_step: usize, tiling: Option<Tiling>) -> Result<Self, QuantError> {
        match tiling {
            None => {
                block.check()?;
                Ok(Self::Layer(LayerStep::blank(block.clone(), layers_per_step)))
            }
            Some(Tiling::Rows(rows)) => Ok(Self::Tile(TileStep::blank(tile_spec(block, rows)?)?)),
            Some(Tiling::Channels(channels)) => Ok(Self::Group(GroupStep::blank(group_spec(block, channels)?)?)),
            Some(Tiling::Grid(channels)) => Ok(Self::Tile(TileStep::blank(grid_spec(block, channels)?)?)),
            Some(Tiling::Pair(channels)) => Ok(Self::Pair(Box::new(PairStep::blank(pair_spec(block, channels)?)?))),
        }
    }
}

impl Tiling {
    /// Checks that `block` can be tiled so (its layouts included).
    pub fn check(self, block: &BlockSpec) -> Result<(), QuantError> {
        match self {
            Self::Rows(rows) => tile_spec(block, rows).map(drop),
            Self::Channels(channels) => group_spec(block, channels).map(drop),
            Self::Grid(channels) => grid_spec(block, channels).map(drop),
            Self::Pair(channels) => pair_spec(block, channels).map(drop),
        }
    }

    /// Tiles (Nova steps) per block of `block` so tiled.
    pub fn tiles(self, block: &BlockSpec) -> usize {
        match self {
            Self::Rows(rows) => crate::tile::tiled_height(block) / rows.max(1),
            Self::Channels(channels) => block.stages.iter().map(|s| s.shape.num_biases() / channels.max(1)).sum(),
            Self::Grid(channels) => {
                let outputs = block.stages.first().map_or(0, |s| s.shape.num_biases());
                crate::tile::tiled_height(block) * (outputs / channels.max(1))
            }
            Self::Pair(channels) => 2 * Self::Grid(channels).tiles(block),
        }
    }
}

impl Tiling {
    /// How a block so tiled commits its output: rows of every channel, groups of channels,
    /// or rows of groups (a pair averaged globally: its one row).
    pub fn output_links(self, block: &BlockSpec) -> Links {
        match self {
            Self::Rows(_) => Links::Rows,
            Self::Channels(g) => Links::Channels(g),
            Self::Grid(g) => Links::RowGroups(g),
            Self::Pair(g) => block.stages.last().map_or(Links::RowGroups(g), |s| crate::tile::pair_output_links(s, g)),
        }
    }

    /// The input links a block so tiled must read, whoever writes them: a pair averaged
    /// globally reads rows of its own groups (its passes share one tile); `None` when any
    /// row links do.
    pub fn input_links(self, block: &BlockSpec) -> Option<Links> {
        match (self, self.output_links(block)) {
            (Self::Pair(g), Links::Rows) => Some(Links::RowGroups(g)),
            _ => None,
        }
    }

    /// Layers of `block` done before its tile `tile`: 0, but 1 in a pair's second pass
    /// (its first layer's tiles end before it).
    pub fn layers_before(self, block: &BlockSpec, tile: usize) -> usize {
        match self {
            Self::Pair(_) => usize::from(tile >= self.tiles(block) / 2),
            _ => 0,
        }
    }
}

impl Step {
    /// Tile `tile` of `block` cut by `tiling`, from the block's whole input and the
    /// witness of all its layers.
    pub fn tile(
        block: &BlockSpec,
        tiling: Tiling,
        tile: usize,
        input: &[u8],
        witness: &TileWitness,
    ) -> Result<Self, QuantError> {
        match tiling {
            Tiling::Rows(rows) => TileStep::new(tile_spec(block, rows)?, tile, input, witness.clone()).map(Self::Tile),
            Tiling::Channels(g) => GroupStep::new(group_spec(block, g)?, tile, input, witness).map(Self::Group),
            Tiling::Grid(g) => TileStep::new(grid_spec(block, g)?, tile, input, witness.clone()).map(Self::Tile),
            Tiling::Pair(g) => {
                PairStep::new(pair_spec(block, g)?, tile, input, witness).map(|s| Self::Pair(Box::new(s)))
            }
        }
    }

    /// A tile's index in its block, the block's layers, and the state after the tile,
    /// computed natively from the state before it (`None` for whole layers).
    pub fn tile_transition(&self, z: &TileState) -> Option<(usize, usize, TileState)> {
        match self {
            Self::Layer(_) => None,
            Self::Tile(s) => Some((s.tile(), s.spec().num_stages(), s.next_state(z))),
            Self::Group(s) => Some((s.tile(), s.spec().num_stages(), s.next_state(z))),
            Self::Pair(s) => Some((s.tile(), 2, s.next_state(z))),
            Self::Embed(_) | Self::Block(_) | Self::Head(_) | Self::Mux(_) => None,
        }
    }
}

/// The spec of a block of one or two layers tiled `channels` output channels per tile:
/// its output is committed one group of channels per link, its input as the block says.
pub fn group_spec(block: &BlockSpec, channels: usize) -> Result<GroupSpec, QuantError> {
    if block.links[1] != Links::Channels(channels) {
        return Err(QuantError::BadSpec("a channel-tiled layer's output is committed one group per link".into()));
    }
    let (layer, second) = match block.stages.as_slice() {
        [layer] => (*layer, None),
        [layer, second] => (*layer, Some(*second)),
        _ => return Err(QuantError::BadSpec("only blocks of one or two layers can be tiled by channels".into())),
    };
    let spec = GroupSpec { layer, second, input: block.links[0], channels };
    spec.check()?;
    Ok(spec)
}

/// The tile spec of a block tiled `rows` output rows per tile: a block of one or two
/// layers whose output and input are committed one row (of every channel or of groups)
/// per link.
pub fn tile_spec(block: &BlockSpec, rows: usize) -> Result<TileSpec, QuantError> {
    if !matches!(block.links[1], Links::Rows | Links::RowGroups(_)) {
        return Err(QuantError::BadSpec("a row-tiled block's output is committed one row per link".into()));
    }
    let spec = match block.stages.as_slice() {
        [layer] => TileSpec::new(*layer, None, rows),
        [layer, second] => TileSpec::new(*layer, Some(*second), rows),
        _ => return Err(QuantError::BadSpec("only blocks of one or two layers can be tiled".into())),
    };
    let spec = TileSpec { input: block.links[0], output: block.links[1], ..spec };
    spec.geometry()?;
    Ok(spec)
}

/// The tile spec of a convolution tiled one output row of `channels` output channels per
/// tile: its output committed one row of a group per link, its input one row (of every
/// channel or of groups) per link.
pub fn grid_spec(block: &BlockSpec, channels: usize) -> Result<TileSpec, QuantError> {
    if block.links[1] != Links::RowGroups(channels) {
        return Err(QuantError::BadSpec("a grid-tiled layer's output is committed one row of a group per link".into()));
    }
    let [layer] = block.stages.as_slice() else {
        return Err(QuantError::BadSpec("only one convolution can be tiled by rows and channels".into()));
    };
    let spec = TileSpec::grid(*layer, channels, block.links[0]);
    spec.geometry()?;
    Ok(spec)
}

/// The spec of a residual basic block tiled as a pair of grids of `channels` output
/// channels per tile: its output committed one row of a group per link, its input one row
/// (of every channel or of groups) per link.
pub fn pair_spec(block: &BlockSpec, channels: usize) -> Result<PairSpec, QuantError> {
    let [first, second] = block.stages.as_slice() else {
        return Err(QuantError::BadSpec("a pair of grids tiles a block of two convolutions".into()));
    };
    let spec = PairSpec { first: *first, second: *second, channels, input: block.links[0] };
    if block.links[1] != spec.output_links() {
        return Err(QuantError::BadSpec(
            "a pair's output is committed one row of a group per link (averaged globally: one row)".into(),
        ));
    }
    spec.check()?;
    Ok(spec)
}

impl StepCircuit<F> for Step {
    fn arity(&self) -> usize {
        match self {
            Self::Layer(s) => s.arity(),
            Self::Tile(s) => s.arity(),
            Self::Group(s) => s.arity(),
            Self::Pair(s) => s.arity(),
            Self::Embed(s) => s.arity(),
            Self::Block(s) => s.arity(),
            Self::Head(s) => s.arity(),
            Self::Mux(s) => s.arity(),
        }
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        match self {
            Self::Layer(s) => s.synthesize(cs, z),
            Self::Tile(s) => s.synthesize(cs, z),
            Self::Group(s) => s.synthesize(cs, z),
            Self::Pair(s) => s.synthesize(cs, z),
            Self::Embed(s) => s.synthesize(cs, z),
            Self::Block(s) => s.synthesize(cs, z),
            Self::Head(s) => s.synthesize(cs, z),
            Self::Mux(s) => s.synthesize(cs, z),
        }
    }
}
