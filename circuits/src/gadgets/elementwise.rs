//! Elementwise operators of a transformer block on signed int8 tensors, and the mean of a
//! row. Every output is `y = clamp(floor(acc / 2^s), -128, 127)` of an integer accumulator:
//!
//! | operator                           | accumulator         | bound by                     |
//! |------------------------------------|---------------------|------------------------------|
//! | [`add`] (a residual at two scales) | `m_a·a + m_b·b + c` | `(m_a·a + m_b·b + c)·1 = acc` |
//! | [`mul`] (elementwise product)      | `a·b + c`           | the product: `a·b = acc - c`  |
//! | [`scale`] (product by a constant)  | `m·x + c`           | `(m·x + c)·1 = acc`           |
//! | [`reduce_mean`] of `n` values      | `m·Σx + c`          | `(m·Σx + c)·1 = acc`          |
//!
//! `m_a, m_b, m, c` are public constants of the spec; [`requantize_signed`] costs `B + 4`
//! constraints (`B = acc_bits`) and returns the accumulator as the recomposition of its
//! bits, so every operator costs `B + 5` constraints per output ([`output_constraints`]).
//! A linear accumulator needs its own constraint because it equates two linear
//! combinations, the inputs' and the bits'; saving it would mean writing one bit of the
//! decomposition as the accumulator minus the others, a variant of the requantization
//! gadget this module does not make. A product's accumulator rides on the product.
//!
//! **No wrap-around.** Each spec is validated so that every accumulator of int8 inputs
//! fits `B ≤ 62` signed bits; the field value of the accumulator's linear combination is
//! then the integer accumulator (both are far below `p/2`), and the requantization's
//! argument gives the output. The inputs must be range-checked int8 by the caller.
//!
//! **ReduceMean, exactly.** `floor((Σx + h) / n)` with `h = 0` ([`Rounding::Floor`]) or
//! `h = ⌊n/2⌋` ([`Rounding::HalfUp`], as [`super::pool`]'s average rounds), computed as a
//! multiplication by `m ≈ 2^s / n` and a shift: with `X = Σx + 128n + h ∈ [0, 2^N)`,
//! `L = ⌈log2 n⌉`, `s = N + L` and `m = ⌈2^s / n⌉ = (2^s + e) / n`, `0 ≤ e < n`,
//! `m·X / 2^s = X/n + e·X/(n·2^s)` where the last term is below `2^-L ≤ 1/n`; since
//! `X/n = q + r/n` with `r ≤ n - 1`, `floor(m·X / 2^s) = q` exactly (division by an
//! invariant integer, Granlund–Montgomery). The gadget requantizes
//! `acc = m·Σx + (m·(128n + h) - 128·2^s) = m·X - 128·2^s`, whose floor is `q - 128`, the
//! mean; `acc ∈ [-2^(s+7), 2^(s+7))`, so `B = s + 8` and the clamp never binds. The output
//! therefore differs from the exact mean `μ = Σx/n` only by its rounding: `μ - 1 < y ≤ μ`
//! (floor) or `|y - μ| ≤ 1/2` (half up); `mean_error_against_float` measures it.
//! `B + 5 = N + L + 13` constraints per row, the sum of the row itself free (41 for
//! `n = 768`).

use super::requant::{requant_signed_constraints, requantize_signed_bits, RequantHint};
use crate::quant::{
    check_signed, int_to_field, requantize_signed_bits_native, requantize_signed_native, QuantError, RequantSpec,
};
use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors of an elementwise operator's spec or operands.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ElementwiseError {
    /// Accumulators that the requantization's width cannot hold.
    #[error("{op}: accumulators of int8 inputs lie in [{min}, {max}], beyond {acc_bits} signed bits")]
    AccumulatorTooWide {
        /// The operator.
        op: &'static str,
        /// The least accumulator.
        min: i128,
        /// The largest accumulator.
        max: i128,
        /// The declared width.
        acc_bits: u32,
    },
    /// A mean over no values, or over more than the exact multiplier allows.
    #[error("a mean over {n} values: need 1 to {MAX_MEAN_LEN}")]
    BadMeanLength {
        /// The row length.
        n: usize,
    },
    /// Operands of the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    WrongLength {
        /// Which operand.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A requantization the native reference rejects.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Operand or output widths the operator does not take.
    #[error("{0}")]
    Widths(String),
}

