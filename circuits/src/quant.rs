//! Quantization rules: the single source of truth for value ranges and integer maths.
//!
//! | value        | integer range                   | field encoding                  |
//! |--------------|---------------------------------|---------------------------------|
//! | activation   | `[0, 127]` (7 bits, after ReLU) | `x`                             |
//! | weight       | `[-128, 127]` (int8)            | `x`, negatives as `p - |x|`     |
//! | bias         | int32 (range-checked, 32 bits)  | `x`, negatives as `p - |x|`     |
//! | accumulator  | `[-2^(B-1), 2^(B-1))`, `B = acc_bits` of the layer | same       |
//!
//! A layer computes `acc = bias + Σ w·a` over its taps, then
//! `y = clamp(floor(acc / 2^shift), 0, 127)`: floor division (rounds towards −∞), ReLU,
//! and saturation at 127. Round-to-nearest is obtained by adding `2^(shift-1)` to the bias
//! when a model is quantized; the circuit itself always floors.
//!
//! **No field wrap-around.** In the circuit the accumulator is the field sum
//! `bias + Σ p_j` of its products, and the same value is decomposed into `B` bits with
//! `acc + 2^(B-1) = Σ b_i 2^i`. The bits prove `acc + 2^(B-1) ∈ [0, 2^B)` as an integer.
//! The true integer sum `S = bias + Σ w·a` satisfies `|S| < 2^31 + fan_in · 128 · 127`,
//! which is below `2^62` for every fan-in under `2^47`; `B ≤ 62` by [`RequantSpec::new`].
//! Both `S` and the decomposed value are therefore far below `p/2 ≈ 2^253` in magnitude,
//! and `S ≡ acc (mod p)` forces `S = acc` as integers: the circuit's accumulator is the
//! integer accumulator, and an accumulator outside the declared range is unsatisfiable,
//! never wrapped. The native reference rejects the same accumulators with
//! [`QuantError::AccumulatorOutOfRange`].

use crate::F;
use ff::Field;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bits of an activation.
pub const ACT_BITS: u32 = 7;
/// Largest activation value (ReLU output saturates here).
pub const ACT_MAX: u8 = 127;
/// Bits of a weight.
pub const WEIGHT_BITS: u32 = 8;
/// Offset that maps an int8 weight to `[0, 256)` for its range check and packing.
pub const WEIGHT_OFFSET: i64 = 128;
/// Bits of a bias (int32), range-checked in the circuit like the weights.
pub const BIAS_BITS: u32 = 32;
/// Offset that maps an int32 bias to `[0, 2^32)` for its range check.
pub const BIAS_OFFSET: i64 = 1 << 31;
/// Largest accumulator width; keeps native arithmetic in `i64` and far from the field size.
pub const MAX_ACC_BITS: u32 = 62;

/// Errors of the quantized integer maths.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QuantError {
    /// An accumulator does not fit the layer's declared width.
    #[error("accumulator {acc} does not fit in {bits} signed bits")]
    AccumulatorOutOfRange {
        /// The accumulator value.
        acc: i64,
        /// The declared width.
        bits: u32,
    },
    /// Requantization parameters that the gadget cannot represent.
    #[error("invalid requantization parameters: shift {shift}, acc_bits {acc_bits} (need shift + 8 <= acc_bits <= {MAX_ACC_BITS})")]
    BadRequant {
        /// Right shift.
        shift: u32,
        /// Accumulator width.
        acc_bits: u32,
    },
    /// An activation above [`ACT_MAX`].
    #[error("activation {value} at index {index} is outside [0, {ACT_MAX}]")]
    ActivationOutOfRange {
        /// Position in the tensor.
        index: usize,
        /// The value.
        value: u8,
    },
    /// A layer spec the circuits cannot build.
    #[error("invalid layer: {0}")]
    BadSpec(String),
    /// A tensor of the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    WrongLength {
        /// Which tensor.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
}

/// Per-layer requantization: right shift and accumulator width. Decoded (from a statement
/// or a model file) only through the validating [`RequantSpec::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawRequant", into = "RawRequant")]
pub struct RequantSpec {
    shift: u32,
    acc_bits: u32,
}

/// The encoding of a [`RequantSpec`], not yet validated.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequant {
    shift: u32,
    acc_bits: u32,
}

impl TryFrom<RawRequant> for RequantSpec {
    type Error = QuantError;
    fn try_from(raw: RawRequant) -> Result<Self, QuantError> {
        Self::new(raw.shift, raw.acc_bits)
    }
}

impl From<RequantSpec> for RawRequant {
    fn from(r: RequantSpec) -> Self {
        Self { shift: r.shift, acc_bits: r.acc_bits }
    }
}

impl RequantSpec {
    /// Validated constructor: `shift + 8 <= acc_bits <= 62`, so the 7 output bits and the
    /// sign bit are distinct bits of the decomposition.
    pub fn new(shift: u32, acc_bits: u32) -> Result<Self, QuantError> {
        if shift + ACT_BITS + 1 > acc_bits || acc_bits > MAX_ACC_BITS {
            return Err(QuantError::BadRequant { shift, acc_bits });
        }
        Ok(Self { shift, acc_bits })
    }

