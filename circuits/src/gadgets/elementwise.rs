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

use super::requant::{requant_signed_constraints, requantize_signed, RequantHint};
use crate::quant::{int_to_field, requantize_signed_native, QuantError, RequantSpec};
use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
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
    terms.iter().fold((c.into(), c.into()), |(lo, hi), &(m, count)| {
        let (low, high) = (i128::from(m) * -128, i128::from(m) * 127);
        (lo + low.min(high) * count as i128, hi + low.max(high) * count as i128)
    })
}

/// Residual addition at two scales: `y = clamp(floor((m_a·a + m_b·b + c) / 2^s))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddSpec {
    m_a: i64,
    m_b: i64,
    c: i64,
    requant: RequantSpec,
}

impl AddSpec {
    /// Fails unless every accumulator of int8 inputs fits the requantization.
    pub fn new(m_a: i64, m_b: i64, c: i64, requant: RequantSpec) -> Result<Self, ElementwiseError> {
        check_range("add", affine_range(&[(m_a, 1), (m_b, 1)], c), requant)?;
        Ok(Self { m_a, m_b, c, requant })
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

/// Native twin of [`add`].
pub fn add_native(spec: &AddSpec, a: &[i8], b: &[i8]) -> Result<Vec<i8>, ElementwiseError> {
    requantized(add_accumulators(spec, a, b)?, spec.requant)
}

/// Honest witness of [`add`].
pub fn add_hint(spec: &AddSpec, a: &[i8], b: &[i8]) -> Result<Vec<RequantHint>, ElementwiseError> {
    hints(add_accumulators(spec, a, b)?, spec.requant)
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
    p: RequantSpec,
    bind: Bind<'_>,
    hint: &RequantHint,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let (acc, y) = requantize_signed(&mut cs.namespace(|| "requant"), p, hint)?;
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
    p: RequantSpec,
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

/// Residual addition of two range-checked int8 tensors (module docs); `B + 5` constraints
/// per output.
pub fn add<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &AddSpec,
    a: &[LinearCombination<F>],
    b: &[LinearCombination<F>],
    hint: &[RequantHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    check_operands("add", a, b)?;
    let bind = |i| Bind::Affine(vec![(spec.m_a, &a[i]), (spec.m_b, &b[i])], spec.c);
    outputs(cs, ("add", a.len()), spec.requant, bind, hint)
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
    outputs(cs, ("mul", a.len()), spec.requant, |i| Bind::Product(&a[i], &b[i], spec.c), hint)
}

/// Product of a range-checked int8 tensor by a constant; `B + 5` constraints per output.
pub fn scale<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &ScaleSpec,
    x: &[LinearCombination<F>],
    hint: &[RequantHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    outputs(cs, ("scale", x.len()), spec.requant, |i| Bind::Affine(vec![(spec.m, &x[i])], spec.c), hint)
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
    requant_bound(cs, spec.requant, Bind::Affine(terms, spec.c), hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::Field;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    fn alloc(cs: &mut TestConstraintSystem<F>, name: &str, xs: &[i8]) -> Vec<LinearCombination<F>> {
        xs.iter()
            .enumerate()
            .map(|(i, &v)| {
                let x =
                    AllocatedNum::alloc(cs.namespace(|| format!("{name}{i}")), || Ok(int_to_field(v.into()))).unwrap();
                LinearCombination::zero() + x.get_variable()
            })
            .collect()
    }

    fn values(out: &[AllocatedNum<F>]) -> Vec<F> {
        out.iter().map(|y| y.get_value().unwrap()).collect()
    }

    fn fields(ys: &[i8]) -> Vec<F> {
        ys.iter().map(|&y| int_to_field(y.into())).collect()
    }

    /// `clamp(floor(acc / 2^s), -128, 127)`, written independently of the twins.
    fn requant_ref(acc: i64, p: RequantSpec) -> i8 {
        acc.div_euclid(1 << p.shift()).clamp(-128, 127) as i8
    }

    /// The three tensor operators behind one interface for the shared properties.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Add(AddSpec),
        Mul(MulSpec),
        Scale(ScaleSpec),
    }

    impl Op {
        fn requant(&self) -> RequantSpec {
            match self {
                Op::Add(s) => s.requant(),
                Op::Mul(s) => s.requant(),
                Op::Scale(s) => s.requant(),
            }
        }

        fn native(&self, a: &[i8], b: &[i8]) -> Result<Vec<i8>, ElementwiseError> {
            match self {
                Op::Add(s) => add_native(s, a, b),
                Op::Mul(s) => mul_native(s, a, b),
                Op::Scale(s) => scale_native(s, a),
            }
        }

        fn hint(&self, a: &[i8], b: &[i8]) -> Vec<RequantHint> {
            match self {
                Op::Add(s) => add_hint(s, a, b),
                Op::Mul(s) => mul_hint(s, a, b),
                Op::Scale(s) => scale_hint(s, a),
            }
            .unwrap()
        }

        /// The integer accumulator of element `i`, from the spec's constants.
        fn acc(&self, a: i8, b: i8) -> i64 {
            let (a, b) = (i64::from(a), i64::from(b));
            match self {
                Op::Add(s) => s.m_a * a + s.m_b * b + s.c,
                Op::Mul(s) => a * b + s.c,
                Op::Scale(s) => s.m * a + s.c,
            }
        }

        fn synth(&self, a: &[i8], b: &[i8], hint: &[RequantHint]) -> (TestConstraintSystem<F>, Vec<F>) {
            let mut cs = TestConstraintSystem::<F>::new();
            let (la, lb) = (alloc(&mut cs, "a", a), alloc(&mut cs, "b", b));
            let out = {
                let cs = &mut cs.namespace(|| "op");
                match self {
                    Op::Add(s) => add(cs, s, &la, &lb, hint),
                    Op::Mul(s) => mul(cs, s, &la, &lb, hint),
                    Op::Scale(s) => scale(cs, s, &la, hint),
                }
            }
            .unwrap();
            (cs, values(&out))
        }
    }

    /// A width that holds accumulators up to `need` in magnitude, with shift `shift`.
    fn width(need: i128, shift: u32, extra: u32) -> RequantSpec {
        let bits = 129 - need.leading_zeros();
        RequantSpec::new(shift, bits.max(shift + 8) + extra).unwrap()
    }

    fn op() -> impl Strategy<Value = Op> {
        let requant = (0u32..16, 0u32..3);
        let constants = (-3000i64..3000, -3000i64..3000, -200_000i64..200_000);
        (0u8..3, constants, requant).prop_map(|(kind, (m_a, m_b, c), (shift, extra))| match kind {
            0 => Op::Add(
                AddSpec::new(
                    m_a,
                    m_b,
                    c,
                    width(128 * i128::from(m_a.abs() + m_b.abs()) + i128::from(c.abs()), shift, extra),
                )
                .unwrap(),
            ),
            1 => Op::Mul(MulSpec::new(c, width(128 * 128 + i128::from(c.abs()), shift, extra)).unwrap()),
            _ => Op::Scale(
                ScaleSpec::new(m_a, c, width(128 * i128::from(m_a.abs()) + i128::from(c.abs()), shift, extra)).unwrap(),
            ),
        })
    }

    fn tensors() -> impl Strategy<Value = (Vec<i8>, Vec<i8>)> {
        (1usize..12).prop_flat_map(|n| {
            let edges = prop_oneof![Just(-128i8), Just(127i8), Just(0i8), any::<i8>()];
            (proptest::collection::vec(edges.clone(), n), proptest::collection::vec(edges, n))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(51), ..ProptestConfig::default() })]
        #[test]
        fn operators_match_native_and_reference(op in op(), (a, b) in tensors()) {
            let native = op.native(&a, &b).unwrap();
            let reference: Vec<i8> = a.iter().zip(&b).map(|(&x, &y)| requant_ref(op.acc(x, y), op.requant())).collect();
            prop_assert_eq!(&native, &reference);
            let (cs, out) = op.synth(&a, &b, &op.hint(&a, &b));
            prop_assert!(cs.is_satisfied());
            prop_assert_eq!(out, fields(&native));
            prop_assert_eq!(cs.num_constraints(), a.len() * output_constraints(op.requant()));
        }

        /// An output off by one, and an honest requantization of a wrong sum or product
        /// (one off, or one output step off), are each rejected.
        #[test]
        fn wrong_outputs_rejected(op in op(), (a, b) in tensors(), pick in any::<prop::sample::Index>(), up in any::<bool>()) {
            let i = pick.index(a.len());
            let step = if up { 1 } else { -1 };
            let mut hint = op.hint(&a, &b);
            hint[i].y += int_to_field(step);
            prop_assert!(!op.synth(&a, &b, &hint).0.is_satisfied());
            let p = op.requant();
            for delta in [step, step << p.shift()] {
                if let Ok(wrong) = RequantHint::signed(op.acc(a[i], b[i]) + delta, p) {
                    let mut hint = op.hint(&a, &b);
                    hint[i] = wrong;
                    prop_assert!(!op.synth(&a, &b, &hint).0.is_satisfied());
                }
            }
        }
    }

    fn synth_mean(spec: &MeanSpec, x: &[i8], hint: &RequantHint) -> (TestConstraintSystem<F>, F) {
        let mut cs = TestConstraintSystem::<F>::new();
        let lx = alloc(&mut cs, "x", x);
        let y = reduce_mean(&mut cs.namespace(|| "mean"), spec, &lx, hint).unwrap();
        (cs, y.get_value().unwrap())
    }

    /// The exactly rounded mean, as integer division.
    fn mean_ref(sum: i64, n: usize, rounding: Rounding) -> i64 {
        let h = if rounding == Rounding::HalfUp { n as i64 / 2 } else { 0 };
        (sum + h).div_euclid(n as i64)
    }

    fn rounding() -> impl Strategy<Value = Rounding> {
        prop_oneof![Just(Rounding::Floor), Just(Rounding::HalfUp)]
    }

    fn row() -> impl Strategy<Value = Vec<i8>> {
        (1usize..80).prop_flat_map(|n| {
            prop_oneof![
                proptest::collection::vec(any::<i8>(), n),
                (any::<i8>(), 0..n).prop_map(move |(v, i)| {
                    let mut r = vec![v; n];
                    r[i] = r[i].wrapping_add(1);
                    r
                }),
                proptest::collection::vec(prop_oneof![Just(-128i8), Just(127i8)], n),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(52), ..ProptestConfig::default() })]
        #[test]
        fn mean_matches_native_and_exact_division(x in row(), rounding in rounding()) {
            let spec = MeanSpec::new(x.len(), rounding).unwrap();
            let y = reduce_mean_native(&spec, &x).unwrap();
            prop_assert_eq!(i64::from(y), mean_ref(x.iter().map(|&v| i64::from(v)).sum(), x.len(), rounding));
            let (cs, out) = synth_mean(&spec, &x, &reduce_mean_hint(&spec, &x).unwrap());
            prop_assert!(cs.is_satisfied());
            prop_assert_eq!(out, int_to_field(y.into()));
            prop_assert_eq!(cs.num_constraints(), output_constraints(spec.requant()));
        }

        #[test]
        fn wrong_mean_rejected(x in row(), rounding in rounding(), up in any::<bool>()) {
            let spec = MeanSpec::new(x.len(), rounding).unwrap();
            let step = if up { F::ONE } else { -F::ONE };
            let mut hint = reduce_mean_hint(&spec, &x).unwrap();
            hint.y += step;
            prop_assert!(!synth_mean(&spec, &x, &hint).0.is_satisfied());
            // the honest witness of the next output's accumulator (a sum one multiplier off)
            let acc = spec.m * x.iter().map(|&v| i64::from(v)).sum::<i64>() + spec.c;
            let moved = acc + if up { 1i64 << spec.requant.shift() } else { -spec.m };
            if let Ok(other) = RequantHint::signed(moved, spec.requant) {
                prop_assert!(!synth_mean(&spec, &x, &other).0.is_satisfied());
            }
        }
    }

    /// The multiplier is exact for every sum a row can have: every `n ≤ 300`
    /// exhaustively, longer rows (up to the longest) at the extremes and around every
    /// rounding boundary of a sample.
    #[test]
    fn mean_multiplier_is_exact() {
        for rounding in [Rounding::Floor, Rounding::HalfUp] {
            for n in 1..=300usize {
                let spec = MeanSpec::new(n, rounding).unwrap();
                let lim = n as i64 * 128;
                for sum in -lim..lim - n as i64 + 1 {
                    assert_eq!(i64::from(spec.of_sum(sum).unwrap()), mean_ref(sum, n, rounding), "n {n} sum {sum}");
                }
            }
            for n in [768usize, 1000, 4096, 50_257, 1 << 20, MAX_MEAN_LEN - 1, MAX_MEAN_LEN] {
                let spec = MeanSpec::new(n, rounding).unwrap();
                let h = if rounding == Rounding::HalfUp { n as i64 / 2 } else { 0 };
                for q in (-128i64..=127).step_by(5).chain([-128, 127]) {
                    for sum in [q * n as i64 - h - 1, q * n as i64 - h, q * n as i64 - h + 1] {
                        if sum >= -128 * n as i64 && sum <= 127 * n as i64 {
                            assert_eq!(
                                i64::from(spec.of_sum(sum).unwrap()),
                                mean_ref(sum, n, rounding),
                                "n {n} sum {sum}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Against the real mean: the output is the mean rounded, nothing worse. Prints the
    /// measured worst errors.
    #[test]
    fn mean_error_against_float() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(53);
        for n in [4usize, 7, 64, 197, 768] {
            let mut worst = [(0f64, 0f64); 2];
            for (r, rounding) in [Rounding::Floor, Rounding::HalfUp].into_iter().enumerate() {
                let spec = MeanSpec::new(n, rounding).unwrap();
                for _ in 0..2000 {
                    let x: Vec<i8> = (0..n).map(|_| rng.next_u32() as i8).collect();
                    let mu = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
                    let err = f64::from(reduce_mean_native(&spec, &x).unwrap()) - mu;
                    worst[r] = (worst[r].0.min(err), worst[r].1.max(err));
                }
            }
            let ([floor_lo, floor_hi], [half_lo, half_hi]) = (worst[0].into(), worst[1].into());
            println!(
                "n {n}: floor error in [{floor_lo:.4}, {floor_hi:.4}], half-up error in [{half_lo:.4}, {half_hi:.4}]"
            );
            assert!(floor_lo > -1.0 && floor_hi <= 0.0);
            assert!(half_lo >= -0.5 && half_hi <= 0.5 && half_lo < half_hi);
        }
    }

    #[test]
    fn specs_and_operands_are_validated() {
        let p = RequantSpec::new(2, 16).unwrap();
        // 16 bits hold [-32768, 32767]: 128·(a + b) reaches -32768, 129·a + 128·b -32896,
        // and -128·(a + b) reaches 32768
        assert!(AddSpec::new(128, 128, 0, p).is_ok());
        let err = AddSpec::new(129, 128, 0, p).unwrap_err();
        assert_eq!(err, ElementwiseError::AccumulatorTooWide { op: "add", min: -32896, max: 32639, acc_bits: 16 });
        assert!(AddSpec::new(-128, -128, 0, p).is_err());
        assert!(AddSpec::new(-128, -128, -1, p).is_ok());
        assert!(MulSpec::new(16383, p).is_ok());
        assert!(MulSpec::new(16384, p).is_err());
        assert!(ScaleSpec::new(-256, 0, p).is_err());
        assert!(ScaleSpec::new(-255, 0, p).is_ok());
        assert_eq!(MeanSpec::new(0, Rounding::Floor), Err(ElementwiseError::BadMeanLength { n: 0 }));
        assert!(MeanSpec::new(MAX_MEAN_LEN + 1, Rounding::HalfUp).is_err());
        assert_eq!(MeanSpec::new(MAX_MEAN_LEN, Rounding::HalfUp).unwrap().requant().acc_bits(), 62);
        let spec = AddSpec::new(1, 1, 0, p).unwrap();
        assert_eq!(
            add_native(&spec, &[1, 2], &[3]),
            Err(ElementwiseError::WrongLength { what: "add: b", expected: 2, got: 1 })
        );
        let mean = MeanSpec::new(3, Rounding::Floor).unwrap();
        assert!(reduce_mean_native(&mean, &[1, 2]).is_err());
        // the gadgets refuse operands or witnesses of the wrong length
        let mut cs = TestConstraintSystem::<F>::new();
        let x = alloc(&mut cs, "x", &[1, 2]);
        let hint = add_hint(&spec, &[1, 2], &[1, 2]).unwrap();
        assert!(add(&mut cs, &spec, &x, &x[..1], &hint).is_err());
        assert!(add(&mut cs, &spec, &x, &x, &hint[..1]).is_err());
        assert!(reduce_mean(&mut cs, &mean, &x, &hint[0]).is_err());
    }

    /// Constraints at transformer sizes: a residual add, and the mean of a 768-wide row.
    #[test]
    fn counts_at_typical_sizes() {
        let residual = AddSpec::new(3, 5, 4, RequantSpec::new(3, 14).unwrap()).unwrap();
        assert_eq!(output_constraints(residual.requant()), 19);
        let mean = MeanSpec::new(768, Rounding::HalfUp).unwrap();
        assert_eq!((mean.requant().shift(), mean.requant().acc_bits()), (28, 36));
        assert_eq!(output_constraints(mean.requant()), 41);
        assert_eq!(mean.row_len(), 768);
        assert_eq!(mean.multiplier(), (1u64 << 28).div_ceil(768) as i64);
    }
}
