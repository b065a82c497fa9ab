//! Matrix product of two signed int8 activation matrices, requantized to int8: the
//! attention products `Q·Kᵀ` and `softmax(·)·V` of a transformer block.
//!
//! `out[i][j] = clamp(floor((bias[i][j] + Σ_t A[i][t]·B[t][j]) / 2^s), -128, 127)` for an
//! `n×k` matrix `A`, a `k×m` matrix `B` and an optional bias: linear combinations that the
//! caller has range-checked (`A` and `B` to int8, the bias to the spec's `bias_bits`).
//!
//! **Views, not copies.** The operands are [`View`]s of slices: element `(i, j)` is
//! `data[offset + i·stride₀ + j·stride₁]`. A transpose swaps the strides, one head of a
//! multi-head projection is a block of columns ([`View::columns`]), a reshape is another
//! [`View::row_major`] over the same slice, a bias broadcast over the rows has row stride 0
//! ([`View::strided`]). A view only chooses which linear combination enters which
//! constraint, so none of them costs a constraint: `Q·Kᵀ` is
//! `matmul(Q, K.transpose())`, and the native twin reads the same views of integers.
//!
//! **Construction.** Every output is [`requantize_signed`] (`B + 4` constraints with
//! `B = acc_bits`); its accumulator, the recomposition of its bits, is bound for free as the
//! last product of a [`dot_product`]. The outputs of a row are packed `s` to a dot product
//! (its *slots*, as in [`super::pack`]): the outputs `j` of a pack `J` all multiply
//! `A[i][t]`, so with slot weights `ω_j = 2^(w·slot(j))`, `w = B + 2`, the one dot product
//!
//! `Σ_t A[i][t] · P[t][J] + Σ_{j∈J} ω_j·bias[i][j] = Σ_{j∈J} ω_j·acc[i][j]`, where
//! `P[t][J] = Σ_{j∈J} ω_j·B[t][j]`,
//!
//! computes all of them at `k` constraints (`s = ⌊252 / w⌋`, at most `m`; 9 for `B = 24`).
//! Where the packed sums recur (`n ≥` [`MIN_SUM_REUSE`] rows read each of them) each is
//! allocated once and bound by one linear constraint, so a product reads one variable
//! instead of `s` terms. With `P = ⌈m/s⌉` packs per row, [`matmul_constraints`] is
//!
//! `n·P·k + [n ≥ MIN_SUM_REUSE and s > 1]·P·k + n·m·(B + 4)`,
//!
//! and `n·m·(k + B + 4)` unpacked (`s = 1`, [`MatMulSpec::with_max_slots`]).
//!
//! **Soundness.** [`MatMulSpec`] admits only shapes whose true accumulators `t` (of int8
//! operands and an in-range bias) satisfy `|t| < 2^(B-1)`, all far below the field size.
//! A prover's accumulator of an output is `d - 2^B - 2^(s+7)` with `d ∈ [0, 2^(B+1))` (the
//! booleanity of its bits), so `|acc| ≤ 2^B + 2^(B-1)` and `δ = acc - t` has
//! `|δ| < 2^(B+1) = 2^(w-1)`. The dot product says `Σ_slot ω·δ ≡ 0 (mod p)`; the sum is
//! below `2^(w·s) ≤ 2^252 < p` in magnitude, so it is 0 as an integer, and read modulo
//! `2^w` from the lowest slot up every `δ` is a multiple of `2^w` smaller than `2^(w-1)`:
//! zero. So every accumulator is the true one (`a_carry_between_slots_is_rejected`), and
//! the requantization's own argument gives the output. A shared sum substitutes a variable
//! for the linear combination it is constrained to equal, which changes nothing above.

use super::dot::{dot_product, DotHint};
use super::pack::{MIN_SUM_REUSE, PACK_BITS};
use super::requant::{requant_signed_constraints, requantize_signed, RequantHint};
use super::view::View;
use crate::quant::{int_to_field, requantize_signed_native, QuantError, RequantSpec, MAX_ACC_BITS};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use std::ops::Range;
use thiserror::Error;