/// The longest row [`MeanSpec`] takes: at `n = 2^23`, `N = 31` and `L = 23`, so the width
/// `B = N + L + 8` reaches [`crate::quant::MAX_ACC_BITS`] (module docs).
pub const MAX_MEAN_LEN: usize = 1 << 23;

/// Constraints per output of every operator here: the requantization and one binding.
pub fn output_constraints(p: RequantSpec) -> usize {
    requant_signed_constraints(p) + 1
}

/// Checks that every accumulator in `[min, max]` fits `p`.
fn check_range(op: &'static str, (min, max): (i128, i128), p: RequantSpec) -> Result<(), ElementwiseError> {
    let half = 1i128 << (p.acc_bits() - 1);
    if min < -half || max >= half {
        return Err(ElementwiseError::AccumulatorTooWide { op, min, max, acc_bits: p.acc_bits() });
    }
    Ok(())
}

/// The range of `c + Σ m·x` over int8 inputs `x`, for `(m, how many inputs it multiplies)`.
fn affine_range(terms: &[(i64, usize)], c: i64) -> (i128, i128) {
    let bits: Vec<_> = terms.iter().map(|&(m, n)| (m, n, 8)).collect();
    affine_range_bits(&bits, c)
}

/// [`affine_range`] over inputs of `(m, count, bits)` signed bits each.
fn affine_range_bits(terms: &[(i64, usize, u32)], c: i64) -> (i128, i128) {
    terms.iter().fold((c.into(), c.into()), |(lo, hi), &(m, count, bits)| {
        let half = 1i128 << (bits - 1);
        let (low, high) = (i128::from(m) * -half, i128::from(m) * (half - 1));
        (lo + low.min(high) * count as i128, hi + low.max(high) * count as i128)
    })
}

/// Residual addition at two scales: `y = clamp(floor((m_a·a + m_b·b + c) / 2^s))`, of int8
/// operands to int8 ([`AddSpec::new`]) or of a wider `a` (a transformer's residual stream)
/// and an int8 `b` to a wider output ([`AddSpec::wide`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAdd", into = "RawAdd")]
pub struct AddSpec {
    m_a: i64,
    m_b: i64,
    c: i64,
    requant: RequantSpec,
    a_bits: u32,
    out_bits: u32,
}

/// The encoding of an [`AddSpec`], validated when decoded.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdd {
    m_a: i64,
    m_b: i64,
    c: i64,
    requant: RequantSpec,
    a_bits: u32,
    out_bits: u32,
}

impl TryFrom<RawAdd> for AddSpec {
    type Error = ElementwiseError;
    fn try_from(r: RawAdd) -> Result<Self, ElementwiseError> {
        Self::wide(r.m_a, r.m_b, r.c, r.requant, r.a_bits, r.out_bits)
    }
}

impl From<AddSpec> for RawAdd {
    fn from(s: AddSpec) -> Self {
        let AddSpec { m_a, m_b, c, requant, a_bits, out_bits } = s;
        Self { m_a, m_b, c, requant, a_bits, out_bits }
    }
}

impl AddSpec {
    /// Fails unless every accumulator of int8 inputs fits the requantization.
    pub fn new(m_a: i64, m_b: i64, c: i64, requant: RequantSpec) -> Result<Self, ElementwiseError> {
        Self::wide(m_a, m_b, c, requant, 8, 8)
    }

    /// `a` of `a_bits` signed bits, `b` int8, the output of `out_bits` (each `8..=16`):
    /// fails unless every accumulator fits the requantization and its width has the
    /// output's bits above the shift (`shift + out_bits ≤ acc_bits`).
    pub fn wide(
        m_a: i64,
        m_b: i64,
        c: i64,
        requant: RequantSpec,
        a_bits: u32,
        out_bits: u32,
    ) -> Result<Self, ElementwiseError> {
        if !(8..=16).contains(&a_bits)
            || !(8..=16).contains(&out_bits)
            || requant.shift() + out_bits > requant.acc_bits()
        {
            return Err(ElementwiseError::Widths(format!(
                "add: operand of {a_bits} bits to an output of {out_bits} bits at {requant:?}: widths are 8 to 16 \
                 and the shift plus the output's bits must fit the accumulator"
            )));
        }
        check_range("add", affine_range_bits(&[(m_a, 1, a_bits), (m_b, 1, 8)], c), requant)?;
        Ok(Self { m_a, m_b, c, requant, a_bits, out_bits })
    }

