//! The step circuit of a segment: layers (or blocks) whole per step, or a tiled layer a
//! band of rows per step. One type, so that Nova's parameters, keys and proofs of every
//! segment share their types.

use crate::layer::{BlockSpec, LayerStep};
use crate::quant::QuantError;
use crate::tile::{TileSpec, TileStep};
use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;

/// A segment's step circuit.
#[derive(Clone, Debug)]
pub enum Step {
    /// Whole layers or blocks ([`LayerStep`], state arity [`crate::state::ARITY`]).
    Layer(LayerStep),
    /// One tile of a tiled layer ([`TileStep`], state arity [`crate::tile::TILE_ARITY`]).
    Tile(TileStep),
}

impl Step {
    /// A blank step of a segment's shape, for parameter setup: `tile_rows` tiles its
    /// block (of one or two layers), else `layers_per_step` layers (or one block) per step.
    pub fn blank(block: &BlockSpec, layers_per_step: usize, tile_rows: Option<usize>) -> Result<Self, QuantError> {
        match tile_rows {
            None => {
                block.check()?;
                Ok(Self::Layer(LayerStep::blank(block.clone(), layers_per_step)))
            }
            Some(rows) => Ok(Self::Tile(TileStep::blank(tile_spec(block, rows)?)?)),
        }
    }
}

/// The tile spec of a block tiled `rows` output rows per tile: a block of one or two
/// layers whose input and output are committed one row per link.
pub fn tile_spec(block: &BlockSpec, rows: usize) -> Result<TileSpec, QuantError> {
    if block.row_links != [true, true] {
        return Err(QuantError::BadSpec("a tiled block's tensors are committed one row per link".into()));
    }
    let spec = match block.stages.as_slice() {
        [layer] => TileSpec { layer: *layer, second: None, rows },
        [layer, second] => TileSpec { layer: *layer, second: Some(*second), rows },
        _ => return Err(QuantError::BadSpec("only blocks of one or two layers can be tiled".into())),
    };
    spec.geometry()?;
    Ok(spec)
}

impl StepCircuit<F> for Step {
    fn arity(&self) -> usize {
        match self {
            Self::Layer(s) => s.arity(),
            Self::Tile(s) => s.arity(),
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
        }
    }
}
