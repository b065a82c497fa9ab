//! The public shape of a transformer block: dimensions, scales and the weights' layout.

use crate::gadgets::elementwise::{AddSpec, ElementwiseError};
use crate::gadgets::gelu::GeluSpec;
use crate::gadgets::layernorm::LayerNormSpec;
use crate::gadgets::matmul::{MatMulError, MatMulSpec};
use crate::gadgets::softmax::SoftmaxSpec;
use crate::quant::{QuantError, RequantSpec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Output bits of the attention probabilities: `p ∈ [0, 2^7]`, so `p·v` of an int8 `v`
/// stays within the products the accumulator bounds assume (`|p|, |v| ≤ 128`).
pub const PROB_BITS: u32 = 7;

/// Width of the biases of the block's projections (int32, as ONNX exports them).
pub const BIAS_BITS: u32 = 32;

/// Signed bits of the residual stream: the block's input and output, and the stream after
/// attention. A stream of int8 loses about two points of next-token agreement on the GPT
/// example against a float stream (the README's GPT section); every other tensor is int8.
pub const STREAM_BITS: u32 = 16;

/// Errors of a block's spec or of its native evaluation, with the operator they come from.
#[derive(Debug, Error)]
pub enum BlockError {
    /// A dimension the block cannot hold.
    #[error("transformer block: {0}")]
    Shape(String),
    /// A requantization, LayerNorm, softmax or GELU error.
    #[error("transformer block, {op}: {source}")]
    Quant {
        /// The operator.
        op: &'static str,
        /// The error.
        source: QuantError,
    },
    /// A matrix product's error.
    #[error("transformer block, {op}: {source}")]
    MatMul {
        /// The operator.
        op: &'static str,
        /// The error.
        source: MatMulError,
    },
    /// A residual addition's error.
    #[error("transformer block, {op}: {source}")]
    Elementwise {
        /// The operator.
        op: &'static str,
        /// The error.
        source: ElementwiseError,
    },
}

/// Attaches the operator's name to a gadget's error.
pub(crate) trait At<T> {
    fn at(self, op: &'static str) -> Result<T, BlockError>;
}

impl<T> At<T> for Result<T, QuantError> {
    fn at(self, op: &'static str) -> Result<T, BlockError> {
        self.map_err(|source| BlockError::Quant { op, source })
    }
}

impl<T> At<T> for Result<T, MatMulError> {
    fn at(self, op: &'static str) -> Result<T, BlockError> {
        self.map_err(|source| BlockError::MatMul { op, source })
    }
}

impl<T> At<T> for Result<T, ElementwiseError> {
    fn at(self, op: &'static str) -> Result<T, BlockError> {
        self.map_err(|source| BlockError::Elementwise { op, source })
    }
}

/// Dimensions of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockShape {
    /// Tokens `T` (the context).
    pub tokens: usize,
    /// Model width `d`.
    pub width: usize,
    /// Heads `h` (dividing `d`).
    pub heads: usize,
    /// MLP width `H`.
    pub hidden: usize,
}

impl BlockShape {
    /// Width of one head, `d/h`.
    pub fn head_width(&self) -> usize {
        self.width / self.heads
    }
}

/// The public shape and scales of a block (module docs of [`super`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    /// Dimensions.
    pub shape: BlockShape,
    /// The first LayerNorm (before attention).
    pub ln1: LayerNormSpec,
    /// Requantization of the Q, K and V projections.
    pub qkv: RequantSpec,
    /// Requantization of the scores `q·k` to the softmax's input (log2 units).
    pub scores: RequantSpec,
    /// Fraction bits of the softmax's input.
    pub softmax_frac: u32,
    /// Precision of the softmax's exponential table.
    pub softmax_table: u32,
    /// Requantization of `Σ p·v`.
    pub mix: RequantSpec,
    /// Requantization of the output projection.
    pub proj: RequantSpec,
    /// First residual: the stream plus the attention.
    pub residual1: AddSpec,
    /// The second LayerNorm (before the MLP).
    pub ln2: LayerNormSpec,
    /// Requantization of the MLP's first product (GELU's input).
    pub fc1: RequantSpec,
    /// GELU.
    pub gelu: GeluSpec,
    /// Requantization of the MLP's second product.
    pub fc2: RequantSpec,
    /// Second residual: the stream plus the MLP.
    pub residual2: AddSpec,
}

/// The weights of a block: `W` of the matrices and LayerNorm scales, `B` of the biases
/// (int8 and int64 natively, linear combinations in a circuit). Matrices are stored
/// input-major: `w_q[t·d + j]` multiplies input `t` into output `j`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockWeights<W, B> {
    /// LayerNorm₁'s `γ` (`d`) and `β` (`d`, at its accumulator's scale).
    pub ln1: (Vec<W>, Vec<B>),
    /// `W_q` (`d×d`) and `b_q` (`d`).
    pub q: (Vec<W>, Vec<B>),
    /// `W_k` and `b_k`.
    pub k: (Vec<W>, Vec<B>),
    /// `W_v` and `b_v`.
    pub v: (Vec<W>, Vec<B>),
    /// `W_o` (`d×d`) and `b_o`.
    pub o: (Vec<W>, Vec<B>),
    /// LayerNorm₂'s `γ` and `β`.
    pub ln2: (Vec<W>, Vec<B>),
    /// `W_1` (`d×H`) and `b_1` (`H`).
    pub fc1: (Vec<W>, Vec<B>),
    /// `W_2` (`H×d`) and `b_2` (`d`).
    pub fc2: (Vec<W>, Vec<B>),
}

