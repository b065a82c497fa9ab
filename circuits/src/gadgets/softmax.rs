//! Softmax of one row of signed int8 logits, in base 2, with an exact integer twin.
//!
//! **Units.** Input `x_j` is a signed int8 whose real value is `x_j·2^-f` *in log2 units*
//! (`f = frac_bits`); the importer folds `log2(e)` (and attention's `1/√d`) into the scale
//! of the producing layer, so `softmax(v)_j = 2^(v_j) / Σ_k 2^(v_k)`. Output `p_j` is an
//! unsigned integer in `[0, 2^K]` with real value `p_j·2^-K` (`K = out_bits`).
//!
//! **Construction** (per element unless said; `m` the row maximum, `Zmax = 2^(8-f) - 1`):
//! 1. `d_j = m - x_j ∈ [0, 255]` by 8 bits: 7 allocated booleans and a top bit that is the
//!    linear combination `(m - x_j - low)/2^7`, itself forced boolean (8 constraints). With
//!    `m := x_0 + d_0` (no variable), every `x_j <= m`. `m` *is* the maximum because
//!    `Π_j d_j = 0` (a running product, `n - 1` per row; the field has no zero divisors).
//! 2. `d_j = z·2^f + r`: the low `f` bits are `r`, the high `8 - f` bits are `z`.
//! 3. `e_j = T[r]·2^(Zmax - z)` with `T[r] = round(2^P·2^(-r/2^f))` (`P = table_bits`), so
//!    `e_j ≈ 2^(P + Zmax)·2^(-d_j/2^f)`, an exact integer with no truncation below the
//!    maximum. `T` is evaluated as the multilinear polynomial of `r`'s bits (Möbius
//!    coefficients; one constraint per monomial of degree ≥ 2: `2^f - f - 1`); the power
//!    is `Π_i (2^(2^i) - (2^(2^i) - 1)·z_i)` (`8 - f - 1` products) and one product makes
//!    `e_j`. Every `e_j` is bounded by construction: `0 < e_j <= 2^(P + Zmax)`.
//! 4. `S = Σ e_j` (linear; `2^(P+Zmax) <= S <= n·2^(P+Zmax)`, `W` bits). Once per row the
//!    reciprocal `ρ = floor(2^M / S)` (`M = W + K + 3`) is hinted and checked by
//!    `ρ·S = 2^M - rem` with `ρ` (`M - P - Zmax + 1` bits), `rem` and `S - 1 - rem` (`W`
//!    bits each) range-checked: then `rem ∈ [0, S)` and `ρ` is the integer quotient.
//! 5. `p_j = floor((e_j·ρ + 2^(M-K-1)) / 2^(M-K))` by `e_j·ρ + 2^(M-K-1) = p_j·2^(M-K) +
//!    rem_j` with `rem_j` (`M - K` bits) and `p_j` (`K + 1` bits) range-checked. Both checks
//!    are needed: with `rem_j` free any `p_j` fits, and with `p_j` free each wrong `rem_j`
//!    has a (huge) field solution. All values stay far below the field size (`e_j·ρ <
//!    2^(M+1)`, `M <= 120` by [`SoftmaxSpec::new`]), so the integer reading is the only one.
//!
//! Per element: `8 + (2^f - f - 1) + (8 - f) + (M - K) + (K + 1) + 1` constraints; per
//! row the product chain (`n - 1`, at least 1) and `(M - P - Zmax + 1) + 2W + 2` for the
//! reciprocal ([`softmax_constraints`]). At `f = 4, K = 8, P = 12, n = 32`: 69 per element
//! and 117 per row, 2,325 in all (72.7 per element). The remainder's `M - K = W + 3` bits
//! are two thirds of it: a fused attention (`Σ e_j·v_j` divided once per output channel)
//! would pay them per output instead of per score.
//!
//! **Error.** Against the exact base-2 softmax of the dequantized input, each `p_j` is off
//! by at most `0.5` (rounding) `+ 2^-3` (the floor of `ρ`) output steps plus the table's
//! relative error `2^-(P+1)` of the output; measured over 12,000 random rows of 32 at
//! `K = 8, P = 12, f ∈ {3, 4, 5}`: 0.509 steps (`tests::measured_error_at_the_documented_shape`).
//! The importer's quantization of the logits to `2^-f` adds its own error before this gadget.
//!
//! **Determinism.** `T` is built from IEEE square roots and products only (correctly
//! rounded, so identical on every platform) and is never within `10^-6` of a rounding tie
//! (tested): prover and verifier derive the same constants, hence the same circuit.

