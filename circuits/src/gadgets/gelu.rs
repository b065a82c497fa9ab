//! GELU on int8 activations (the feed-forward block of a transformer), as the integer
//! polynomial i-GELU of I-BERT (Kim et al. 2021, "I-BERT: Integer-only BERT Quantization").
//!
//! **Definition.** The input `x` is an int8 of real value `x·2^-f` (`f` = `frac_bits`,
//! `2..=6`); the output `y` is an int8 of real value `y·2^-g` (`g` = `out_frac_bits`,
//! `0..=7`, by default `g = f`). I-BERT approximates `erf(t) ≈ L(t) = sgn(t)·[a·(min(|t|, -b)
//! + b)² + 1]` with `a = -0.2888`, `b = -1.769`, and `GELU(x) ≈ x/2·(1 + L(x/√2))`. With
//! `u = |x|` and `t = x·2^-f/√2`, the clip `|t| ≤ -b` is `u ≤ 1.769·√2·2^f`, and with
//! `d = max(c - u, 0)` for that threshold `c`, `(min(|t|, -b) + b)² = d²·2^-2f/2`. Since
//! `x·(1 + sgn x) = x + u` (twice ReLU), both signs read as one expression:
//!
//! `x/2·(1 + L) = 2^-f · [(x + u)/2 - |a|/4 · 2^-2f · u·d²]` (real units),
//!
//! ReLU minus an even correction. [`gelu_acc_native`] and [`gelu_native`] are the
//! definition the circuit matches bit-exactly; the integers, with `P = 8` ([`K_BITS`]):
//! - `c = round(1.769·√2·2^f) = ⌊(isqrt(2·1769²·4^f) + 500) / 1000⌋`: 10, 20, 40, 80, 160
//!   for `f = 2..=6` (the real thresholds 10.007, 20.014, 40.028, 80.056, 160.11);
//! - `K = round(|a|·2^(P-1)) = ⌊(2888·2^(P-1) + 5000) / 10000⌋ = 37` (`K/2^(P-1) = 0.28906`,
//!   0.09% above `|a|`; the polynomial's own error, up to 0.018, dominates);
//! - the shift `s = 3f - g + 1 + P`, the weight `A = 2^(2f + P)` of `x + u` (so `A/2^s =
//!   2^(g-f)/2` and `K/2^s = 2^(g-f)·|a|/4·2^-2f`, up to the rounding of `K`), and `R =
//!   2^(s-1)`, which makes the floor a rounding to nearest (halves up);
//! - `acc = A·(x + u) - K·u·d² + R`, `y = clamp(⌊acc / 2^s⌋, -128, 127)`.
//!
//! **Accumulator width** `B = 2f + P + 9 + max(0, f - g)`. For every int8 `x`:
//! `acc ≤ 254·A + R` and `R = A·2^(f-g)`, so `acc < 256·A·2^max(0, f-g) = 2^(B-1)`; and
//! `acc ≥ -K·u·d² ≥ -37·(4/27)·c³ > -2^7·2^(3f) ≥ -2^(2f+13) > -2^(B-1)` (`u·(c - u)²` peaks
//! at `u = c/3`; `c ≤ 2.51·2^f` in the list above; `f ≤ 6`). Also `s + 8 ≤ B ≤ 35`, as [`RequantSpec::new`]
//! requires, and every intermediate is far inside `i64`. `accumulators_fit` checks all
//! inputs of all specs.
//!
//! **Accuracy** (`g = f`, all 256 inputs; `error_against_exact_gelu` measures it against
//! `x·Φ(x)` with an erf accurate to 1e-15), max `|y·2^-g - GELU(x·2^-f)|`:
//!
//! | f | real    | output steps |
//! |---|---------|--------------|
//! | 2 | 0.1179  | 0.472        |
//! | 3 | 0.0570  | 0.456        |
//! | 4 | 0.0404  | 0.646        |
//! | 5 | 0.0314  | 1.005        |
//! | 6 | 0.0170  | 1.087        |
//!
//! the output rounding (half a step) plus the polynomial's error. Against i-GELU in real
//! arithmetic (saturated to int8) the integers differ by at most 0.52 of an output step at
//! `g = f` and 0.53 at any `g` (`close_to_the_float_polynomial`): the excess over half a
//! step comes from rounding `c` and `K`.
//!
//! **Circuit** (per element; `x` is any linear combination):
//! 1. `x + 128 = l + 128·σ`: the 7 low bits `l` allocated boolean (7 constraints) and the
//!    top bit implied, `(x + 128 - l)·(x + 128 - l - 128) = 0` (1): `x ∈ [-128, 127]`,
//!    `σ = [x ≥ 0]`.
//! 2. `(x + 128 - l - 64)·x = 64·u`, that is `(2σ - 1)·x = u` (1).
//! 3. The clip, where `c ≤ 128` (otherwise no `u` reaches it and `d = c - u` costs
//!    nothing): a flag `β` (boolean, 1), `(1 - β)·(c - u) = d` (1), and the slack
//!    `r = 2d - c - 1 + u + β` in `[0, 2^7)` (6 low bits and the implied top bit, 7):
//!    `r = c - 1 - u` when `β = 0`, `r = u - c` when `β = 1`.
//! 4. `d·d = q` (1).
//! 5. [`requantize_signed`] at `(s, B)` (`B + 4`), whose accumulator is bound by
//! 6. `u·(K·q) = A·(x + u) + R - acc` (1).
//!
//! [`gelu_constraints`]: `B + 15`, plus 9 where `c ≤ 128` (every `f < 6`): 45, 47, 49, 51,
//! 44 for `f = g = 2..=6`. The terms of `x` appear in three constraints (six times): a
//! caller whose `x` is a long combination should allocate it as one variable first.
//!
//! **Soundness.** (1) makes `x + 128` an integer of `[0, 256)`: `x` is an int8 and `σ` its
//! sign, whatever field element the caller passed. (2) gives `u = x` for `σ = 1` and
//! `u = -x` for `σ = 0`: `u = |x| ∈ [0, 128]`. (3): if `β = 0`, `d = c - u` and
//! `r = c - 1 - u ∈ [0, 2^7)` forces `u < c` (a negative `r` is `p - |r|` in the field, far
//! above `2^7`); if `β = 1`, `d = 0` and `r = u - c ≥ 0` forces `u ≥ c`; either way
//! `d = max(c - u, 0)`, and `β = [u ≥ c]`. The honest slack fits 7 bits because
//! `max(c - 1, 128 - c) ≤ 127` for `1 ≤ c ≤ 128`. (4) `q = d²`. (5) proves `acc` an integer
//! of `[-2^(B-1), 2^(B-1))`, and (6) says `acc ≡ A·(x + u) - K·u·q + R (mod p)`, an integer
//! of the same range (the width bound): both are below `2^34` in magnitude, far from `p/2`,
//! so they are equal and the requantization outputs `gelu_native(x)`. Every witness value
//! is a function of `x`, except the requantization's `inv` where its `ok = 1` (no output
//! clamps; that gadget leaves it free there, and it reaches no output).

