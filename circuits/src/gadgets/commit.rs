//! Poseidon commitments (nova-snark's sponge, as wide as the input needs: width 3, 5, 9 or
//! 25) to vectors of small values.
//!
//! Small values are packed several to a field element before hashing: `⌊252 / bits⌋` of
//! them (36 activations of 7 bits, 31 weights of 8 bits), far cheaper than one Poseidon
//! absorption (~32 constraints) per value. Packing is only injective because every limb is
//! range-checked by its own bit decomposition before it is packed; callers must pass limbs
//! built with [`super::bits::alloc_uint`] (or outputs of the requantization gadget, which
//! are in `[0, 127]` by construction).
//!
//! Every hash starts with a domain tag that also encodes the number of values committed
//! (`tag + 2^64 · len`, or `tag + 2^64 · weights + 2^128 · biases` for a layer of the
//! model commitment), so an activation commitment can never be read as a model
//! commitment, nor a vector as a shorter or longer one (trailing zeros would otherwise
//! pack identically), nor a layer's weights and biases split differently. The tag is a
//! constant of the circuit: it costs no constraint.
//!
//! An activation tensor is committed as a hash chain over its rows ([`Layout`]): the first
//! link absorbs the layout's tag and a blind, each later link the previous one; the last
//! link is the commitment. One link per tensor costs what one hash of the whole tensor
//! does; one link per row lets a tiled layer absorb the tensor band by band.
//!
//! The running model commitment starts from the public constant [`model_start`] and
//! absorbs, per layer, the layer's spec digest (its whole public shape, a circuit
//! constant), the model's secret salt, the previous value, the weights and the biases —
//! in one hash, or, for a layer of more than [`CHUNK_WEIGHTS`] weights, in a chain of
//! hashes over canonical chunks of its output channels ([`Chunks`]), so that a tile
//! computing a group of channels can absorb just its own. The salt in every update makes every running value hiding: without it, nobody can
//! test candidate weights against a public value, not even between two consecutive
//! public values (the links between segments).

use crate::quant::{int_to_field, ACT_BITS, WEIGHT_BITS, WEIGHT_OFFSET};
use crate::F;
use ff::Field;
use generic_array::typenum::{U2, U24, U4, U8};
use nova_snark::frontend::gadgets::poseidon::{
    Elt, IOPattern, PoseidonConstants, Simplex, Sponge, SpongeAPI, SpongeCircuit, SpongeOp, SpongeTrait, Strength,
};
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, SynthesisError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Domain tag of activation commitments.
pub const TAG_ACTIVATIONS: u64 = 0xf01d_0001;
/// Domain tag of one step of the running model commitment.
pub const TAG_MODEL_LAYER: u64 = 0xf01d_0002;
/// Domain tag of the model commitment's public starting value.
pub const TAG_MODEL_START: u64 = 0xf01d_0004;
/// Domain tag of a layer spec's digest.
pub const TAG_LAYER_SPEC: u64 = 0xf01d_0005;
/// Bits of a field element used for packing (the Pallas scalar field has 254).
pub const PACK_BITS: u32 = 252;

/// Poseidon constants of one width, built once.
macro_rules! constants_of {
    ($name:ident, $arity:ty) => {
        fn $name() -> &'static PoseidonConstants<F, $arity> {
            static C: OnceLock<PoseidonConstants<F, $arity>> = OnceLock::new();
            C.get_or_init(|| Sponge::<F, $arity>::api_constants(Strength::Standard))
        }
    };
}
constants_of!(constants_2, U2);
constants_of!(constants_4, U4);
constants_of!(constants_8, U8);
constants_of!(constants_24, U24);

fn pattern(n: usize) -> IOPattern {
    IOPattern(vec![SpongeOp::Absorb(n as u32), SpongeOp::Squeeze(1)])
}

/// Runs `$body` with `$c` bound to the constants of the narrowest sponge (rate 2, 4, 8,
/// else 24) that absorbs `$len` elements in one permutation (more than 24: several of
/// width 25). A narrow sponge costs far less per permutation (~240 constraints at width 3
/// against ~770 at width 25), which is what a short hash (a link of a few packed values)
/// pays. The width is a function of the length, which the sponge's IO pattern already
/// binds, so every length has one hash function.
macro_rules! with_width {
    ($len:expr, $c:ident => $body:expr) => {
        match $len {
            0..=2 => {
                let $c = constants_2();
                $body
            }
            3..=4 => {
                let $c = constants_4();
                $body
            }
            5..=8 => {
                let $c = constants_8();
                $body
            }
            _ => {
                let $c = constants_24();
                $body
            }
        }
    };
}