use super::bits::{alloc_uint, lc, range_check_lc, weighted_sum};
use crate::quant::{bits_le, QuantError};
use crate::F;
use ff::{Field, PrimeField};
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};

/// A linear combination with its value (if the witness is known).
pub type Valued = (LinearCombination<F>, Option<F>);

/// Largest `M` (reciprocal precision) accepted: keeps `e·ρ` in `u128` and far below the field.
const MAX_RECIP_BITS: u32 = 120;

/// The shape of one softmax row (validated by [`SoftmaxSpec::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxSpec {
    n: usize,
    frac_bits: u32,
    out_bits: u32,
    table_bits: u32,
}

impl SoftmaxSpec {
    /// A row of `n >= 1` logits with `frac_bits ∈ [2, 7]`, output `out_bits ∈ [1, 16]`
    /// and table precision `table_bits ∈ [out_bits, 24]`.
    pub fn new(n: usize, frac_bits: u32, out_bits: u32, table_bits: u32) -> Result<Self, QuantError> {
        let bad = |why: &str| Err(QuantError::BadSpec(format!("softmax over {n}: {why}")));
        if n == 0 || n > 1 << 20 {
            return bad("the row must hold between 1 and 2^20 logits");
        }
        if !(2..=7).contains(&frac_bits) {
            return bad("frac_bits must lie in [2, 7]");
        }
        if !(1..=16).contains(&out_bits) || !(out_bits..=24).contains(&table_bits) {
            return bad("need 1 <= out_bits <= 16 and out_bits <= table_bits <= 24");
        }
        let spec = Self { n, frac_bits, out_bits, table_bits };
        if spec.recip_bits() > MAX_RECIP_BITS {
            return bad("the sum is too wide for the reciprocal (lower table_bits or raise frac_bits)");
        }
        Ok(spec)
    }

    /// Logits per row.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Fraction bits `f` of the input (log2 units).
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// Output bits `K`: `p_j ∈ [0, 2^K]` stands for `p_j·2^-K`.
    pub fn out_bits(&self) -> u32 {
        self.out_bits
    }

    /// Table precision `P`.
    pub fn table_bits(&self) -> u32 {
        self.table_bits
    }

    /// `Zmax = 2^(8-f) - 1`, the largest integer part of a difference.
    fn zmax(&self) -> u32 {
        (1 << (8 - self.frac_bits)) - 1
    }

    /// `W`: bits of the largest sum `n·2^(P + Zmax)`.
    fn sum_bits(&self) -> u32 {
        let top = self.table_bits + self.zmax();
        top + (usize::BITS - self.n.leading_zeros())
    }

    /// `M = W + K + 3`.
    fn recip_bits(&self) -> u32 {
        self.sum_bits() + self.out_bits + 3
    }

    /// Bits of `ρ <= 2^M / 2^(P + Zmax)`.
    fn rho_bits(&self) -> u32 {
        self.recip_bits() - self.table_bits - self.zmax() + 1
    }
}

/// `T[r] = round(2^P·2^(-r/2^f))` for `r ∈ [0, 2^f)`, from correctly rounded IEEE
/// operations only (module docs).
pub fn exp2_table(spec: &SoftmaxSpec) -> Vec<u64> {
    let f = spec.frac_bits;
    // roots[i] = 2^(-2^i / 2^f): 1/2 under f - i square roots
    let roots: Vec<f64> = (0..f).map(|i| (0..f - i).fold(0.5f64, |x, _| x.sqrt())).collect();
    let scale = (1u64 << spec.table_bits) as f64;
    (0..1u32 << f)
        .map(|r| {
            let v = (0..f).filter(|i| r >> i & 1 == 1).fold(scale, |acc, i| acc * roots[i as usize]);
            v.round() as u64
        })
        .collect()
}