    /// The right shift.
    pub fn shift(&self) -> u32 {
        self.shift
    }

    /// The accumulator width in bits (sign included).
    pub fn acc_bits(&self) -> u32 {
        self.acc_bits
    }

    /// Checks that `acc` fits the declared width.
    pub fn check_acc(&self, acc: i64) -> Result<(), QuantError> {
        let half = 1i64 << (self.acc_bits - 1);
        if acc < -half || acc >= half {
            return Err(QuantError::AccumulatorOutOfRange { acc, bits: self.acc_bits });
        }
        Ok(())
    }
}

/// Native requantization: `clamp(floor(acc / 2^shift), 0, 127)`, after the range check.
pub fn requantize_native(acc: i64, p: RequantSpec) -> Result<u8, QuantError> {
    p.check_acc(acc)?;
    if acc < 0 {
        return Ok(0);
    }
    Ok((acc >> p.shift).min(i64::from(ACT_MAX)) as u8)
}

/// Native signed requantization: `clamp(floor(acc / 2^shift), -128, 127)`, after the range
/// check (the twin of [`crate::gadgets::requant::requantize_signed`]).
pub fn requantize_signed_native(acc: i64, p: RequantSpec) -> Result<i8, QuantError> {
    requantize_signed_bits_native(acc, p, 8).map(|y| y as i8)
}

/// Native signed requantization to `out` bits: `clamp(floor(acc / 2^shift), -2^(out-1),
/// 2^(out-1) - 1)`, after the range check (the twin of
/// [`crate::gadgets::requant::requantize_signed_bits`]; `out = 8` is
/// [`requantize_signed_native`]).
pub fn requantize_signed_bits_native(acc: i64, p: RequantSpec, out: u32) -> Result<i64, QuantError> {
    p.check_acc(acc)?;
    let half = 1i64 << (out - 1);
    Ok((acc >> p.shift).clamp(-half, half - 1))
}

/// Checks that every value is a signed integer of `bits` bits (`what` names them in the
/// error).
pub fn check_signed<T: Copy + Into<i64>>(what: &str, values: &[T], bits: u32) -> Result<(), QuantError> {
    let half = 1i64 << (bits - 1);
    match values.iter().map(|&v| v.into()).find(|v| !(-half..half).contains(v)) {
        Some(v) => Err(QuantError::BadSpec(format!("{what}: {v} is not a signed {bits}-bit value"))),
        None => Ok(()),
    }
}

/// Maps a signed integer to the field (`p - |x|` for negatives).
pub fn int_to_field(x: i64) -> F {
    let magnitude = F::from(x.unsigned_abs());
    if x < 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Checks every activation is in `[0, ACT_MAX]`.
pub fn check_activations(values: &[u8]) -> Result<(), QuantError> {
    match values.iter().position(|&v| v > ACT_MAX) {
        Some(index) => Err(QuantError::ActivationOutOfRange { index, value: values[index] }),
        None => Ok(()),
    }
}

/// The bits of `x` (little-endian) as field elements, `n` of them.
pub fn bits_le(x: u64, n: u32) -> Vec<F> {
    (0..n).map(|i| if (x >> i) & 1 == 1 { F::ONE } else { F::ZERO }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requant_specs_are_validated() {
        assert!(RequantSpec::new(6, 14).is_ok());
        assert!(RequantSpec::new(6, 13).is_err());
        assert!(RequantSpec::new(0, 63).is_err());
    }

    #[test]
    fn decoding_validates_requant_specs() {
        let good: RequantSpec = serde_json::from_str(r#"{"shift":4,"acc_bits":20}"#).unwrap();
        assert_eq!(good, RequantSpec::new(4, 20).unwrap());
        assert_eq!(serde_json::to_string(&good).unwrap(), r#"{"shift":4,"acc_bits":20}"#);
        // shift + 8 > acc_bits: the sign bit would overlap the output bits
        assert!(serde_json::from_str::<RequantSpec>(r#"{"shift":14,"acc_bits":20}"#).is_err());
        assert!(serde_json::from_str::<RequantSpec>(r#"{"shift":4,"acc_bits":63}"#).is_err());
        assert!(serde_json::from_str::<RequantSpec>(r#"{"shift":4,"acc_bits":20,"x":1}"#).is_err());
    }

    #[test]
    fn requantize_edges() {
        let p = RequantSpec::new(4, 16).unwrap();
        assert_eq!(requantize_native(-1, p), Ok(0));
        assert_eq!(requantize_native(15, p), Ok(0));
        assert_eq!(requantize_native(16, p), Ok(1));
        assert_eq!(requantize_native(127 * 16 + 15, p), Ok(127));
        assert_eq!(requantize_native(128 * 16, p), Ok(127));
        assert_eq!(requantize_native(32767, p), Ok(127));
        assert!(requantize_native(32768, p).is_err());
        assert!(requantize_native(-32769, p).is_err());
        assert_eq!(requantize_native(-32768, p), Ok(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]
        #[test]
        fn field_encoding_is_additive(a in -(1i64 << 40)..(1i64 << 40), b in -(1i64 << 40)..(1i64 << 40)) {
            prop_assert_eq!(int_to_field(a) + int_to_field(b), int_to_field(a + b));
        }
    }
}
