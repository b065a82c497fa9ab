//! The public description of a segment's step circuit: what its keys depend on.

use crate::artifact::hex;
use fold_ml_circuits::layer::BlockSpec;
use fold_ml_circuits::layer::Links;
use fold_ml_circuits::quant::QuantError;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::{Step, Tiling};
use fold_ml_circuits::tile::TileState;
use fold_ml_circuits::{CIRCUIT_VERSION, F};
use nova_snark::digest::{DigestComputer, SimpleDigestible};
use serde::{Deserialize, Serialize};

/// The public description of the circuit: everything public parameters depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// [`CIRCUIT_VERSION`] of the prover.
    pub circuit: String,
    /// The block every step applies (a plain layer is a block of one).
    pub block: BlockSpec,
    /// Layers folded per Nova step (a multi-layer block's size, or one-layer blocks).
    pub layers_per_step: usize,
    /// How the block is tiled, if it is ([`fold_ml_circuits::tile`]): each block then takes
    /// one step per tile.
    pub tiling: Option<Tiling>,
}

impl SimpleDigestible for Architecture {}

impl Architecture {
    /// The architecture of `layers_per_step` layers of `block` per step, under this
    /// build's circuit.
    pub fn new(block: BlockSpec, layers_per_step: usize) -> Self {
        Self { circuit: CIRCUIT_VERSION.to_string(), block, layers_per_step, tiling: None }
    }

    /// The architecture of a block (of one or two layers) tiled `rows` output rows per
    /// step (its tensors committed one row per link).
    pub fn tiled(block: BlockSpec, rows: usize) -> Self {
        let stages = block.num_stages();
        Self { tiling: Some(Tiling::Rows(rows)), ..Self::new(block.with_row_links([true, true]), stages) }
    }

    /// The architecture of a convolution or a two-layer block tiled `channels` output
    /// channels (of each layer) per step (its output committed one group per link, its
    /// input as `block` says).
    pub fn channel_tiled(block: BlockSpec, channels: usize) -> Self {
        let (links, stages) = ([block.links[0], Links::Channels(channels)], block.num_stages());
        Self { tiling: Some(Tiling::Channels(channels)), ..Self::new(block.with_links(links), stages) }
    }

    /// The architecture of a convolution tiled one output row of `channels` output
    /// channels per step (its output committed one row of a group per link, its input as
    /// `block` says).
    pub fn grid_tiled(block: BlockSpec, channels: usize) -> Self {
        let links = [block.links[0], Links::RowGroups(channels)];
        Self { tiling: Some(Tiling::Grid(channels)), ..Self::new(block.with_links(links), 1) }
    }

    /// The architecture of a residual basic block tiled as a pair of grids of `channels`
    /// output channels per step ([`fold_ml_circuits::tile::PairSpec`]: its output committed
    /// one row of a group per link, its input as `block` says).
    pub fn pair_tiled(block: BlockSpec, channels: usize) -> Self {
        let links = [block.links[0], Links::RowGroups(channels)];
        Self { tiling: Some(Tiling::Pair(channels)), ..Self::new(block.with_links(links), 2) }
    }

    /// Output rows per step of a row-tiled block.
    pub fn tile_rows(&self) -> Option<usize> {
        match self.tiling {
            Some(Tiling::Rows(rows)) => Some(rows),
            _ => None,
        }
    }

    /// Checks what the types cannot: a valid block and, when tiled, a valid tiling.
    pub fn check(&self) -> Result<(), QuantError> {
        self.block.check()?;
        if self.tiling.is_some() && self.layers_per_step != self.block.num_stages() {
            return Err(QuantError::BadSpec("a tiled block is folded one tile per step".into()));
        }
        self.tiling.map_or(Ok(()), |t| t.check(&self.block))
    }

    /// Tiles per block (1 when untiled).
    pub fn tiles(&self) -> usize {
        self.tiling.map_or(1, |t| t.tiles(&self.block))
    }

    /// Nova steps that prove `layers` layers.
    pub fn steps(&self, layers: usize) -> usize {
        layers.div_ceil(self.layers_per_step.max(1)) * self.tiles()
    }

    /// Nova's state vector at a boundary between layers in the state `s` (a tiled layer's
    /// tile slots are zero there).
    pub fn z(&self, s: &StepState) -> Vec<F> {
        match self.tiling {
            Some(_) => TileState::boundary(*s).to_vec(),
            None => s.to_vec(),
        }
    }

    /// The boundary state in Nova's state vector `z`, if it is one.
    pub fn state(&self, z: &[F]) -> Option<StepState> {
        match self.tiling {
            Some(_) => TileState::from_z(z).filter(TileState::is_boundary).map(|t| t.base),
            None => StepState::from_z(z),
        }
    }

    /// A blank step circuit of this architecture, for parameter setup.
    pub fn blank(&self) -> Result<Step, QuantError> {
        Step::blank(&self.block, self.layers_per_step, self.tiling)
    }

    /// Digest (nova-snark's SHA3-based digest of the canonical encoding), 32 bytes.
    pub fn digest(&self) -> [u8; 32] {
        digest32(self)
    }

    /// Digest as hex.
    pub fn digest_hex(&self) -> String {
        hex(&self.digest())
    }

    /// A short name for directories and messages.
    pub fn short_id(&self) -> String {
        self.digest_hex()[2..18].to_string()
    }
}

/// What a segment's parameters and keys depend on: the public description of its step
/// circuit, named by a digest (the key stores' directory names) and set up from a blank
/// step. A network's [`Architecture`] is one; a GPT's segments are others.
pub trait KeyedCircuit {
    /// Digest of the description, 32 bytes.
    fn digest(&self) -> [u8; 32];
    /// A blank step circuit of this description, for parameter setup.
    fn blank_step(&self) -> Result<Step, crate::Error>;
    /// A short name for directories and messages.
    fn short_id(&self) -> String {
        hex(&self.digest())[2..18].to_string()
    }
}

impl<T: KeyedCircuit + ?Sized> KeyedCircuit for &T {
    fn digest(&self) -> [u8; 32] {
        (**self).digest()
    }

    fn blank_step(&self) -> Result<Step, crate::Error> {
        (**self).blank_step()
    }

    fn short_id(&self) -> String {
        (**self).short_id()
    }
}

impl KeyedCircuit for Architecture {
    fn digest(&self) -> [u8; 32] {
        Architecture::digest(self)
    }

    fn blank_step(&self) -> Result<Step, crate::Error> {
        self.blank().map_err(|e| crate::Error::BadInput { what: "architecture".into(), reason: e.to_string() })
    }
}

/// nova-snark's SHA3-based digest of a value's canonical encoding, 32 bytes. Only for
/// values whose encoding cannot fail (plain structs of integers, strings and bytes): a
/// failure is a bug and stops the program, never an all-zero digest that would make two
/// different values look alike.
pub fn digest32<T: SimpleDigestible>(value: &T) -> [u8; 32] {
    let f: F = DigestComputer::new(value).digest().expect("the canonical encoding of a plain value cannot fail");
    crate::field::to_bytes(&f)
}