use super::bits::{alloc_bits, range_check_lc};
use super::requant::{requant_signed_constraints, requantize_signed, RequantHint};
use crate::quant::{bits_le, int_to_field, QuantError, RequantSpec};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use serde::{Deserialize, Serialize};

/// Bits of precision `P` of the polynomial's coefficient: `K = round(|a|·2^(P-1))`.
pub const K_BITS: u32 = 8;
/// Bits of the clip's slack `r` (module docs, step 3).
const SLACK_BITS: usize = 7;
/// Low bits of `x + 128` allocated (the eighth, the sign, is implied).
const LOW_BITS: u32 = 7;

/// The scales of one GELU: input `x·2^-f`, output `y·2^-g`. Built only by the validating
/// [`GeluSpec::new`]; every constant of the module docs derives from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawGelu", into = "RawGelu")]
pub struct GeluSpec {
    frac_bits: u32,
    out_frac_bits: u32,
    requant: RequantSpec,
}

/// The encoding of a [`GeluSpec`] (its two scales), validated when decoded.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGelu {
    frac_bits: u32,
    out_frac_bits: u32,
}

impl TryFrom<RawGelu> for GeluSpec {
    type Error = QuantError;
    fn try_from(r: RawGelu) -> Result<Self, QuantError> {
        Self::new(r.frac_bits, r.out_frac_bits)
    }
}

impl From<GeluSpec> for RawGelu {
    fn from(s: GeluSpec) -> Self {
        Self { frac_bits: s.frac_bits, out_frac_bits: s.out_frac_bits }
    }
}

