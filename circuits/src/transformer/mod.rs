//! A pre-norm transformer block (GPT-2's layout) as one circuit, composed of the gadgets
//! of [`crate::gadgets`], beside its bit-exact native twin.
//!
//! For `T` tokens of width `d` (a `T×d` signed int8 residual stream `x`), `h` heads of
//! width `d/h` and an MLP of width `H`:
//!
//! ```text
//! a  = LayerNorm₁(x)                      per token           (layernorm)
//! q, k, v = a·W_q + b_q, a·W_k + b_k, a·W_v + b_v             (matmul, packed)
//! s_ij = q_i,h · k_j,h        for j ≤ i (causal), per head    (matmul over views)
//! p_i  = softmax(s_i)         base 2, p ∈ [0, 2^7]             (softmax)
//! o_i,h = Σ_j p_ij · v_j,h    requantized                     (dot + requant)
//! r  = x ⊕ (o·W_o + b_o)      residual at two scales          (matmul, add)
//! out = r ⊕ (GELU(LayerNorm₂(r)·W_1 + b_1)·W_2 + b_2)         (layernorm, matmul, gelu, add)
//! ```
//!
//! Every scale is a public constant of the [`BlockSpec`] (the importer's calibration): the
//! shifts of each requantization, the residual multipliers, the softmax's input fraction
//! bits (with `log2 e/√(d/h)` folded into the scores' shift by the importer) and GELU's.
//! The heads, `Kᵀ` and the causal mask are wiring: views of the same linear combinations,
//! no constraint. The weights and the activations enter as linear combinations that the
//! caller has range-checked (a step circuit binds the weights to the model commitment and
//! the stream to the state); every intermediate is constrained here, by its gadget.
//!
//! It must never accept a witness whose output differs from [`block_native`]: each gadget
//! pins its output to its native twin, and the twins compose in the same order here and
//! in [`native`].

mod circuit;
mod embed;
mod head;
mod native;
mod spec;
mod step;
pub mod synthetic;

pub use circuit::{block, block_constraints, BlockHint};
pub use embed::{
    embed_native, embed_update_native, tokens_commitment_native, EmbedSpec, EmbedStep, EmbedWeights, EmbedWitness,
    EMBED_ENCODING, TAG_EMBED_TENSOR, TAG_TOKENS, TOKEN_BITS,
};
pub use head::{
    head_native, head_update_native, logits_commitment_native, HeadSpec, HeadStep, HeadWeights, HeadWitness,
    HEAD_ENCODING, TAG_HEAD_TENSOR, TAG_LOGITS,
};
pub use native::{block_native, BlockTrace};
pub use spec::{BlockError, BlockShape, BlockSpec, BlockWeights, PROB_BITS, STREAM_BITS};
pub use step::{
    block_update_native, stream_commitment, stream_commitment_native, BlockWitness, TransformerStep, BLOCK_ENCODING,
    TAG_BLOCK_TENSOR, TAG_SIGNED_STREAM, TENSORS,
};

#[cfg(test)]
mod tests;