/// The multilinear coefficients of `T` over `r`'s bits: `c[S] = Σ_{U⊆S} (-1)^{|S∖U|} T[U]`.
fn mobius(table: &[u64]) -> Vec<i64> {
    let mut c: Vec<i64> = table.iter().map(|&t| t as i64).collect();
    let bits = table.len().trailing_zeros();
    for i in 0..bits {
        for s in 0..c.len() {
            if s >> i & 1 == 1 {
                c[s] -= c[s ^ (1 << i)];
            }
        }
    }
    c
}

/// The un-normalized weight `e = T[r]·2^(Zmax - z)` of a difference `d = z·2^f + r`.
fn weight(spec: &SoftmaxSpec, table: &[u64], d: u32) -> u128 {
    let f = spec.frac_bits;
    u128::from(table[(d & ((1 << f) - 1)) as usize]) << (spec.zmax() - (d >> f))
}

/// Native twin: the row's outputs `p_j ∈ [0, 2^K]`.
pub fn softmax_native(x: &[i8], spec: &SoftmaxSpec) -> Result<Vec<u32>, QuantError> {
    Ok(SoftmaxHint::new(x, spec)?.outputs)
}

/// Witness of one row.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxHint {
    /// The row maximum `m`.
    pub max: i8,
    /// The 7 low bits of each `d_j = m - x_j` (the top bit is derived).
    pub low_bits: Vec<Vec<F>>,
    /// `ρ = floor(2^M / S)`.
    pub rho: u128,
    /// `2^M - ρ·S`.
    pub rem: u128,
    /// Per element: the rounding remainder `rem_j`.
    pub rems: Vec<u128>,
    /// The outputs `p_j`.
    pub outputs: Vec<u32>,
}

impl SoftmaxHint {
    /// Honest witness of the row `x` (of `spec.n()` logits).
    pub fn new(x: &[i8], spec: &SoftmaxSpec) -> Result<Self, QuantError> {
        if x.len() != spec.n {
            return Err(QuantError::WrongLength { what: "softmax row", expected: spec.n, got: x.len() });
        }
        Self::at_max(x, *x.iter().max().expect("n >= 1"), spec)
    }

    /// The witness that takes `m` for the maximum (honest only for the true maximum).
    fn at_max(x: &[i8], m: i8, spec: &SoftmaxSpec) -> Result<Self, QuantError> {
        let m = i32::from(m);
        let d: Vec<u32> = x.iter().map(|&v| (m - i32::from(v)).clamp(0, 255) as u32).collect();
        let table = exp2_table(spec);
        let e: Vec<u128> = d.iter().map(|&d| weight(spec, &table, d)).collect();
        let sum: u128 = e.iter().sum();
        let (big_m, shift) = (spec.recip_bits(), spec.recip_bits() - spec.out_bits);
        let rho = (1u128 << big_m) / sum;
        let rounded: Vec<u128> = e.iter().map(|&e| e * rho + (1 << (shift - 1))).collect();
        Ok(Self {
            max: m as i8,
            low_bits: d.iter().map(|&d| bits_le(u64::from(d), 7)).collect(),
            rho,
            rem: (1u128 << big_m) - rho * sum,
            rems: rounded.iter().map(|&v| v & ((1 << shift) - 1)).collect(),
            outputs: rounded.iter().map(|&v| (v >> shift) as u32).collect(),
        })
    }
}

/// Range check of an unsigned `x` of `n` bits ([`alloc_uint`]); a value too wide for the
/// width keeps only its low bits, which then disagree with the constraint that uses it.
fn range<CS: ConstraintSystem<F>>(cs: &mut CS, x: u128, n: u32) -> Result<Num<F>, SynthesisError> {
    let bits: Vec<F> = (0..n).map(|i| if x >> i & 1 == 1 { F::ONE } else { F::ZERO }).collect();
    alloc_uint(cs, &bits)
}

