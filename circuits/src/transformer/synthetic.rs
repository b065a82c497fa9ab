//! A synthetic block for tests and benchmarks: fixed scales and seeded random weights
//! and inputs of a given shape (not a trained model; the GPT example imports one).

use super::embed::{EmbedSpec, EmbedWeights};
use super::head::{HeadSpec, HeadWeights};
use super::spec::{At, BlockError, BlockShape, BlockSpec, BlockWeights, STREAM_BITS};
use crate::gadgets::elementwise::AddSpec;
use crate::gadgets::gelu::GeluSpec;
use crate::gadgets::layernorm::{acc_bits_for, eps_int, LayerNormSpec};
use crate::quant::{QuantError, RequantSpec};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Activations carry 4 fraction bits, weights 7 (LayerNorm's `γ` 6): every projection
/// shifts by 7, the scores by 4 (the softmax reads them at 4 fraction bits).
const FRAC: u32 = 4;

/// LayerNorm of a row of `d` at `eps = 1e-5`, `M = 24` (the stream's rows spread over
/// thousands of steps: `ρ ≈ 2^M/(d·σ)` keeps about ten bits), `β` up to `2^12`.
fn layernorm_spec(d: usize) -> Result<LayerNormSpec, QuantError> {
    let (e, m) = (eps_int(1e-5, d, FRAC)?, 24);
    let bits = acc_bits_for(d, e, m, 1 << 12)?;
    LayerNormSpec::new(d, e, m, RequantSpec::new(m + 6 - FRAC, bits.max(m + 10))?)?.with_input_bits(STREAM_BITS)
}

/// The block of `shape` at this module's scales (checked by [`BlockSpec::check`]).
pub fn spec(shape: BlockShape) -> Result<BlockSpec, BlockError> {
    let rq = |shift, bits| RequantSpec::new(shift, bits).at("synthetic scales");
    let residual = AddSpec::wide(1, 1, 0, rq(0, STREAM_BITS + 2)?, STREAM_BITS, STREAM_BITS).at("residual")?;
    let spec = BlockSpec {
        shape,
        ln1: layernorm_spec(shape.width).at("layernorm")?,
        qkv: rq(7, 34)?,
        scores: rq(4, 24)?,
        softmax_frac: FRAC,
        softmax_table: 12,
        mix: rq(7, 24)?,
        proj: rq(7, 34)?,
        residual1: residual,
        ln2: layernorm_spec(shape.width).at("layernorm")?,
        fc1: rq(7, 34)?,
        gelu: GeluSpec::same_scale(FRAC).at("gelu")?,
        fc2: rq(7, 34)?,
        residual2: residual,
    };
    spec.check()?;
    Ok(spec)
}

/// The tests' small block: 4 tokens, width 8, 2 heads, MLP 16.
pub fn shape() -> BlockShape {
    BlockShape { tokens: 4, width: 8, heads: 2, hidden: 16 }
}

/// Uniform integers in `[-r, r]`.
fn ints(rng: &mut ChaCha20Rng, n: usize, r: i64) -> Vec<i64> {
    (0..n).map(|_| (rng.next_u64() % (2 * r as u64 + 1)) as i64 - r).collect()
}

fn int8s(rng: &mut ChaCha20Rng, n: usize, r: i64) -> Vec<i8> {
    ints(rng, n, r).into_iter().map(|v| v as i8).collect()
}

/// Seeded weights of `shape`: int8 matrices in `[-48, 48]`, `γ` in `[40, 88]`, biases
/// and `β` small.
pub fn weights(shape: BlockShape, seed: u64) -> BlockWeights<i8, i64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (d, h) = (shape.width, shape.hidden);
    let gamma = |rng: &mut ChaCha20Rng| int8s(rng, d, 24).into_iter().map(|g| g + 64).collect::<Vec<_>>();
    let dense = |rng: &mut ChaCha20Rng, k, m| (int8s(rng, k * m, 48), ints(rng, m, 2000));
    BlockWeights {
        ln1: (gamma(&mut rng), ints(&mut rng, d, 1 << 12)),
        q: dense(&mut rng, d, d),
        k: dense(&mut rng, d, d),
        v: dense(&mut rng, d, d),
        o: dense(&mut rng, d, d),
        ln2: (gamma(&mut rng), ints(&mut rng, d, 1 << 12)),
        fc1: dense(&mut rng, d, h),
        fc2: dense(&mut rng, h, d),
    }
}

/// A seeded input stream of `shape`, in `[-3000, 3000]` (beyond int8: the stream is
/// [`STREAM_BITS`] wide).
pub fn input(shape: BlockShape, seed: u64) -> Vec<i16> {
    let n = shape.tokens * shape.width;
    ints(&mut ChaCha20Rng::seed_from_u64(seed), n, 3000).into_iter().map(|v| v as i16).collect()
}

/// The embedding of `shape` over `vocab` tokens: both int8 rows times 16 into the stream.
pub fn embed_spec(shape: BlockShape, vocab: usize) -> Result<EmbedSpec, BlockError> {
    let rq = RequantSpec::new(0, STREAM_BITS + 2).at("synthetic scales")?;
    let add = AddSpec::wide(16, 16, 0, rq, 8, STREAM_BITS).at("embedding")?;
    let spec = EmbedSpec { vocab, tokens: shape.tokens, width: shape.width, add };
    spec.check()?;
    Ok(spec)
}

/// Seeded tables of `shape` over `vocab` tokens, in `[-100, 100]`.
pub fn embed_weights(shape: BlockShape, vocab: usize, seed: u64) -> EmbedWeights {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let d = shape.width;
    EmbedWeights { tok: int8s(&mut rng, vocab * d, 100), pos: int8s(&mut rng, shape.tokens * d, 100) }
}

/// The head of `shape` over `vocab` logits, at the blocks' LayerNorm scales.
pub fn head_spec(shape: BlockShape, vocab: usize) -> Result<HeadSpec, BlockError> {
    let ln = layernorm_spec(shape.width).at("layernorm")?;
    let spec = HeadSpec { tokens: shape.tokens, width: shape.width, vocab, ln };
    spec.check()?;
    Ok(spec)
}

/// Seeded head parameters of `shape` over `vocab` logits (as a block's LayerNorm and
/// projections).
pub fn head_weights(shape: BlockShape, vocab: usize, seed: u64) -> HeadWeights {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let d = shape.width;
    let gamma = int8s(&mut rng, d, 24).into_iter().map(|g| g + 64).collect();
    let ln = (gamma, ints(&mut rng, d, 1 << 12));
    HeadWeights { ln, out: (int8s(&mut rng, d * vocab, 48), ints(&mut rng, vocab, 2000)) }
}