/// Errors of a matrix product's shapes and values.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MatMulError {
    /// A dimension of zero.
    #[error("a {n}×{k} by {k}×{m} product needs every dimension at least 1")]
    EmptyDimension {
        /// Rows of `A`.
        n: usize,
        /// Columns of `A`, rows of `B`.
        k: usize,
        /// Columns of `B`.
        m: usize,
    },
    /// Accumulators that the requantization's width cannot hold.
    #[error("inner dimension {k} gives accumulators in [{min}, {max}], beyond {acc_bits} signed bits")]
    AccumulatorTooWide {
        /// The inner dimension.
        k: usize,
        /// The least accumulator (bias included).
        min: i128,
        /// The largest accumulator (bias included).
        max: i128,
        /// The declared width.
        acc_bits: u32,
    },
    /// A bias width the accumulators cannot hold at all.
    #[error("a bias of {bits} bits: need 1 to {MAX_ACC_BITS}")]
    BadBiasBits {
        /// The declared width.
        bits: u32,
    },
    /// An operand of the wrong shape.
    #[error("{what}: expected a {}×{} matrix, got {}×{}", expected.0, expected.1, got.0, got.1)]
    WrongShape {
        /// Which operand.
        what: &'static str,
        /// Its shape in the spec.
        expected: (usize, usize),
        /// Its shape as given.
        got: (usize, usize),
    },
    /// A bias given without one in the spec, or none given with one in the spec.
    #[error("the spec {} a bias and the call {} one", if *declared { "declares" } else { "has no" }, if *declared { "gives none" } else { "gives" })]
    BiasMismatch {
        /// Whether the spec declares a bias.
        declared: bool,
    },
    /// A bias outside its declared width.
    #[error("bias {value} at ({row}, {col}) does not fit {bits} signed bits")]
    BiasOutOfRange {
        /// Row of the output.
        row: usize,
        /// Column of the output.
        col: usize,
        /// The bias.
        value: i64,
        /// The declared width.
        bits: u32,
    },
    /// A requantization the native reference rejects.
    #[error(transparent)]
    Quant(#[from] QuantError),
}

/// The public shape of a requantized matrix product, validated by [`MatMulSpec::new`] and
/// [`MatMulSpec::with_bias`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatMulSpec {
    n: usize,
    k: usize,
    m: usize,
    requant: RequantSpec,
    bias_bits: Option<u32>,
    slots: usize,
}

impl MatMulSpec {
    /// An `n×k` by `k×m` product without a bias, as many slots per pack as the field holds.
    /// Fails unless every dimension is at least 1 and every accumulator of int8 operands
    /// (`|t| ≤ k·128·128`) fits `acc_bits` signed bits.
    pub fn new(n: usize, k: usize, m: usize, requant: RequantSpec) -> Result<Self, MatMulError> {
        if n == 0 || k == 0 || m == 0 {
            return Err(MatMulError::EmptyDimension { n, k, m });
        }
        let slots = ((PACK_BITS / slot_bits(requant)) as usize).clamp(1, m);
        let spec = Self { n, k, m, requant, bias_bits: None, slots };
        spec.check_accumulators()?;
        Ok(spec)
    }

    /// The same product plus a bias of `bits` signed bits per output (range-checked by the
    /// caller); fails if the accumulators no longer fit.
    pub fn with_bias(self, bits: u32) -> Result<Self, MatMulError> {
        if bits == 0 || bits > MAX_ACC_BITS {
            return Err(MatMulError::BadBiasBits { bits });
        }
        let spec = Self { bias_bits: Some(bits), ..self };
        spec.check_accumulators()?;
        Ok(spec)
    }

    /// At most `max` outputs per pack (1: one dot product per output).
    pub fn with_max_slots(self, max: usize) -> Self {
        Self { slots: self.slots.min(max).max(1), ..self }
    }