    /// `(a_bits, out_bits)`.
    pub fn widths(&self) -> (u32, u32) {
        (self.a_bits, self.out_bits)
    }

    /// `(m_a, m_b, c)`.
    pub fn terms(&self) -> (i64, i64, i64) {
        (self.m_a, self.m_b, self.c)
    }

    /// The requantization of every output.
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }
}

/// Elementwise product: `y = clamp(floor((a·b + c) / 2^s))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MulSpec {
    c: i64,
    requant: RequantSpec,
}

impl MulSpec {
    /// Fails unless every accumulator `a·b + c` of int8 inputs fits the requantization.
    pub fn new(c: i64, requant: RequantSpec) -> Result<Self, ElementwiseError> {
        let c128 = i128::from(c);
        check_range("mul", (c128 - 128 * 127, c128 + 128 * 128), requant)?;
        Ok(Self { c, requant })
    }

    /// The requantization of every output.
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }
}

/// Product by a constant: `y = clamp(floor((m·x + c) / 2^s))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleSpec {
    m: i64,
    c: i64,
    requant: RequantSpec,
}

impl ScaleSpec {
    /// Fails unless every accumulator of int8 inputs fits the requantization.
    pub fn new(m: i64, c: i64, requant: RequantSpec) -> Result<Self, ElementwiseError> {
        check_range("scale", affine_range(&[(m, 1)], c), requant)?;
        Ok(Self { m, c, requant })
    }

    /// The requantization of every output.
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }
}

/// How [`reduce_mean`] rounds the mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Towards −∞.
    Floor,
    /// To the nearest, halves up.
    HalfUp,
}

/// The mean of a row of `n` int8 values, exactly rounded (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeanSpec {
    n: usize,
    m: i64,
    c: i64,
    requant: RequantSpec,
}

impl MeanSpec {
    /// The multiplier, constant and width of the exact mean of `n` values.
    pub fn new(n: usize, rounding: Rounding) -> Result<Self, ElementwiseError> {
        if n == 0 || n > MAX_MEAN_LEN {
            return Err(ElementwiseError::BadMeanLength { n });
        }
        let h = match rounding {
            Rounding::Floor => 0,
            Rounding::HalfUp => n as i64 / 2,
        };
        let biased = 128 * n as i64 + h;
        let x_max = 255 * n as u64 + h as u64;
        let big_n = u64::BITS - x_max.leading_zeros();
        let l = usize::BITS - (n - 1).leading_zeros();
        let s = big_n + l;
        let m = (1u64 << s).div_ceil(n as u64) as i64;
        let c = m * biased - (128 << s);
        let requant = RequantSpec::new(s, s + 8)?;
        check_range("mean", affine_range(&[(m, n)], c), requant)?;
        Ok(Self { n, m, c, requant })
    }

    /// The row length.
    pub fn row_len(&self) -> usize {
        self.n
    }

    /// The multiplier `m = ⌈2^s / n⌉`.
    pub fn multiplier(&self) -> i64 {
        self.m
    }

    /// The requantization (shift `s`, width `s + 8`).
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }

    /// The mean of a row whose sum is `sum` (the native arithmetic of the circuit).
    fn of_sum(&self, sum: i64) -> Result<i8, QuantError> {
        requantize_signed_native(self.m * sum + self.c, self.requant)
    }
}

fn same_length(what: &'static str, expected: usize, got: usize) -> Result<(), ElementwiseError> {
    match expected == got {
        true => Ok(()),
        false => Err(ElementwiseError::WrongLength { what, expected, got }),
    }
}

fn widen(x: &[i8]) -> impl Iterator<Item = i64> + '_ {
    x.iter().map(|&v| i64::from(v))
}

fn add_accumulators(spec: &AddSpec, a: &[i8], b: &[i8]) -> Result<Vec<i64>, ElementwiseError> {
    same_length("add: b", a.len(), b.len())?;
    Ok(widen(a).zip(widen(b)).map(|(a, b)| spec.m_a * a + spec.m_b * b + spec.c).collect())
}

fn mul_accumulators(spec: &MulSpec, a: &[i8], b: &[i8]) -> Result<Vec<i64>, ElementwiseError> {
    same_length("mul: b", a.len(), b.len())?;
    Ok(widen(a).zip(widen(b)).map(|(a, b)| a * b + spec.c).collect())
}

fn scale_accumulators(spec: &ScaleSpec, x: &[i8]) -> Vec<i64> {
    widen(x).map(|x| spec.m * x + spec.c).collect()
}