/// `a·b` allocated and constrained (one constraint).
fn product<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    name: &str,
    (a, va): (&LinearCombination<F>, Option<F>),
    (b, vb): (&LinearCombination<F>, Option<F>),
) -> Result<Valued, SynthesisError> {
    let v = va.zip(vb).map(|(a, b)| a * b);
    let p = AllocatedNum::alloc(cs.namespace(|| name.to_string()), || v.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce(|| format!("{name} = a*b"), |_| a.clone(), |_| b.clone(), |lc| lc + p.get_variable());
    Ok((LinearCombination::zero() + p.get_variable(), v))
}

/// The 8 bits of `d = m - x` (7 allocated, the top one implied: [`range_check_lc`]) as
/// linear combinations with values, little-endian.
fn difference_bits<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (diff, value): Valued,
    low: &[F],
) -> Result<Vec<Valued>, SynthesisError> {
    let (low, top) = range_check_lc(&mut cs.namespace(|| "d"), &diff, low)?;
    let inv128 = F::from(128).invert().unwrap();
    let top = LinearCombination::zero() + (inv128, &top);
    let top_value = value.zip(weighted_sum(&low).get_value()).map(|(d, l)| (d - l) * inv128);
    let mut bits: Vec<_> = low.iter().map(|b| (LinearCombination::zero() + b.get_variable(), b.get_value())).collect();
    bits.push((top, top_value));
    Ok(bits)
}

/// `e = T[r]·2^(Zmax - z)` from the 8 bits of `d` (module docs, step 3).
fn exp2_weight<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &SoftmaxSpec,
    coeffs: &[i64],
    bits: &[Valued],
) -> Result<Valued, SynthesisError> {
    let f = spec.frac_bits as usize;
    // monomials of r's bits, indexed by subset mask
    let mut monos: Vec<Valued> = vec![(LinearCombination::zero() + CS::one(), Some(F::ONE))];
    for s in 1usize..1 << f {
        let high = usize::BITS - 1 - s.leading_zeros();
        let rest = s ^ (1 << high);
        let m = if rest == 0 {
            bits[high as usize].clone()
        } else {
            let (a, b) = (&monos[rest], &bits[high as usize]);
            product(cs, &format!("mono{s}"), (&a.0, a.1), (&b.0, b.1))?
        };
        monos.push(m);
    }
    let int = crate::quant::int_to_field;
    let t = monos.iter().zip(coeffs).fold(LinearCombination::zero(), |acc, ((m, _), &c)| acc + (int(c), m));
    let t_value = monos.iter().zip(coeffs).try_fold(F::ZERO, |acc, ((_, v), &c)| v.map(|v| acc + v * int(c)));
    // Π_i (2^(2^i) - (2^(2^i) - 1)·z_i) over z's bits
    let factor = |i: usize, (z, v): &Valued| {
        let big = F::from(2).pow_vartime([1u64 << i]);
        let lc = LinearCombination::zero() + (big, CS::one()) - (big - F::ONE, z);
        (lc, v.map(|z| big - (big - F::ONE) * z))
    };
    let mut power = factor(0, &bits[f]);
    for (i, z) in bits[f + 1..].iter().enumerate() {
        let next = factor(i + 1, z);
        power = product(cs, &format!("power{}", i + 1), (&power.0, power.1), (&next.0, next.1))?;
    }
    product(cs, "e", (&t, t_value), (&power.0, power.1))
}

/// Constrains `Π_j d_j = 0` by a running product (`n - 1` constraints; one for `n = 1`).
fn some_zero<CS: ConstraintSystem<F>>(cs: &mut CS, diffs: &[Valued]) -> Result<(), SynthesisError> {
    let (last, rest) = diffs.split_last().expect("n >= 1");
    let mut acc = (LinearCombination::zero() + CS::one(), Some(F::ONE));
    for (j, (d, v)) in rest.iter().enumerate() {
        acc = match j {
            0 => (d.clone(), *v),
            _ => product(cs, &format!("prefix{j}"), (&acc.0, acc.1), (d, *v))?,
        };
    }
    cs.enforce(|| "product is zero", |_| acc.0, |_| last.0.clone(), |lc| lc);
    Ok(())
}