impl BlockWeights<i8, i64> {
    /// Weights of `shape`, all zero (a blank step's).
    pub fn zeros(shape: &BlockShape) -> Self {
        let (d, h) = (shape.width, shape.hidden);
        let t = |w: usize, b: usize| (vec![0; w], vec![0; b]);
        Self {
            ln1: t(d, d),
            q: t(d * d, d),
            k: t(d * d, d),
            v: t(d * d, d),
            o: t(d * d, d),
            ln2: t(d, d),
            fc1: t(d * h, h),
            fc2: t(h * d, d),
        }
    }
}

impl<W, B> BlockWeights<W, B> {
    /// Checks every tensor's length against `shape`.
    pub fn check(&self, shape: &BlockShape) -> Result<(), BlockError> {
        let (d, hid) = (shape.width, shape.hidden);
        let tensors = [
            ("ln1", &self.ln1, (d, d)),
            ("q", &self.q, (d * d, d)),
            ("k", &self.k, (d * d, d)),
            ("v", &self.v, (d * d, d)),
            ("o", &self.o, (d * d, d)),
            ("ln2", &self.ln2, (d, d)),
            ("fc1", &self.fc1, (d * hid, hid)),
            ("fc2", &self.fc2, (hid * d, d)),
        ];
        for (name, (w, b), (lw, lb)) in tensors {
            if w.len() != lw || b.len() != lb {
                return Err(BlockError::Shape(format!(
                    "{name}: {} weights and {} biases, expected {lw} and {lb}",
                    w.len(),
                    b.len()
                )));
            }
        }
        Ok(())
    }
}

impl BlockSpec {
    /// Checks the dimensions and that every operator's spec accepts them.
    pub fn check(&self) -> Result<(), BlockError> {
        let s = self.shape;
        if s.tokens == 0 || s.width == 0 || s.hidden == 0 || s.heads == 0 || !s.width.is_multiple_of(s.heads) {
            return Err(BlockError::Shape(format!("{s:?}: every dimension ≥ 1 and heads dividing the width")));
        }
        if self.ln1.d() != s.width || self.ln2.d() != s.width {
            return Err(BlockError::Shape("a LayerNorm's row is not the model width".into()));
        }
        if self.ln1.in_bits() != STREAM_BITS || self.ln2.in_bits() != STREAM_BITS {
            return Err(BlockError::Shape(format!("the LayerNorms must read the {STREAM_BITS}-bit stream")));
        }
        if self.residual1.widths() != (STREAM_BITS, STREAM_BITS)
            || self.residual2.widths() != (STREAM_BITS, STREAM_BITS)
        {
            return Err(BlockError::Shape(format!("the residuals must add to the {STREAM_BITS}-bit stream")));
        }
        self.projection(s.width, s.width, self.qkv)?;
        self.projection(s.width, s.width, self.proj)?;
        self.projection(s.width, s.hidden, self.fc1)?;
        self.projection(s.hidden, s.width, self.fc2)?;
        for i in 0..s.tokens {
            self.score_row(i)?;
            self.softmax_row(i)?;
        }
        mix_bound(s.tokens, self.mix)
    }

    /// The spec of a `T×k` by `k×m` projection with an int32 bias.
    pub(crate) fn projection(&self, k: usize, m: usize, requant: RequantSpec) -> Result<MatMulSpec, BlockError> {
        MatMulSpec::new(self.shape.tokens, k, m, requant).and_then(|s| s.with_bias(BIAS_BITS)).at("projection")
    }

    /// The scores of token `i` in one head: `1×(d/h)` by `(d/h)×(i+1)`.
    pub(crate) fn score_row(&self, i: usize) -> Result<MatMulSpec, BlockError> {
        MatMulSpec::new(1, self.shape.head_width(), i + 1, self.scores).at("scores")
    }

    /// The softmax of token `i`'s `i + 1` scores.
    pub(crate) fn softmax_row(&self, i: usize) -> Result<SoftmaxSpec, BlockError> {
        SoftmaxSpec::new(i + 1, self.softmax_frac, PROB_BITS, self.softmax_table).at("softmax")
    }
}

/// `Σ_{j ≤ i} p_ij·v_j` of `T` tokens fits the mix's accumulator (`|p|, |v| ≤ 128`).
fn mix_bound(tokens: usize, mix: RequantSpec) -> Result<(), BlockError> {
    let largest = tokens as i128 * 128 * 128;
    if largest >= 1i128 << (mix.acc_bits() - 1) {
        return Err(BlockError::Shape(format!("Σ p·v over {tokens} tokens overflows {} bits", mix.acc_bits())));
    }
    Ok(())
}