fn requantized(accs: Vec<i64>, p: RequantSpec) -> Result<Vec<i8>, ElementwiseError> {
    Ok(accs.into_iter().map(|acc| requantize_signed_native(acc, p)).collect::<Result<_, _>>()?)
}

fn hints(accs: Vec<i64>, p: RequantSpec) -> Result<Vec<RequantHint>, ElementwiseError> {
    Ok(accs.into_iter().map(|acc| RequantHint::signed(acc, p)).collect::<Result<_, _>>()?)
}

fn int8_spec(spec: &AddSpec) -> Result<(), ElementwiseError> {
    match spec.widths() {
        (8, 8) => Ok(()),
        w => Err(ElementwiseError::Widths(format!("add: a spec of widths {w:?} read as int8 (use add_wide_native)"))),
    }
}

/// Native twin of [`add`] of an int8 spec ([`AddSpec::new`]).
pub fn add_native(spec: &AddSpec, a: &[i8], b: &[i8]) -> Result<Vec<i8>, ElementwiseError> {
    int8_spec(spec)?;
    requantized(add_accumulators(spec, a, b)?, spec.requant)
}

/// Honest witness of [`add`] of an int8 spec.
pub fn add_hint(spec: &AddSpec, a: &[i8], b: &[i8]) -> Result<Vec<RequantHint>, ElementwiseError> {
    int8_spec(spec)?;
    hints(add_accumulators(spec, a, b)?, spec.requant)
}

/// The accumulators of a wide add, `a` checked to its width.
fn wide_accumulators(spec: &AddSpec, a: &[i16], b: &[i8]) -> Result<Vec<i64>, ElementwiseError> {
    same_length("add: b", a.len(), b.len())?;
    check_signed("add: a", a, spec.a_bits)?;
    Ok(a.iter().zip(widen(b)).map(|(&a, b)| spec.m_a * i64::from(a) + spec.m_b * b + spec.c).collect())
}

/// Native twin of [`add`] of any spec: `a` of the spec's `a_bits`, outputs of `out_bits`.
pub fn add_wide_native(spec: &AddSpec, a: &[i16], b: &[i8]) -> Result<Vec<i16>, ElementwiseError> {
    let accs = wide_accumulators(spec, a, b)?;
    let out = accs.into_iter().map(|acc| requantize_signed_bits_native(acc, spec.requant, spec.out_bits));
    Ok(out.map(|y| y.map(|y| y as i16)).collect::<Result<_, _>>()?)
}

/// Honest witness of [`add`] of any spec.
pub fn add_wide_hint(spec: &AddSpec, a: &[i16], b: &[i8]) -> Result<Vec<RequantHint>, ElementwiseError> {
    let accs = wide_accumulators(spec, a, b)?;
    Ok(accs
        .into_iter()
        .map(|acc| RequantHint::signed_bits(acc, spec.requant, spec.out_bits))
        .collect::<Result<_, _>>()?)
}

/// Native twin of [`mul`].
pub fn mul_native(spec: &MulSpec, a: &[i8], b: &[i8]) -> Result<Vec<i8>, ElementwiseError> {
    requantized(mul_accumulators(spec, a, b)?, spec.requant)
}

/// Honest witness of [`mul`].
pub fn mul_hint(spec: &MulSpec, a: &[i8], b: &[i8]) -> Result<Vec<RequantHint>, ElementwiseError> {
    hints(mul_accumulators(spec, a, b)?, spec.requant)
}

/// Native twin of [`scale`].
pub fn scale_native(spec: &ScaleSpec, x: &[i8]) -> Result<Vec<i8>, ElementwiseError> {
    requantized(scale_accumulators(spec, x), spec.requant)
}

/// Honest witness of [`scale`].
pub fn scale_hint(spec: &ScaleSpec, x: &[i8]) -> Result<Vec<RequantHint>, ElementwiseError> {
    hints(scale_accumulators(spec, x), spec.requant)
}

/// Native twin of [`reduce_mean`].
pub fn reduce_mean_native(spec: &MeanSpec, x: &[i8]) -> Result<i8, ElementwiseError> {
    same_length("mean", spec.n, x.len())?;
    Ok(spec.of_sum(widen(x).sum())?)
}

/// Honest witness of [`reduce_mean`].
pub fn reduce_mean_hint(spec: &MeanSpec, x: &[i8]) -> Result<RequantHint, ElementwiseError> {
    same_length("mean", spec.n, x.len())?;
    Ok(RequantHint::signed(spec.m * widen(x).sum::<i64>() + spec.c, spec.requant)?)
}