impl GeluSpec {
    /// Validated constructor: `frac_bits ∈ 2..=6`, `out_frac_bits ∈ 0..=7` (at `2^-7` the
    /// int8 output already saturates below 1). Within these every accumulator fits the
    /// requantization width, at most 35 bits (module docs), so nothing nears `i64`'s.
    pub fn new(frac_bits: u32, out_frac_bits: u32) -> Result<Self, QuantError> {
        if !(2..=6).contains(&frac_bits) || out_frac_bits > 7 {
            return Err(QuantError::BadSpec(format!(
                "GELU scales: frac_bits {frac_bits} (need 2..=6), out_frac_bits {out_frac_bits} (need 0..=7)"
            )));
        }
        let (f, g) = (frac_bits, out_frac_bits);
        let shift = 3 * f - g + 1 + K_BITS;
        let acc_bits = 2 * f + K_BITS + 9 + f.saturating_sub(g);
        Ok(Self { frac_bits, out_frac_bits, requant: RequantSpec::new(shift, acc_bits)? })
    }

    /// The default: the output at the input's scale.
    pub fn same_scale(frac_bits: u32) -> Result<Self, QuantError> {
        Self::new(frac_bits, frac_bits)
    }

    /// `f`: the input is `x·2^-f`.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// `g`: the output is `y·2^-g`.
    pub fn out_frac_bits(&self) -> u32 {
        self.out_frac_bits
    }

    /// The clip threshold `c = round(1.769·√2·2^f)` on `|x|`.
    pub fn clip(&self) -> i64 {
        let scaled = (2 * 1769u64.pow(2)) << (2 * self.frac_bits);
        ((scaled.isqrt() + 500) / 1000) as i64
    }

    /// Whether any int8 reaches the clip (`c ≤ 128`), which then costs constraints.
    pub fn clips(&self) -> bool {
        self.clip() <= 128
    }

    /// The coefficient `K = round(0.2888·2^(P-1))` of `u·d²`.
    pub fn k(&self) -> i64 {
        (2888 * (1i64 << (K_BITS - 1)) + 5000) / 10000
    }

    /// The weight `A = 2^(2f + P)` of `x + |x|`.
    pub fn relu_weight(&self) -> i64 {
        1 << (2 * self.frac_bits + K_BITS)
    }

    /// The final requantization: shift `s` and accumulator width `B`.
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }

    /// The rounding offset `R = 2^(s-1)`.
    fn rounding(&self) -> i64 {
        1 << (self.requant.shift() - 1)
    }
}

/// The accumulator twin: `A·(x + |x|) - K·|x|·d² + R` with `d = max(c - |x|, 0)`.
pub fn gelu_acc_native(x: i8, spec: GeluSpec) -> i64 {
    let x = i64::from(x);
    let (u, d) = (x.abs(), (spec.clip() - x.abs()).max(0));
    spec.relu_weight() * (x + u) - spec.k() * u * d * d + spec.rounding()
}

/// The native twin and definition: `clamp(⌊acc / 2^s⌋, -128, 127)`, which equals
/// `requantize_signed_native` because every accumulator fits (module docs).
pub fn gelu_native(x: i8, spec: GeluSpec) -> i8 {
    (gelu_acc_native(x, spec) >> spec.requant.shift()).clamp(-128, 127) as i8
}

/// Witness of the clip (module docs, step 3).
#[derive(Clone, Debug, PartialEq)]
pub struct ClipHint {
    /// `β`: 1 iff `|x| ≥ c`.
    pub clipped: F,
    /// `d = max(c - |x|, 0)`.
    pub dist: F,
    /// The low 6 bits of the slack `r`, little-endian.
    pub slack_bits: Vec<F>,
}

/// Witness of one GELU.
#[derive(Clone, Debug, PartialEq)]
pub struct GeluHint {
    /// The low 7 bits of `x + 128`, little-endian (the top one, the sign, is implied).
    pub low_bits: Vec<F>,
    /// `|x|`.
    pub abs: F,
    /// The clip's witness; `None` iff the spec does not clip ([`GeluSpec::clips`]).
    pub clip: Option<ClipHint>,
    /// `d²`.
    pub square: F,
    /// The requantization of the accumulator.
    pub requant: RequantHint,
}