/// Synthesizes one softmax row over the logits `x` (linear combinations the caller has
/// range-checked to int8) and returns the outputs `p_j` (module docs).
pub fn softmax<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &SoftmaxSpec,
    x: &[Valued],
    hint: &SoftmaxHint,
) -> Result<Vec<Num<F>>, SynthesisError> {
    let n = spec.n;
    let lengths = [x.len(), hint.low_bits.len(), hint.rems.len(), hint.outputs.len()];
    if lengths.iter().any(|&l| l != n) || hint.low_bits.iter().any(|b| b.len() != 7) {
        return Err(SynthesisError::Unsatisfiable("witness has the wrong length".into()));
    }
    let coeffs = mobius(&exp2_table(spec));
    let m = AllocatedNum::alloc(cs.namespace(|| "max"), || Ok(crate::quant::int_to_field(i64::from(hint.max))))?;
    let mut diffs = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for (j, (xj, xv)) in x.iter().enumerate() {
        let cs = &mut cs.namespace(|| format!("e{j}"));
        let diff = LinearCombination::zero() + m.get_variable() - xj;
        let value = m.get_value().zip(*xv).map(|(m, x)| m - x);
        let bits = difference_bits(cs, (diff.clone(), value), &hint.low_bits[j])?;
        weights.push(exp2_weight(cs, spec, &coeffs, &bits)?);
        diffs.push((diff, value));
    }
    some_zero(&mut cs.namespace(|| "max is a logit"), &diffs)?;
    let sum = weights.iter().fold(LinearCombination::zero(), |acc, (e, _)| acc + e);
    let (big_m, w) = (spec.recip_bits(), spec.sum_bits());
    let rho = lc(&range(&mut cs.namespace(|| "rho"), hint.rho, spec.rho_bits())?);
    let rem = range(&mut cs.namespace(|| "rem"), hint.rem, w)?;
    let slack_value = weights.iter().try_fold(F::ZERO, |acc, (_, v)| v.map(|v| acc + v));
    let slack_value = slack_value.zip(rem.get_value()).map(|(s, r)| s - F::ONE - r);
    let slack = range(&mut cs.namespace(|| "slack"), to_u128(slack_value), w)?;
    cs.enforce(|| "slack = S - 1 - rem", |_| lc(&slack) + &lc(&rem) + CS::one() - &sum, |lc| lc + CS::one(), |lc| lc);
    let two_m = F::from(2).pow_vartime([u64::from(big_m)]);
    cs.enforce(|| "rho*S = 2^M - rem", |_| rho.clone(), |_| sum, |lc| lc + (two_m, CS::one()) - &self::lc(&rem));
    let shift = big_m - spec.out_bits;
    let (step, half) = (F::from(2).pow_vartime([u64::from(shift)]), F::from(2).pow_vartime([u64::from(shift - 1)]));
    weights
        .iter()
        .enumerate()
        .map(|(j, (e, _))| {
            let cs = &mut cs.namespace(|| format!("p{j}"));
            let rem_j = range(&mut cs.namespace(|| "rem"), hint.rems[j], shift)?;
            let p = range(&mut cs.namespace(|| "p"), u128::from(hint.outputs[j]), spec.out_bits + 1)?;
            let rounded = LinearCombination::zero() + (step, &lc(&p)) + &lc(&rem_j) - (half, CS::one());
            cs.enforce(|| "e*rho = p*2^(M-K) + rem - half", |_| e.clone(), |_| rho.clone(), |_| rounded);
            Ok(p)
        })
        .collect()
}

/// The integer value of a field element below `2^128` (0 when unknown or wider: the
/// range check then fails, as it must).
fn to_u128(v: Option<F>) -> u128 {
    let Some(v) = v else { return 0 };
    let repr = v.to_repr();
    let bytes = repr.as_ref();
    if bytes[16..].iter().any(|&b| b != 0) {
        return 0;
    }
    u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes"))
}

/// Constraints of one row of [`softmax`].
pub fn softmax_constraints(spec: &SoftmaxSpec) -> usize {
    let f = spec.frac_bits as usize;
    let (w, shift) = (spec.sum_bits() as usize, (spec.recip_bits() - spec.out_bits) as usize);
    let exp = 8 + ((1 << f) - f - 1) + (8 - f - 1) + 1;
    let normalize = shift + spec.out_bits as usize + 1 + 1;
    let row = (spec.n - 1).max(1) + spec.rho_bits() as usize + 2 * w + 2;
    spec.n * (exp + normalize) + row
}

#[cfg(test)]
mod tests;