    /// `(n, k, m)`.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.n, self.k, self.m)
    }

    /// The requantization of every output.
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }

    /// Outputs per pack.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The bias width, if the product has a bias.
    pub fn bias_bits(&self) -> Option<u32> {
        self.bias_bits
    }

    fn check_accumulators(&self) -> Result<(), MatMulError> {
        let (lo, hi) = self.bias_bits.map_or((0, 0), |b| (-(1i128 << (b - 1)), (1i128 << (b - 1)) - 1));
        let k = self.k as i128;
        let (min, max) = (lo - k * 128 * 127, hi + k * 128 * 128);
        let half = 1i128 << (self.requant.acc_bits() - 1);
        if min < -half || max >= half {
            return Err(MatMulError::AccumulatorTooWide { k: self.k, min, max, acc_bits: self.requant.acc_bits() });
        }
        Ok(())
    }

    /// Packs per row.
    fn packs(&self) -> usize {
        self.m.div_ceil(self.slots)
    }

    /// The output columns of pack `q`.
    fn pack_columns(&self, q: usize) -> Range<usize> {
        q * self.slots..((q + 1) * self.slots).min(self.m)
    }

    /// Whether each packed sum is allocated once for the rows to share.
    fn shares_sums(&self) -> bool {
        self.slots > 1 && self.n >= MIN_SUM_REUSE
    }

    /// `2^(w·slot)`.
    fn slot_weight(&self, slot: usize) -> F {
        F::from(2).pow_vartime([u64::from(slot_bits(self.requant)) * slot as u64])
    }
}

/// The slot width `w = B + 2` (module docs).
fn slot_bits(requant: RequantSpec) -> u32 {
    requant.acc_bits() + 2
}

/// Constraints of [`matmul`] (module docs).
pub fn matmul_constraints(spec: &MatMulSpec) -> usize {
    let products = spec.packs() * spec.k;
    let sums = if spec.shares_sums() { products } else { 0 };
    spec.n * products + sums + spec.n * spec.m * requant_signed_constraints(spec.requant)
}

/// Checks the operands' shapes and the bias's presence against the spec.
fn check_shapes<T, U>(
    spec: &MatMulSpec,
    a: &View<'_, T>,
    b: &View<'_, T>,
    bias: Option<&View<'_, U>>,
) -> Result<(), MatMulError> {
    let expect = |what, got: (usize, usize), expected| match got == expected {
        true => Ok(()),
        false => Err(MatMulError::WrongShape { what, expected, got }),
    };
    expect("A", a.shape(), (spec.n, spec.k))?;
    expect("B", b.shape(), (spec.k, spec.m))?;
    match (bias, spec.bias_bits) {
        (Some(bias), Some(_)) => expect("bias", bias.shape(), (spec.n, spec.m)),
        (None, None) => Ok(()),
        (_, declared) => Err(MatMulError::BiasMismatch { declared: declared.is_some() }),
    }
}

/// The accumulators `bias[i][j] + Σ_t A[i][t]·B[t][j]`, row-major, after checking shapes
/// and biases.
fn accumulators(
    spec: &MatMulSpec,
    a: View<'_, i8>,
    b: View<'_, i8>,
    bias: Option<View<'_, i64>>,
) -> Result<Vec<i64>, MatMulError> {
    check_shapes(spec, &a, &b, bias.as_ref())?;
    let mut accs = Vec::with_capacity(spec.n * spec.m);
    for i in 0..spec.n {
        for j in 0..spec.m {
            let base = match (bias, spec.bias_bits) {
                (Some(bias), Some(bits)) => {
                    let value = *bias.at(i, j);
                    if value < -(1i64 << (bits - 1)) || value >= 1i64 << (bits - 1) {
                        return Err(MatMulError::BiasOutOfRange { row: i, col: j, value, bits });
                    }
                    value
                }
                _ => 0,
            };
            accs.push((0..spec.k).fold(base, |acc, t| acc + i64::from(*a.at(i, t)) * i64::from(*b.at(t, j))));
        }
    }
    Ok(accs)
}

/// Native twin of [`matmul`]: the `n×m` outputs, row-major.
pub fn matmul_native(
    spec: &MatMulSpec,
    a: View<'_, i8>,
    b: View<'_, i8>,
    bias: Option<View<'_, i64>>,
) -> Result<Vec<i8>, MatMulError> {
    let accs = accumulators(spec, a, b, bias)?;
    Ok(accs.into_iter().map(|acc| requantize_signed_native(acc, spec.requant)).collect::<Result<_, _>>()?)
}

/// Witness of a matrix product.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulHint {
    /// The shared packed sums `P[t][q]` (index `t·packs + q`); empty where not shared.
    pub sums: Vec<F>,
    /// The dot product of every row and pack (index `i·packs + q`).
    pub dots: Vec<DotHint>,
    /// The requantization of every output, row-major.
    pub requant: Vec<RequantHint>,
}