/// Native Poseidon hash of a sequence of field elements, by the narrowest sponge that
/// absorbs it in one permutation (`with_width`).
pub fn hash_native(items: &[F]) -> F {
    with_width!(items.len(), c => {
        let mut sponge = Sponge::new_with_constants(c, Simplex);
        let acc = &mut ();
        sponge.start(pattern(items.len()), None, acc);
        SpongeAPI::absorb(&mut sponge, items.len() as u32, items, acc);
        let out = SpongeAPI::squeeze(&mut sponge, 1, acc);
        // The pattern above is exactly what was absorbed and squeezed.
        sponge.finish(acc).expect("sponge pattern matches its use");
        out[0]
    })
}

/// In-circuit twin of [`hash_native`].
pub fn hash<CS: ConstraintSystem<F>>(cs: &mut CS, items: &[Elt<F>]) -> Result<AllocatedNum<F>, SynthesisError> {
    let mut ns = cs.namespace(|| "poseidon");
    let out = with_width!(items.len(), c => {
        let acc = &mut ns;
        let mut sponge = SpongeCircuit::new_with_constants(c, Simplex);
        sponge.start(pattern(items.len()), None, acc);
        SpongeAPI::absorb(&mut sponge, items.len() as u32, items, acc);
        let out = SpongeAPI::squeeze(&mut sponge, 1, acc);
        sponge.finish(acc).map_err(|e| SynthesisError::Unsatisfiable(format!("sponge: {e:?}")))?;
        out[0].clone()
    });
    let digest = out.ensure_allocated(&mut ns.namespace(|| "digest"));
    digest
}

/// Constraints of one in-circuit [`hash`] of `len` elements (one permutation of the
/// narrowest sponge that absorbs them, else several of width 25), counted once per length.
pub fn hash_constraints(len: usize) -> usize {
    static MEMO: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Mutex::default);
    if let Some(&c) = memo.lock().unwrap_or_else(PoisonError::into_inner).get(&len) {
        return c;
    }
    let mut cs = crate::count_cs::CountCS::new();
    let items: Result<Vec<_>, _> = (0..len)
        .map(|i| AllocatedNum::alloc(cs.namespace(|| format!("x{i}")), || Ok(F::ZERO)).map(Elt::Allocated))
        .collect();
    let counted = items.and_then(|items| hash(&mut cs, &items)).map(|_| cs.num_constraints());
    // a counting system refuses nothing
    let c = counted.expect("a hash synthesizes into a counting system");
    memo.lock().unwrap_or_else(PoisonError::into_inner).insert(len, c);
    c
}

/// The domain tag of a hash over `len` values: `tag + 2^64 · len`.
pub fn domain_tag(tag: u64, len: usize) -> F {
    F::from(tag) + F::from(len as u64) * F::from(2).pow_vartime([64u64])
}

/// Packs unsigned values of `bits` bits, `⌊252/bits⌋` per field element, little-endian.
pub fn pack_native(values: &[u64], bits: u32) -> Vec<F> {
    let shift = F::from(2).pow_vartime([u64::from(bits)]);
    values
        .chunks((PACK_BITS / bits) as usize)
        .map(|chunk| chunk.iter().rev().fold(F::ZERO, |acc, &v| acc * shift + F::from(v)))
        .collect()
}

/// In-circuit packing (no constraints): the limbs must already be range-checked.
pub fn pack(values: &[Num<F>], bits: u32) -> Vec<Num<F>> {
    let shift = F::from(2).pow_vartime([u64::from(bits)]);
    values
        .chunks((PACK_BITS / bits) as usize)
        .map(|chunk| {
            let mut coeff = F::ONE;
            let mut acc = Num::zero();
            for v in chunk {
                acc = acc.add(&v.clone().scale(coeff));
                coeff *= shift;
            }
            acc
        })
        .collect()
}

/// How an activation tensor is committed: its `[channels, height, width]` (a vector is
/// `[n, 1, 1]`), cut into links of a hash chain, each `link_rows` rows high and
/// `link_channels` channels deep. Links run band by band of rows, and within a band
/// group by group of channels; a link's values run row by row, each row channel by
/// channel (of its group), each channel left to right. A whole tensor in one link is the
/// cheapest to commit; one row per link lets a row-tiled layer read or write the tensor a
/// band of rows at a time; one group of channels per link (all rows) lets a
/// channel-tiled layer write a group of output channels at a time; one row of one group
/// per link lets a grid-tiled layer write a row of a group at a time and a row-tiled one
/// read it a band of rows at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// `[channels, height, width]`.
    pub dims: [usize; 3],
    /// Rows per link (divides the height).
    pub link_rows: usize,
    /// Channels per link (divides the channels; below them only with all rows or one row
    /// per link).
    pub link_channels: usize,
}