impl GeluHint {
    /// Honest witness for `x`; fails only where [`RequantHint::signed`] fails, which the
    /// accumulator bound rules out.
    pub fn new(x: i8, spec: GeluSpec) -> Result<Self, QuantError> {
        let x64 = i64::from(x);
        let (u, c) = (x64.unsigned_abs(), spec.clip() as u64);
        let d = c.saturating_sub(u);
        let clip = spec.clips().then(|| {
            let slack = if u >= c { u - c } else { c - 1 - u };
            let mut slack_bits = bits_le(slack, SLACK_BITS as u32);
            slack_bits.pop();
            ClipHint { clipped: F::from(u64::from(u >= c)), dist: F::from(d), slack_bits }
        });
        Ok(Self {
            low_bits: bits_le((x64 + 128) as u64, LOW_BITS),
            abs: F::from(u),
            clip,
            square: F::from(d * d),
            requant: RequantHint::signed(gelu_acc_native(x, spec), spec.requant)?,
        })
    }
}

/// `d = max(c - u, 0)` as a linear combination (module docs, step 3).
fn distance<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: GeluSpec,
    u: &AllocatedNum<F>,
    clip: Option<&ClipHint>,
) -> Result<LinearCombination<F>, SynthesisError> {
    let c = F::from(spec.clip() as u64);
    let gap = LinearCombination::zero() + (c, CS::one()) - u.get_variable();
    let Some(hint) = clip else { return Ok(gap) };
    let beta = alloc_bits(&mut cs.namespace(|| "clipped"), &[hint.clipped])?.remove(0);
    let d = AllocatedNum::alloc(cs.namespace(|| "d"), || Ok(hint.dist))?;
    cs.enforce(|| "(1-β)(c-u) = d", |lc| lc + CS::one() - beta.get_variable(), |_| gap, |lc| lc + d.get_variable());
    let slack = LinearCombination::zero() + (F::from(2), d.get_variable()) + u.get_variable() + beta.get_variable()
        - (c + F::ONE, CS::one());
    range_check_lc(&mut cs.namespace(|| "slack"), &slack, &hint.slack_bits)?;
    Ok(LinearCombination::zero() + d.get_variable())
}

/// Synthesizes `y = gelu_native(x)` (module docs), for `x` any field element: one outside
/// int8 leaves the system unsatisfied. Returns `y`, negatives as `p - |y|`.
pub fn gelu<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: GeluSpec,
    x: &LinearCombination<F>,
    hint: &GeluHint,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let clip_shape = hint.clip.as_ref().map(|c| c.slack_bits.len());
    if hint.low_bits.len() != LOW_BITS as usize || clip_shape != spec.clips().then_some(SLACK_BITS - 1) {
        return Err(SynthesisError::Unsatisfiable("GELU witness has the wrong shape".into()));
    }
    let biased = x.clone() + (F::from(128), CS::one());
    let (_, top) = range_check_lc(&mut cs.namespace(|| "x"), &biased, &hint.low_bits)?; // 128·σ
    let u = AllocatedNum::alloc(cs.namespace(|| "|x|"), || Ok(hint.abs))?;
    cs.enforce(
        || "(2σ-1)·x = |x|",
        |_| top - (F::from(64), CS::one()),
        |_| x.clone(),
        |lc| lc + (F::from(64), u.get_variable()),
    );
    let d = distance(&mut cs.namespace(|| "clip"), spec, &u, hint.clip.as_ref())?;
    let q = AllocatedNum::alloc(cs.namespace(|| "d²"), || Ok(hint.square))?;
    cs.enforce(|| "d·d = d²", |_| d.clone(), |_| d.clone(), |lc| lc + q.get_variable());
    let (acc, y) = requantize_signed(&mut cs.namespace(|| "requant"), spec.requant, &hint.requant)?;
    let a = int_to_field(spec.relu_weight());
    cs.enforce(
        || "|x|·K·d² = A(x+|x|) + R - acc",
        |lc| lc + u.get_variable(),
        |lc| lc + (int_to_field(spec.k()), q.get_variable()),
        |_| {
            LinearCombination::zero() + (a, x) + (a, u.get_variable()) + (int_to_field(spec.rounding()), CS::one())
                - &acc
        },
    );
    Ok(y)
}

/// Constraints per element of [`gelu`]: `B + 15`, plus 9 where the spec clips.
pub fn gelu_constraints(spec: GeluSpec) -> usize {
    let clip = if spec.clips() { 2 + SLACK_BITS } else { 0 };
    LOW_BITS as usize + 1 + 1 + clip + 1 + 1 + requant_signed_constraints(spec.requant)
}

#[cfg(test)]
mod tests;