/// How an accumulator is bound to the requantization's recomposition.
enum Bind<'a> {
    /// `(c + Σ m·x)·1 = acc`.
    Affine(Vec<(i64, &'a LinearCombination<F>)>, i64),
    /// `a·b = acc - c`.
    Product(&'a LinearCombination<F>, &'a LinearCombination<F>, i64),
}

/// One output: [`requantize_signed`] and the constraint that binds its accumulator.
fn requant_bound<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (p, out): (RequantSpec, u32),
    bind: Bind<'_>,
    hint: &RequantHint,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let (acc, y) = requantize_signed_bits(&mut cs.namespace(|| "requant"), p, out, hint)?;
    match bind {
        Bind::Affine(terms, c) => {
            let sum =
                terms.into_iter().fold(LinearCombination::zero() + (int_to_field(c), CS::one()), |sum, (m, x)| {
                    sum + (int_to_field(m), x)
                });
            cs.enforce(|| "acc = c + Σ m·x", |_| sum, |lc| lc + CS::one(), |_| acc);
        }
        Bind::Product(a, b, c) => {
            cs.enforce(|| "a·b = acc - c", |_| a.clone(), |_| b.clone(), |_| acc - (int_to_field(c), CS::one()));
        }
    }
    Ok(y)
}

/// Synthesizes `len` outputs, output `i` bound by `bind(i)`, each in its namespace.
fn outputs<'a, CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (op, len): (&str, usize),
    p: (RequantSpec, u32),
    bind: impl Fn(usize) -> Bind<'a>,
    hint: &[RequantHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    if hint.len() != len {
        return Err(SynthesisError::Unsatisfiable(format!("{op}: witness has the wrong length")));
    }
    (0..len).map(|i| requant_bound(&mut cs.namespace(|| format!("{op}{i}")), p, bind(i), &hint[i])).collect()
}

fn check_operands(op: &str, a: &[LinearCombination<F>], b: &[LinearCombination<F>]) -> Result<(), SynthesisError> {
    match a.len() == b.len() {
        true => Ok(()),
        false => Err(SynthesisError::Unsatisfiable(format!("{op}: operands of lengths {} and {}", a.len(), b.len()))),
    }
}

/// Residual addition (module docs) of range-checked operands (`a` of the spec's `a_bits`,
/// `b` int8), outputs of its `out_bits`; `B + 5` constraints per output.
pub fn add<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &AddSpec,
    a: &[LinearCombination<F>],
    b: &[LinearCombination<F>],
    hint: &[RequantHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    check_operands("add", a, b)?;
    let bind = |i| Bind::Affine(vec![(spec.m_a, &a[i]), (spec.m_b, &b[i])], spec.c);
    outputs(cs, ("add", a.len()), (spec.requant, spec.out_bits), bind, hint)
}

/// Elementwise product of two range-checked int8 tensors; `B + 5` constraints per output.
pub fn mul<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &MulSpec,
    a: &[LinearCombination<F>],
    b: &[LinearCombination<F>],
    hint: &[RequantHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    check_operands("mul", a, b)?;
    outputs(cs, ("mul", a.len()), (spec.requant, 8), |i| Bind::Product(&a[i], &b[i], spec.c), hint)
}

/// Product of a range-checked int8 tensor by a constant; `B + 5` constraints per output.
pub fn scale<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &ScaleSpec,
    x: &[LinearCombination<F>],
    hint: &[RequantHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    outputs(cs, ("scale", x.len()), (spec.requant, 8), |i| Bind::Affine(vec![(spec.m, &x[i])], spec.c), hint)
}

/// The exactly rounded mean of a row of `n` range-checked int8 values (module docs);
/// `B + 5` constraints.
pub fn reduce_mean<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &MeanSpec,
    x: &[LinearCombination<F>],
    hint: &RequantHint,
) -> Result<AllocatedNum<F>, SynthesisError> {
    if x.len() != spec.n {
        return Err(SynthesisError::Unsatisfiable(format!("mean of {} values given {}", spec.n, x.len())));
    }
    let terms = x.iter().map(|x| (spec.m, x)).collect();
    requant_bound(cs, (spec.requant, 8), Bind::Affine(terms, spec.c), hint)
}

#[cfg(test)]
mod tests;