/// Domain tag of an activation chain whose links are groups of channels.
pub const TAG_ACTIVATIONS_BY_CHANNELS: u64 = 0xf01d_0009;

impl Layout {
    /// A tensor committed in one link.
    pub fn whole([c, h, w]: [usize; 3]) -> Self {
        Self { dims: [c, h, w], link_rows: h.max(1), link_channels: c.max(1) }
    }

    /// A tensor committed one row per link.
    pub fn by_rows(dims: [usize; 3]) -> Self {
        Self { link_rows: 1, ..Self::whole(dims) }
    }

    /// A tensor committed `channels` channels (all rows) per link.
    pub fn by_channels(dims: [usize; 3], channels: usize) -> Self {
        Self { link_channels: channels, ..Self::whole(dims) }
    }

    /// A tensor committed one row of `channels` channels per link.
    pub fn by_row_groups(dims: [usize; 3], channels: usize) -> Self {
        Self { link_rows: 1, link_channels: channels, ..Self::whole(dims) }
    }

    /// A tensor committed one row per link, or whole.
    pub fn new(dims: [usize; 3], by_rows: bool) -> Self {
        if by_rows {
            Self::by_rows(dims)
        } else {
            Self::whole(dims)
        }
    }

    /// Values in the tensor.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values in one row.
    pub fn row_len(&self) -> usize {
        self.dims[0] * self.dims[2]
    }

    /// Whether the links are groups of channels (fewer than all).
    pub fn by_channel_groups(&self) -> bool {
        self.link_channels != self.dims[0]
    }

    /// Checks that `link_rows` divides a non-zero height, `link_channels` the channels,
    /// and that links of a group of channels span every row or one.
    pub fn check(&self) -> Result<(), String> {
        let [c, h, _] = self.dims;
        if h == 0 || self.link_rows == 0 || !h.is_multiple_of(self.link_rows) {
            return Err(format!("{} rows per link do not divide a height of {h}", self.link_rows));
        }
        if c == 0 || self.link_channels == 0 || !c.is_multiple_of(self.link_channels) {
            return Err(format!("{} channels per link do not divide {c} channels", self.link_channels));
        }
        if self.by_channel_groups() && self.link_rows != h && self.link_rows != 1 {
            return Err(format!("links of {} of {c} channels span every row or one", self.link_channels));
        }
        Ok(())
    }

    /// Tensor (channel-major) indices of row `y`'s values, in commitment order.
    pub fn row(&self, y: usize) -> impl Iterator<Item = usize> {
        let [c, h, w] = self.dims;
        (0..c).flat_map(move |ch| (0..w).map(move |x| (ch * h + y) * w + x))
    }

    /// Number of links.
    pub fn links(&self) -> usize {
        (self.dims[1] / self.link_rows.max(1)) * (self.dims[0] / self.link_channels.max(1))
    }

    /// Constraints of hashing every link of the chain in a circuit (what a step reading
    /// or writing the whole tensor so pays; the values' range checks aside).
    pub fn chain_constraints(&self) -> usize {
        let per_link = self.len() / self.links().max(1);
        let packed = per_link.div_ceil((PACK_BITS / ACT_BITS) as usize);
        self.links() * hash_constraints(2 + packed)
    }

    /// Tensor (channel-major) indices of link `j`'s values, in commitment order.
    pub fn link(&self, j: usize) -> Vec<usize> {
        let [c, h, w] = self.dims;
        let groups = c / self.link_channels.max(1);
        let (band, group) = (j / groups.max(1), j % groups.max(1));
        let channels = group * self.link_channels..(group + 1) * self.link_channels;
        (band * self.link_rows..(band + 1) * self.link_rows)
            .flat_map(|y| channels.clone().flat_map(move |ch| (0..w).map(move |x| (ch * h + y) * w + x)))
            .collect()
    }

    /// The first link's leading tag. Links of every channel:
    /// `TAG_ACTIVATIONS + 2^64·len + 2^128·height + 2^192·link_rows` (injective: each count
    /// is below 2^62); links of groups of channels: a hash of
    /// [`TAG_ACTIVATIONS_BY_CHANNELS`] and every dimension (a circuit constant either way).
    pub fn tag(&self) -> F {
        let two64 = F::from(2).pow_vartime([64u64]);
        let [c, h, w] = self.dims;
        if self.by_channel_groups() {
            let dims = [c, h, w, self.link_rows, self.link_channels].map(|v| F::from(v as u64));
            let items: Vec<F> = std::iter::once(domain_tag(TAG_ACTIVATIONS_BY_CHANNELS, 5)).chain(dims).collect();
            return hash_native(&items);
        }
        F::from(TAG_ACTIVATIONS)
            + two64
                * (F::from(self.len() as u64) + two64 * (F::from(h as u64) + two64 * F::from(self.link_rows as u64)))
    }
}