impl MatMulHint {
    /// Honest witness; fails where [`matmul_native`] fails.
    pub fn new(
        spec: &MatMulSpec,
        a: View<'_, i8>,
        b: View<'_, i8>,
        bias: Option<View<'_, i64>>,
    ) -> Result<Self, MatMulError> {
        let requant = accumulators(spec, a, b, bias)?
            .into_iter()
            .map(|acc| RequantHint::signed(acc, spec.requant))
            .collect::<Result<_, _>>()?;
        let packs = spec.packs();
        // every packed sum P[t][q] once (index t·packs + q): each row's dot products read them
        let packed: Vec<F> = (0..spec.k)
            .flat_map(|t| (0..packs).map(move |q| (t, q)))
            .map(|(t, q)| {
                let columns = spec.pack_columns(q).enumerate();
                columns.map(|(slot, j)| spec.slot_weight(slot) * int_to_field(i64::from(*b.at(t, j)))).sum::<F>()
            })
            .collect();
        let dots = (0..spec.n)
            .flat_map(|i| (0..packs).map(move |q| (i, q)))
            .map(|(i, q)| {
                DotHint::new((0..spec.k).map(|t| (int_to_field(i64::from(*a.at(i, t))), packed[t * packs + q])))
            })
            .collect();
        let sums = if spec.shares_sums() { packed } else { vec![] };
        Ok(Self { sums, dots, requant })
    }
}

/// The packed factors `P[t][q]` of every inner index and pack (index `t·packs + q`):
/// allocated variables where shared, linear combinations otherwise.
fn packed_factors<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &MatMulSpec,
    b: View<'_, LinearCombination<F>>,
    sums: &[F],
) -> Result<Vec<LinearCombination<F>>, SynthesisError> {
    let packs = spec.packs();
    let mut factors = Vec::with_capacity(spec.k * packs);
    for t in 0..spec.k {
        for q in 0..packs {
            let columns = spec.pack_columns(q).enumerate();
            let sum =
                columns.fold(LinearCombination::zero(), |lc, (slot, j)| lc + (spec.slot_weight(slot), b.at(t, j)));
            if !spec.shares_sums() {
                factors.push(sum);
                continue;
            }
            let v = AllocatedNum::alloc(cs.namespace(|| format!("sum{t}_{q}")), || Ok(sums[t * packs + q]))?;
            cs.enforce(|| format!("sum{t}_{q} packs B"), |lc| lc + v.get_variable(), |lc| lc + CS::one(), |_| sum);
            factors.push(LinearCombination::zero() + v.get_variable());
        }
    }
    Ok(factors)
}

/// Constrains the requantized product `A·B (+ bias)` (module docs); returns the `n×m`
/// outputs, row-major.
pub fn matmul<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &MatMulSpec,
    a: View<'_, LinearCombination<F>>,
    b: View<'_, LinearCombination<F>>,
    bias: Option<View<'_, LinearCombination<F>>>,
    hint: &MatMulHint,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    check_shapes(spec, &a, &b, bias.as_ref()).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
    let (n, k, m) = spec.dims();
    let packs = spec.packs();
    let sums = if spec.shares_sums() { k * packs } else { 0 };
    if hint.sums.len() != sums || hint.dots.len() != n * packs || hint.requant.len() != n * m {
        return Err(SynthesisError::Unsatisfiable("matmul witness has the wrong shape".into()));
    }
    let factors = packed_factors(cs, spec, b, &hint.sums)?;
    let mut out = Vec::with_capacity(n * m);
    for i in 0..n {
        for q in 0..packs {
            let (mut acc, mut packed_bias) = (LinearCombination::zero(), LinearCombination::zero());
            for (slot, j) in spec.pack_columns(q).enumerate() {
                let mut cs = cs.namespace(|| format!("out{i}_{j}"));
                let (acc_j, y) = requantize_signed(&mut cs, spec.requant, &hint.requant[i * m + j])?;
                acc = acc + (spec.slot_weight(slot), &acc_j);
                if let Some(bias) = &bias {
                    packed_bias = packed_bias + (spec.slot_weight(slot), bias.at(i, j));
                }
                out.push(y);
            }
            let taps: Vec<_> = (0..k).map(|t| (a.at(i, t), &factors[t * packs + q])).collect();
            let mut cs = cs.namespace(|| format!("dot{i}_{q}"));
            dot_product(&mut cs, &taps, &packed_bias, &acc, &hint.dots[i * packs + q])?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