/// One link of an activation chain: `H(prev, aux, pack7(values))`. The first link of a
/// tensor has `prev` = [`Layout::tag`] and `aux` = the blind; every later one the previous
/// link and 0. The last link is the commitment.
pub fn chain_link_native(prev: F, aux: F, values: &[u8]) -> F {
    let v: Vec<u64> = values.iter().map(|&a| u64::from(a)).collect();
    let mut items = vec![prev, aux];
    items.extend(pack_native(&v, ACT_BITS));
    hash_native(&items)
}

/// In-circuit twin of [`chain_link_native`]; `values` must be range-checked.
pub fn chain_link<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    prev: Elt<F>,
    aux: Elt<F>,
    values: &[Num<F>],
) -> Result<AllocatedNum<F>, SynthesisError> {
    let mut items = vec![prev, aux];
    items.extend(pack(values, ACT_BITS).into_iter().map(Elt::Num));
    hash(cs, &items)
}

/// Commitment to an activation tensor (channel-major values) of the given layout under a
/// blinding factor: the last link of its chain ([`chain_link_native`]). With `blind = 0`
/// it is a plain (public) digest. Panics unless the layout is valid and holds
/// `acts.len()` values (callers check lengths first).
pub fn activation_commitment_native(acts: &[u8], layout: Layout, blind: F) -> F {
    assert!(layout.check().is_ok() && layout.len() == acts.len(), "layout {layout:?} for {} values", acts.len());
    let mut link = (layout.tag(), blind);
    for j in 0..layout.links() {
        let values: Vec<u8> = layout.link(j).into_iter().map(|i| acts[i]).collect();
        link = (chain_link_native(link.0, link.1, &values), F::ZERO);
    }
    link.0
}

/// In-circuit twin of [`activation_commitment_native`]; `acts` must be range-checked.
pub fn activation_commitment<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    acts: &[Num<F>],
    layout: Layout,
    blind: &AllocatedNum<F>,
) -> Result<AllocatedNum<F>, SynthesisError> {
    if layout.check().is_err() || layout.len() != acts.len() {
        return Err(SynthesisError::Unsatisfiable(format!("layout {layout:?} for {} values", acts.len())));
    }
    let mut prev = Elt::num_from_fr::<CS>(layout.tag());
    let mut aux = Elt::Allocated(blind.clone());
    let mut out = None;
    for j in 0..layout.links() {
        let values: Vec<Num<F>> = layout.link(j).into_iter().map(|i| acts[i].clone()).collect();
        let link = chain_link(&mut cs.namespace(|| format!("link{j}")), prev, aux, &values)?;
        prev = Elt::Allocated(link.clone());
        aux = Elt::num_from_fr::<CS>(F::ZERO);
        out = Some(link);
    }
    out.ok_or_else(|| SynthesisError::Unsatisfiable("an empty tensor".into()))
}

/// The public value every model commitment chain starts from (the IVC state's model slot
/// before the first layer). A constant, so no proof of a suffix of a model can start
/// from the running commitment of its prefix.
pub fn model_start() -> F {
    domain_tag(TAG_MODEL_START, 0)
}

/// The domain tag of one layer's update: `TAG_MODEL_LAYER + 2^64·weights + 2^128·biases`
/// (injective: both counts are below 2^64).
pub fn layer_tag(weights: usize, biases: usize) -> F {
    let two64 = F::from(2).pow_vartime([64u64]);
    F::from(TAG_MODEL_LAYER) + F::from(weights as u64) * two64 + F::from(biases as u64) * two64 * two64
}

/// Weights a chunk of a layer's model-commitment update holds at most, unless one output
/// channel alone has more ([`Chunks`]).
pub const CHUNK_WEIGHTS: usize = 4096;

/// How a layer's update of the running model commitment cuts its parameters: into chunks
/// of `channels` consecutive outputs, each with those outputs' weights (the layer's own
/// rows, then its projection's rows: weights are output-major) and biases. `channels` is a
/// function of the layer's shape alone — the largest divisor of the output count that
/// keeps a chunk within [`CHUNK_WEIGHTS`] weights (at least 1) — so the model's holder,
/// every tiling and the verifier's statement agree on it; a layer of at most
/// `CHUNK_WEIGHTS` weights is one chunk. A tile that computes a group of output channels
/// absorbs just its group's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunks {
    /// Outputs (channels of a convolution, units of a dense layer): one bias each.
    pub outputs: usize,
    /// The layer's own weights per output.
    pub own: usize,
    /// The projection shortcut's weights per output (0: none).
    pub projection: usize,
    /// Outputs per chunk (divides `outputs`).
    pub channels: usize,
}

impl Chunks {
    /// The canonical chunks of a layer with `outputs` outputs of `own + projection`
    /// weights each.
    pub fn new(outputs: usize, own: usize, projection: usize) -> Self {
        let per = (own + projection).max(1);
        let most = (CHUNK_WEIGHTS / per).max(1);
        let channels = (1..=outputs.min(most)).rev().find(|d| outputs.is_multiple_of(*d)).unwrap_or(1);
        Self { outputs, own, projection, channels }
    }

    /// Number of chunks.
    pub fn count(&self) -> usize {
        self.outputs / self.channels.max(1)
    }

    /// Weights in all chunks.
    pub fn num_weights(&self) -> usize {
        self.outputs * (self.own + self.projection)
    }

    /// Indices, into the layer's weights, of chunk `i`'s weights, in the order it absorbs
    /// them; and the range of its biases.
    pub fn chunk(&self, i: usize) -> (Vec<usize>, std::ops::Range<usize>) {
        let outs = i * self.channels..(i + 1) * self.channels;
        let own = outs.start * self.own..outs.end * self.own;
        let proj = self.outputs * self.own + outs.start * self.projection
            ..self.outputs * self.own + outs.end * self.projection;
        (own.chain(proj).collect(), outs)
    }
}

/// What one layer's update absorbs besides its parameters: the layer spec's digest (a
/// circuit constant) and how its parameters are chunked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerUpdate {
    /// The spec's digest ([`crate::spec::LayerSpec::digest_at`]).
    pub digest: F,
    /// The parameters' chunks.
    pub chunks: Chunks,
}

/// One layer's update of the running model commitment: a chain over its chunks, each link
/// `H(layer_tag(chunk weights, chunk biases), spec_digest, salt, prev, pack8(w + 128),
/// bias_0, …)` with `prev` the value before the layer, then the previous link. A layer of
/// one chunk is one hash of all its parameters.
pub fn model_update_native(acc: F, update: &LayerUpdate, salt: F, weights: &[i8], bias: &[i32]) -> F {
    (0..update.chunks.count()).fold(acc, |prev, i| {
        let (ws, bs) = update.chunks.chunk(i);
        let w: Vec<u64> = ws.iter().map(|&j| (i64::from(weights[j]) + WEIGHT_OFFSET) as u64).collect();
        let mut items = vec![layer_tag(w.len(), bs.len()), update.digest, salt, prev];
        items.extend(pack_native(&w, WEIGHT_BITS));
        items.extend(bias[bs].iter().map(|&b| int_to_field(b.into())));
        hash_native(&items)
    })
}

/// In-circuit twin of [`model_update_native`]. The digest is a constant of the circuit;
/// `weights_unsigned` are the range-checked `w + 128` limbs; biases enter as whole field
/// elements (no packing, so no range check is needed for the commitment to be binding).
pub fn model_update<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    update: &LayerUpdate,
    salt: &AllocatedNum<F>,
    acc: &AllocatedNum<F>,
    weights_unsigned: &[Num<F>],
    bias: &[Num<F>],
) -> Result<AllocatedNum<F>, SynthesisError> {
    let digest = Elt::num_from_fr::<CS>(update.digest);
    model_update_with(cs, (update.chunks, &digest), salt, acc, weights_unsigned, bias)
}

/// [`model_update`] with the spec digest given in the circuit (a tile shared by two
/// layers selects theirs by its pass bit).
pub fn model_update_with<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (chunks, digest): (Chunks, &Elt<F>),
    salt: &AllocatedNum<F>,
    acc: &AllocatedNum<F>,
    weights_unsigned: &[Num<F>],
    bias: &[Num<F>],
) -> Result<AllocatedNum<F>, SynthesisError> {
    if weights_unsigned.len() != chunks.num_weights() || bias.len() != chunks.outputs {
        return Err(SynthesisError::Unsatisfiable(format!(
            "{} weights and {} biases for chunks of {chunks:?}",
            weights_unsigned.len(),
            bias.len()
        )));
    }
    let mut prev = acc.clone();
    for i in 0..chunks.count() {
        let (ws, bs) = chunks.chunk(i);
        let w: Vec<Num<F>> = ws.iter().map(|&j| weights_unsigned[j].clone()).collect();
        let mut items = vec![
            Elt::num_from_fr::<CS>(layer_tag(w.len(), bs.len())),
            digest.clone(),
            Elt::Allocated(salt.clone()),
            Elt::Allocated(prev),
        ];
        items.extend(pack(&w, WEIGHT_BITS).into_iter().map(Elt::Num));
        items.extend(bias[bs].iter().cloned().map(Elt::Num));
        let mut cs = cs.namespace(|| format!("chunk{i}"));
        prev = hash(&mut cs, &items)?;
    }
    Ok(prev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::bits::{alloc_uint, uint_native};
    use crate::quant::bits_le;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    fn alloc_acts(cs: &mut TestConstraintSystem<F>, bit_values: &[Vec<F>]) -> Vec<Num<F>> {
        bit_values
            .iter()
            .enumerate()
            .map(|(i, b)| alloc_uint(&mut cs.namespace(|| format!("a{i}")), b).unwrap())
            .collect()
    }

    fn commit_in_circuit(bit_values: &[Vec<F>], layout: Layout, blind: F) -> (bool, F) {
        let mut cs = TestConstraintSystem::<F>::new();
        let acts = alloc_acts(&mut cs, bit_values);
        let blind = AllocatedNum::alloc(cs.namespace(|| "blind"), || Ok(blind)).unwrap();
        let c = activation_commitment(&mut cs, &acts, layout, &blind).unwrap();
        (cs.is_satisfied(), c.get_value().unwrap())
    }

    fn flat(n: usize) -> Layout {
        Layout::whole([n, 1, 1])
    }

    /// A tensor with its layout: up to 4×6×5 values, links of a divisor of the height, or
    /// of a divisor of the channels spanning every row or one.
    fn tensor() -> impl Strategy<Value = (Vec<u8>, Layout)> {
        (1usize..5, 1usize..7, 1usize..6, 1usize..7, 0..3).prop_flat_map(|(c, h, w, l, kind)| {
            let divisor = |n: usize| (1..=l.min(n)).rev().find(|d| n.is_multiple_of(*d)).unwrap_or(1);
            let layout = match kind {
                0 => Layout::by_channels([c, h, w], divisor(c)),
                1 => Layout::by_row_groups([c, h, w], divisor(c)),
                _ => Layout { link_rows: divisor(h), ..Layout::whole([c, h, w]) },
            };
            (proptest::collection::vec(0u8..=127, c * h * w), Just(layout))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]
        #[test]
        fn activation_commitment_matches_native((acts, layout) in tensor(), blind in any::<u64>()) {
            let bits: Vec<_> = acts.iter().map(|&a| uint_native(a.into(), ACT_BITS).unwrap()).collect();
            let (sat, c) = commit_in_circuit(&bits, layout, F::from(blind));
            prop_assert!(sat);
            prop_assert_eq!(c, activation_commitment_native(&acts, layout, F::from(blind)));
        }

        #[test]
        fn a_chain_is_its_rows_linked_in_order((acts, layout) in tensor(), blind in any::<u64>()) {
            // An independent spelling of the chain: rows gathered by hand from the
            // channel-major tensor, one link per `link_rows` rows and `link_channels`
            // channels (bands outside, groups inside).
            let [c, h, w] = layout.dims;
            let mut link = (layout.tag(), F::from(blind));
            for y0 in (0..h).step_by(layout.link_rows) {
                for c0 in (0..c).step_by(layout.link_channels) {
                    let mut values = Vec::new();
                    for y in y0..y0 + layout.link_rows {
                        for ch in c0..c0 + layout.link_channels {
                            values.extend_from_slice(&acts[(ch * h + y) * w..(ch * h + y + 1) * w]);
                        }
                    }
                    link = (chain_link_native(link.0, link.1, &values), F::ZERO);
                }
            }
            prop_assert_eq!(link.0, activation_commitment_native(&acts, layout, F::from(blind)));
        }

        #[test]
        fn model_update_matches_native(
            (outputs, own, projection) in (1usize..7, prop_oneof![1usize..600, 2100usize..2600], prop_oneof![Just(0usize), 1usize..40]),
            seed in any::<u64>(),
        ) {
            // one chunk or several (CHUNK_WEIGHTS cuts layers of > 4096 weights: 2+ outputs
            // of 2100+ weights)
            let chunks = Chunks::new(outputs, own, projection);
            prop_assert_eq!(chunks.count() > 1, outputs > 1 && own >= 2100);
            let n = chunks.num_weights();
            let w: Vec<i8> = (0..n as u64).map(|i| (seed.wrapping_mul(i + 7) >> 13) as i8).collect();
            let b: Vec<i32> = (0..outputs as u64).map(|i| (seed.wrapping_mul(i + 3) >> 20) as i32).collect();
            let mut cs = TestConstraintSystem::<F>::new();
            let acc = AllocatedNum::alloc(cs.namespace(|| "acc"), || Ok(F::from(99))).unwrap();
            let wu: Vec<_> = w.iter().enumerate().map(|(i, &x)| {
                alloc_uint(&mut cs.namespace(|| format!("w{i}")), &bits_le((i64::from(x) + 128) as u64, 8)).unwrap()
            }).collect();
            let bias: Vec<_> = b.iter().enumerate().map(|(i, &x)| {
                Num::from(AllocatedNum::alloc(cs.namespace(|| format!("b{i}")), || Ok(int_to_field(x.into()))).unwrap())
            }).collect();
            let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(F::from(7))).unwrap();
            let update = LayerUpdate { digest: F::from(12345), chunks };
            let c = model_update(&mut cs, &update, &salt, &acc, &wu, &bias).unwrap();
            prop_assert!(cs.is_satisfied());
            prop_assert_eq!(c.get_value().unwrap(), model_update_native(F::from(99), &update, F::from(7), &w, &b));
        }

        #[test]
        fn chunks_are_the_largest_divisor_within_the_weight_budget(outputs in 1usize..600, own in 1usize..5000, projection in 0usize..300) {
            let c = Chunks::new(outputs, own, projection);
            prop_assert!(outputs.is_multiple_of(c.channels));
            prop_assert!(c.channels == 1 || c.channels * (own + projection) <= CHUNK_WEIGHTS);
            let larger = (c.channels + 1..=outputs).find(|d| outputs.is_multiple_of(*d));
            prop_assert!(larger.is_none_or(|d| d * (own + projection) > CHUNK_WEIGHTS));
            // every weight and bias in exactly one chunk
            let mut seen = vec![0u8; c.num_weights()];
            let mut biases = vec![0u8; outputs];
            for i in 0..c.count() {
                let (ws, bs) = c.chunk(i);
                ws.into_iter().for_each(|j| seen[j] += 1);
                bs.for_each(|o| biases[o] += 1);
            }
            prop_assert!(seen.iter().chain(&biases).all(|&k| k == 1));
        }
    }

    #[test]
    fn distinct_inputs_and_blinds_give_distinct_commitments() {
        let a = activation_commitment_native(&[1, 2, 3], flat(3), F::ZERO);
        assert_ne!(a, activation_commitment_native(&[1, 2, 4], flat(3), F::ZERO));
        assert_ne!(a, activation_commitment_native(&[1, 2, 3], flat(3), F::ONE));
        assert_ne!(a, activation_commitment_native(&[1, 2, 3, 0], flat(4), F::ZERO));
    }

    #[test]
    fn the_layout_is_bound() {
        let acts: Vec<u8> = (0..12).collect();
        let c =
            |dims, link_rows| activation_commitment_native(&acts, Layout { link_rows, ..Layout::whole(dims) }, F::ONE);
        let whole = c([2, 3, 2], 3);
        assert_ne!(whole, c([2, 3, 2], 1), "links");
        assert_ne!(whole, c([1, 3, 4], 3), "same rows, other channel split");
        assert_ne!(whole, c([2, 2, 3], 2), "other height");
        assert_ne!(whole, c([12, 1, 1], 1), "a vector");
        assert_eq!(Layout::whole([2, 3, 2]), Layout { dims: [2, 3, 2], link_rows: 3, link_channels: 2 });
        assert!(Layout { link_rows: 2, ..Layout::whole([2, 3, 2]) }.check().is_err());
        // groups of channels: their own tag, and the group size is bound
        let groups = |n| activation_commitment_native(&acts, Layout::by_channels([4, 3, 1], n), F::ONE);
        let (one, two) = (groups(1), groups(2));
        assert_ne!(one, two, "group size");
        assert_ne!(two, activation_commitment_native(&acts, Layout::whole([4, 3, 1]), F::ONE), "one group");
        assert_eq!(groups(4), activation_commitment_native(&acts, Layout::whole([4, 3, 1]), F::ONE), "all channels");
        assert!(Layout::by_channels([4, 3, 1], 3).check().is_err(), "3 does not divide 4");
        assert!(Layout { link_rows: 3, ..Layout::by_channels([4, 6, 1], 2) }.check().is_err(), "every row or one");
        // a row of a group per link: its own tag
        let cells = activation_commitment_native(&acts, Layout::by_row_groups([4, 3, 1], 2), F::ONE);
        assert!(cells != two && cells != one, "rows of groups");
        assert_eq!(
            activation_commitment_native(&acts, Layout::by_row_groups([4, 3, 1], 4), F::ONE),
            activation_commitment_native(&acts, Layout::by_rows([4, 3, 1]), F::ONE),
            "rows of all channels"
        );
    }

    fn one(digest: F, weights: usize, biases: usize) -> LayerUpdate {
        LayerUpdate {
            digest,
            chunks: Chunks { outputs: biases, own: weights / biases, projection: 0, channels: biases },
        }
    }

    #[test]
    fn model_updates_separate_specs_salts_and_splits() {
        let (acc, spec, salt) = (model_start(), F::from(3), F::from(5));
        let base = model_update_native(acc, &one(spec, 2, 1), salt, &[1, 2], &[3]);
        assert_ne!(base, model_update_native(acc, &one(F::from(4), 2, 1), salt, &[1, 2], &[3]), "spec");
        assert_ne!(base, model_update_native(acc, &one(spec, 2, 1), F::from(6), &[1, 2], &[3]), "salt");
        assert_ne!(base, model_update_native(F::ONE, &one(spec, 2, 1), salt, &[1, 2], &[3]), "previous value");
        // The same field elements split differently between weights and biases: the old
        // `tag + 2^64·(weights + biases)` tag could not tell these apart.
        assert_ne!(layer_tag(2, 1), layer_tag(1, 2));
        assert_ne!(layer_tag(2, 1), layer_tag(3, 0));
    }

    #[test]
    fn a_layer_of_one_chunk_keeps_the_single_hash_and_chunks_bind_their_order() {
        // one chunk: exactly the one hash of every parameter that models were committed
        // with before chunking (so their commitments did not change)
        let (acc, salt, digest) = (F::from(11), F::from(5), F::from(3));
        let (w, b): (Vec<i8>, Vec<i32>) = ((0..40).map(|i| i as i8 - 20).collect(), vec![7, -9]);
        let chunks = Chunks::new(2, 20, 0);
        assert_eq!(chunks.count(), 1);
        let unsigned: Vec<u64> = w.iter().map(|&x| (i64::from(x) + 128) as u64).collect();
        let mut items = vec![layer_tag(40, 2), digest, salt, acc];
        items.extend(pack_native(&unsigned, WEIGHT_BITS));
        items.extend(b.iter().map(|&x| int_to_field(x.into())));
        assert_eq!(model_update_native(acc, &LayerUpdate { digest, chunks }, salt, &w, &b), hash_native(&items));
        // several chunks: swapping two outputs' parameters changes the commitment
        let chunks = Chunks::new(4, 2000, 48);
        assert_eq!((chunks.channels, chunks.count()), (2, 2));
        let update = LayerUpdate { digest, chunks };
        let w: Vec<i8> = (0..chunks.num_weights()).map(|i| (i % 251) as i8).collect();
        let b = vec![1, 2, 3, 4];
        let honest = model_update_native(acc, &update, salt, &w, &b);
        let mut swapped = w.clone();
        swapped.swap(0, 6000); // output 0's first own weight with output 3's
        assert_ne!(model_update_native(acc, &update, salt, &swapped, &b), honest);
        let mut moved = w.clone();
        moved.swap(8000, 8048 + 20); // projection weights of outputs 0 and 1 (both chunk 0)
        assert_ne!(model_update_native(acc, &update, salt, &moved, &b), honest);
    }

    #[test]
    fn colliding_packing_needs_an_out_of_range_limb() {
        // [1, 0] and [1 + 128, -1 (as 127 borrowed)] … simplest collision: limbs (129, 0)
        // vs (1, 1) pack to the same element; 129 is not a 7-bit value, so its "bits" must
        // include a non-boolean, and the range check rejects the witness.
        let honest = vec![uint_native(1, 7).unwrap(), uint_native(1, 7).unwrap()];
        let mut forged = vec![uint_native(1, 7).unwrap(), uint_native(0, 7).unwrap()];
        forged[0][0] += F::from(128); // limb 0 = 129
        let (sat_h, c_h) = commit_in_circuit(&honest, flat(2), F::ZERO);
        let (sat_f, c_f) = commit_in_circuit(&forged, flat(2), F::ZERO);
        assert!(sat_h);
        assert_eq!(c_h, c_f, "the packed values collide");
        assert!(!sat_f, "but the forged limb is not range-checked");
    }
}
