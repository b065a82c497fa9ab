//! Requantize + ReLU + clamp, with the sign taken from the bit decomposition.
//!
//! Witness: the `B` bits of `acc + 2^(B-1)` (so bit `B-1` is the sign: 1 iff `acc >= 0`),
//! `inv`, `ok` and the output `y`. With `s = shift`:
//! - `l  = Σ_{i=s}^{s+6} b_i 2^(i-s)` — the 7 output bits of `floor(acc / 2^s)`;
//! - `hi = Σ_{i=s+7}^{B-2} b_i 2^(i-s-7)` — non-zero iff the quotient exceeds 127;
//! - `g  = hi + (1 - b_{B-1}) · 2^(B-s-8)` — zero iff `acc >= 0` and no saturation.
//!
//! Constraints (`B + 3` per output): `B` booleanity; `g·inv = 1 - ok` and `g·ok = 0`
//! (so `ok = [g == 0]`, forced boolean); `ok·(l - 127) = y - 127·b_{B-1}`. Hence
//! `y = l` when in range, `127` when saturated, `0` when negative. The low `s` bits are the
//! remainder, range-checked to `[0, 2^s)` by their booleanity, which makes the floor exact.
//! The recomposition `acc = Σ b_i 2^i - 2^(B-1)` is returned as a linear combination, for
//! the caller to bind to the accumulator in a constraint it already has (the last product
//! of a dot product), so it costs nothing here.
//!
//! **Signed outputs** ([`requantize_signed`], for the residual stream of a transformer):
//! `y = clamp(floor(acc / 2^s), -128, 127)` is the same gadget one bit wider. With
//! `z = acc + 2^(s+7)`, `floor(z / 2^s) = floor(acc / 2^s) + 128`, so `y + 128` is the
//! unsigned clamp of `z` to 8 output bits: the `B + 1` bits decompose `z + 2^B` (which
//! lies in `[0, 2^(B+1))` for every `acc` of `B` signed bits, because `s + 8 <= B`), bit `B`
//! is the sign of `z`, and the last constraint reads `ok·(l - 255) = y + 128 - 255·b_B`.
//! `B + 4` constraints per output.

use super::bits::{add_constant, alloc_bits, lc, weighted_sum};
use crate::quant::{
    bits_le, int_to_field, requantize_native, requantize_signed_bits_native, requantize_signed_native, QuantError,
    RequantSpec, ACT_BITS,
};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};

/// Witness of one requantized output.
#[derive(Clone, Debug, PartialEq)]
pub struct RequantHint {
    /// The `B` bits of `acc + 2^(B-1)`, little-endian.
    pub bits: Vec<F>,
    /// Inverse of `g` (0 when `g = 0`).
    pub inv: F,
    /// 1 iff the output is in range (not negative, not saturated).
    pub ok: F,
    /// The output activation.
    pub y: F,
}

impl RequantHint {
    /// Honest witness for accumulator `acc`; fails where the native reference fails.
    pub fn new(acc: i64, p: RequantSpec) -> Result<Self, QuantError> {
        let y = requantize_native(acc, p)?;
        Ok(Self::clamped(acc, Width::relu(p), int_to_field(i64::from(y))))
    }

    /// Honest witness of [`requantize_signed`] for `acc`; fails where the native reference
    /// ([`requantize_signed_native`]) fails.
    pub fn signed(acc: i64, p: RequantSpec) -> Result<Self, QuantError> {
        let y = requantize_signed_native(acc, p)?;
        Ok(Self::clamped(acc, Width::signed(p), int_to_field(i64::from(y))))
    }

    /// Honest witness of [`requantize_signed_bits`] for `acc`; fails where the native
    /// reference ([`requantize_signed_bits_native`]) or the width check fails.
    pub fn signed_bits(acc: i64, p: RequantSpec, out: u32) -> Result<Self, QuantError> {
        let w = Width::signed_bits(p, out)?;
        let y = requantize_signed_bits_native(acc, p, out)?;
        Ok(Self::clamped(acc, w, int_to_field(y)))
    }

    fn clamped(acc: i64, w: Width, y: F) -> Self {
        let (n, s, a) = (w.bits, w.shift, w.out);
        let biased = (acc + w.offset_in + (1i64 << (n - 1))) as u64;
        let pos = biased >> (n - 1) & 1;
        let hi = (biased & ((1u64 << (n - 1)) - 1)) >> (s + a);
        let g = F::from(hi + (1 - pos) * (1u64 << (n - s - a - 1)));
        Self {
            bits: bits_le(biased, n as u32),
            inv: g.invert().unwrap_or(F::ZERO),
            ok: if g == F::ZERO { F::ONE } else { F::ZERO },
            y,
        }
    }
}

/// The shape of one clamp: `n` bits decompose `acc + offset_in + 2^(n-1)`; the output is
/// the `out` bits from `shift` up, clamped to `[0, 2^out - 1]`, minus `offset_out`.
#[derive(Clone, Copy)]
struct Width {
    bits: u64,
    shift: u64,
    out: u64,
    offset_in: i64,
    offset_out: u64,
}

impl Width {
    fn relu(p: RequantSpec) -> Self {
        let shift = u64::from(p.shift());
        Self { bits: u64::from(p.acc_bits()), shift, out: u64::from(ACT_BITS), offset_in: 0, offset_out: 0 }
    }

    /// [`Width::signed_bits`] at 8 output bits, which every [`RequantSpec`] admits
    /// (`shift + 8 ≤ acc_bits` by construction).
    fn signed(p: RequantSpec) -> Self {
        Self::signed_unchecked(p, 8)
    }

    /// [`Width::signed`] with `out` output bits: needs `8 ≤ out ≤ 32` and
    /// `shift + out ≤ acc_bits`, so the output bits, the saturation bits and the sign are
    /// distinct bits of the decomposition.
    fn signed_bits(p: RequantSpec, out: u32) -> Result<Self, QuantError> {
        if !(8..=32).contains(&out) || p.shift() + out > p.acc_bits() {
            return Err(QuantError::BadSpec(format!(
                "a signed requantization to {out} bits at shift {} needs 8 ≤ bits ≤ 32 and shift + bits ≤ {} \
                 accumulator bits",
                p.shift(),
                p.acc_bits()
            )));
        }
        Ok(Self::signed_unchecked(p, out))
    }

    /// The signed width of `out` output bits, its bounds already checked.
    fn signed_unchecked(p: RequantSpec, out: u32) -> Self {
        let (shift, out) = (u64::from(p.shift()), u64::from(out));
        Self {
            bits: u64::from(p.acc_bits()) + 1,
            shift,
            out,
            offset_in: 1 << (shift + out - 1),
            offset_out: 1 << (out - 1),
        }
    }
}

/// Synthesizes one requantized output. Returns the accumulator as a linear combination
/// of the bits (the caller must constrain it) and the allocated output `y ∈ [0, 127]`.
pub fn requantize_relu<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    p: RequantSpec,
    hint: &RequantHint,
) -> Result<(LinearCombination<F>, AllocatedNum<F>), SynthesisError> {
    requantize_relu_either(cs, (p, p), None, hint)
}

/// [`requantize_relu`] under whichever of two specs of one accumulator width the boolean
/// `bit` selects (0: the first, 1: the second; the caller constrains it to a bit): the
/// output bits `l` and the range test `g` are those of the selected shift, `l_sel = l₀ +
/// bit·(l₁ - l₀)` and `g_sel` likewise, two constraints more when the shifts differ, none
/// when they agree (`bit` may then be absent). With `bit` boolean this is exactly the
/// gadget of the selected spec, so its argument carries over.
pub fn requantize_relu_either<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (p0, p1): (RequantSpec, RequantSpec),
    bit: Option<&Num<F>>,
    hint: &RequantHint,
) -> Result<(LinearCombination<F>, AllocatedNum<F>), SynthesisError> {
    if p1.acc_bits() != p0.acc_bits() {
        return Err(SynthesisError::Unsatisfiable("two accumulator widths".into()));
    }
    clamp(cs, (Width::relu(p0), Width::relu(p1)), bit, hint)
}

/// Synthesizes one signed requantized output `y = clamp(floor(acc / 2^s), -128, 127)`
/// (module docs). Returns the accumulator as a linear combination of the bits (the caller
/// must constrain it) and the allocated output, negatives as `p - |y|`.
pub fn requantize_signed<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    p: RequantSpec,
    hint: &RequantHint,
) -> Result<(LinearCombination<F>, AllocatedNum<F>), SynthesisError> {
    clamp(cs, (Width::signed(p), Width::signed(p)), None, hint)
}

/// [`requantize_signed`] to `out` output bits: `y = clamp(floor(acc / 2^s), -2^(out-1),
/// 2^(out-1) - 1)` (the wide residual stream of a transformer). The argument of the module
/// docs holds with `z = acc + 2^(s+out-1)` and `out` output bits in place of 8, given
/// `s + out ≤ B` ([`RequantHint::signed_bits`] checks it, and so does this function).
/// `B + 4` constraints.
pub fn requantize_signed_bits<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    p: RequantSpec,
    out: u32,
    hint: &RequantHint,
) -> Result<(LinearCombination<F>, AllocatedNum<F>), SynthesisError> {
    let w = Width::signed_bits(p, out).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
    clamp(cs, (w, w), None, hint)
}

/// The clamp of [`requantize_relu_either`] and [`requantize_signed`] for two widths that
/// differ at most in their shift.
fn clamp<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (w0, w1): (Width, Width),
    bit: Option<&Num<F>>,
    hint: &RequantHint,
) -> Result<(LinearCombination<F>, AllocatedNum<F>), SynthesisError> {
    let b = w0.bits as usize;
    if hint.bits.len() != b {
        return Err(SynthesisError::Unsatisfiable("witness has the wrong length".into()));
    }
    let a = w0.out as usize;
    let bits = alloc_bits(&mut cs.namespace(|| "bits"), &hint.bits)?;
    let sign = &bits[b - 1];
    let offset = F::from(2).pow_vartime([b as u64 - 1]) + int_to_field(w0.offset_in);
    let acc = add_constant::<CS>(weighted_sum(&bits), -offset);
    // the output bits and g = hi + k·(1 - sign) at shift s, with their values
    let at = |s: usize| {
        let l = weighted_sum(&bits[s..s + a]);
        let hi = weighted_sum(&bits[s + a..b - 1]);
        let k = F::from(2).pow_vartime([(b - s - a - 1) as u64]);
        let g = lc(&hi) + (k, CS::one()) - (k, sign.get_variable());
        let g_value = hi.get_value().zip(sign.get_value()).map(|(h, sg)| h + k * (F::ONE - sg));
        ((lc(&l), l.get_value()), (g, g_value))
    };
    let (s0, s1) = (w0.shift as usize, w1.shift as usize);
    let first = at(s0);
    let (l, g) = if s0 == s1 {
        (first.0 .0, first.1 .0)
    } else {
        let bit = bit.ok_or(SynthesisError::Unsatisfiable("two shifts and no bit to select one".into()))?;
        let second = at(s1);
        let mut select = |name: &str, (x0, v0): (LinearCombination<F>, Option<F>), (x1, v1)| {
            let v = bit.get_value().zip(v0).zip(v1).map(|((c, v0), v1): ((F, F), F)| v0 + c * (v1 - v0));
            let sel =
                AllocatedNum::alloc(cs.namespace(|| name.to_string()), || v.ok_or(SynthesisError::AssignmentMissing))?;
            let diff = x1 - &x0;
            cs.enforce(|| format!("{name} selected"), |_| bit.lc(F::ONE), |_| diff, |lc| lc + sel.get_variable() - &x0);
            Ok::<_, SynthesisError>(LinearCombination::zero() + sel.get_variable())
        };
        (select("l", first.0, second.0)?, select("g", first.1, second.1)?)
    };

    let inv = AllocatedNum::alloc(cs.namespace(|| "inv"), || Ok(hint.inv))?;
    let ok = AllocatedNum::alloc(cs.namespace(|| "ok"), || Ok(hint.ok))?;
    let y = AllocatedNum::alloc(cs.namespace(|| "y"), || Ok(hint.y))?;
    cs.enforce(|| "g*inv = 1-ok", |_| g.clone(), |lc| lc + inv.get_variable(), |lc| lc + CS::one() - ok.get_variable());
    cs.enforce(|| "g*ok = 0", |_| g.clone(), |lc| lc + ok.get_variable(), |lc| lc);
    let max = F::from((1u64 << a) - 1);
    let mut out = LinearCombination::zero() + y.get_variable() - (max, sign.get_variable());
    if w0.offset_out != 0 {
        out = out + (F::from(w0.offset_out), CS::one());
    }
    cs.enforce(|| "ok*(l-max) = y+offset-max*sign", |lc| lc + ok.get_variable(), |_| l - (max, CS::one()), |_| out);
    Ok((lc(&acc), y))
}

/// Constraints per output of [`requantize_relu`].
pub fn requant_constraints(p: RequantSpec) -> usize {
    p.acc_bits() as usize + 3
}

/// Constraints per output of [`requantize_signed`].
pub fn requant_signed_constraints(p: RequantSpec) -> usize {
    p.acc_bits() as usize + 4
}

/// Constraints per output of [`requantize_relu_either`].
pub fn requant_either_constraints(p0: RequantSpec, p1: RequantSpec) -> usize {
    requant_constraints(p0) + if p0.shift() == p1.shift() { 0 } else { 2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::int_to_field;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    /// Synthesizes the gadget with the accumulator bound to a public input `acc`.
    fn run(acc: i64, p: RequantSpec, hint: &RequantHint) -> (bool, F, usize) {
        run_either(acc, p, hint, requantize_relu)
    }

    fn run_signed(acc: i64, p: RequantSpec, hint: &RequantHint) -> (bool, F, usize) {
        run_either(acc, p, hint, requantize_signed)
    }

    type Gadget = fn(
        &mut TestConstraintSystem<F>,
        RequantSpec,
        &RequantHint,
    ) -> Result<(LinearCombination<F>, AllocatedNum<F>), SynthesisError>;

    fn run_either(acc: i64, p: RequantSpec, hint: &RequantHint, gadget: Gadget) -> (bool, F, usize) {
        let mut cs = TestConstraintSystem::<F>::new();
        let acc_var = AllocatedNum::alloc_input(cs.namespace(|| "acc"), || Ok(int_to_field(acc))).unwrap();
        let (acc_lc, y) = gadget(&mut cs, p, hint).unwrap();
        let n = cs.num_constraints();
        cs.enforce(
            || "bind acc",
            |_| acc_lc,
            |lc| lc + TestConstraintSystem::<F>::one(),
            |lc| lc + acc_var.get_variable(),
        );
        (cs.is_satisfied(), y.get_value().unwrap(), n)
    }

    fn requant_specs() -> impl Strategy<Value = RequantSpec> {
        (0u32..20, 0u32..20).prop_map(|(s, extra)| RequantSpec::new(s, s + 8 + extra).unwrap())
    }

    fn acc_in(p: RequantSpec) -> impl Strategy<Value = i64> {
        let half = 1i64 << (p.acc_bits() - 1);
        prop_oneof![-half..half, -300i64..300, (1i64 << (p.shift() + 7)) - 5..(1i64 << (p.shift() + 7)) + 5]
            .prop_map(move |a| a.clamp(-half, half - 1))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(2), ..ProptestConfig::default() })]
        #[test]
        fn matches_native((p, acc) in requant_specs().prop_flat_map(|p| (Just(p), acc_in(p)))) {
            let hint = RequantHint::new(acc, p).unwrap();
            let (sat, y, n) = run(acc, p, &hint);
            prop_assert!(sat);
            prop_assert_eq!(y, F::from(u64::from(requantize_native(acc, p).unwrap())));
            prop_assert_eq!(n, requant_constraints(p));
        }

        #[test]
        fn output_plus_one_rejected((p, acc) in requant_specs().prop_flat_map(|p| (Just(p), acc_in(p)))) {
            let mut hint = RequantHint::new(acc, p).unwrap();
            hint.y += F::ONE;
            prop_assert!(!run(acc, p, &hint).0);
        }

        #[test]
        fn flipped_sign_bit_rejected((p, acc) in requant_specs().prop_flat_map(|p| (Just(p), acc_in(p)))) {
            // Flip the sign bit and re-derive every other witness value so that only the
            // bit/accumulator binding can catch it.
            let mut hint = RequantHint::new(acc, p).unwrap();
            let top = p.acc_bits() as usize - 1;
            hint.bits[top] = F::ONE - hint.bits[top];
            prop_assert!(!run(acc, p, &hint).0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]
        #[test]
        fn signed_matches_native((p, acc) in requant_specs().prop_flat_map(|p| (Just(p), signed_acc_in(p)))) {
            let hint = RequantHint::signed(acc, p).unwrap();
            let (sat, y, n) = run_signed(acc, p, &hint);
            prop_assert!(sat);
            prop_assert_eq!(y, int_to_field(i64::from(requantize_signed_native(acc, p).unwrap())));
            prop_assert_eq!(n, requant_signed_constraints(p));
        }

        /// Every other signed output, each with the witness an honest prover would give for
        /// the accumulator that yields it, is rejected against the true accumulator.
        #[test]
        fn signed_wrong_output_rejected((p, acc, other) in requant_specs().prop_flat_map(|p| (Just(p), signed_acc_in(p), signed_acc_in(p)))) {
            let y = requantize_signed_native(acc, p).unwrap();
            prop_assume!(requantize_signed_native(other, p).unwrap() != y);
            prop_assert!(!run_signed(acc, p, &RequantHint::signed(other, p).unwrap()).0);
            let mut hint = RequantHint::signed(acc, p).unwrap();
            hint.y -= F::ONE;
            prop_assert!(!run_signed(acc, p, &hint).0);
        }
    }

    fn run_wide(acc: i64, p: RequantSpec, out: u32, hint: &RequantHint) -> (bool, F, usize) {
        let mut cs = TestConstraintSystem::<F>::new();
        let acc_var = AllocatedNum::alloc_input(cs.namespace(|| "acc"), || Ok(int_to_field(acc))).unwrap();
        let (acc_lc, y) = requantize_signed_bits(&mut cs, p, out, hint).unwrap();
        let n = cs.num_constraints();
        let one = TestConstraintSystem::<F>::one();
        cs.enforce(|| "bind acc", |_| acc_lc, |lc| lc + one, |lc| lc + acc_var.get_variable());
        (cs.is_satisfied(), y.get_value().unwrap(), n)
    }

    /// A spec, an output width it admits and an accumulator around its edges.
    fn wide_cases() -> impl Strategy<Value = (RequantSpec, u32, i64)> {
        (0u32..12, 8u32..=20, 0u32..8).prop_flat_map(|(s, out, extra)| {
            let p = RequantSpec::new(s, s + out + extra).unwrap();
            let half = 1i64 << (p.acc_bits() - 1);
            let edge = 1i64 << (s + out - 1);
            let acc = prop_oneof![-half..half, -edge - 5..-edge + 5, edge - 5..edge + 5, -300i64..300]
                .prop_map(move |a| a.clamp(-half, half - 1));
            (Just(p), Just(out), acc)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(8), ..ProptestConfig::default() })]
        #[test]
        fn wide_signed_matches_native((p, out, acc) in wide_cases()) {
            let hint = RequantHint::signed_bits(acc, p, out).unwrap();
            let (sat, y, n) = run_wide(acc, p, out, &hint);
            prop_assert!(sat);
            prop_assert_eq!(y, int_to_field(requantize_signed_bits_native(acc, p, out).unwrap()));
            prop_assert_eq!(n, requant_signed_constraints(p));
            if out == 8 {
                prop_assert_eq!(hint, RequantHint::signed(acc, p).unwrap());
            }
        }

        /// Another output (an honest witness of another accumulator, or the output moved by
        /// one) is rejected against the true accumulator.
        #[test]
        fn wide_signed_wrong_output_rejected(((p, out, acc), other) in wide_cases().prop_flat_map(|c| (Just(c), -70000i64..70000))) {
            let other = other.clamp(-(1i64 << (p.acc_bits() - 1)), (1i64 << (p.acc_bits() - 1)) - 1);
            let y = requantize_signed_bits_native(acc, p, out).unwrap();
            prop_assume!(requantize_signed_bits_native(other, p, out).unwrap() != y);
            prop_assert!(!run_wide(acc, p, out, &RequantHint::signed_bits(other, p, out).unwrap()).0);
            let mut hint = RequantHint::signed_bits(acc, p, out).unwrap();
            hint.y += F::ONE;
            prop_assert!(!run_wide(acc, p, out, &hint).0);
        }
    }

    #[test]
    fn wide_signed_edges_and_widths() {
        let p = RequantSpec::new(4, 24).unwrap();
        for (acc, y) in
            [(-(1 << 23), -32768), (-32768 * 16, -32768), (-1, -1), (32767 * 16 + 15, 32767), ((1 << 23) - 1, 32767)]
        {
            assert_eq!(requantize_signed_bits_native(acc, p, 16), Ok(y), "acc {acc}");
            let (sat, out, _) = run_wide(acc, p, 16, &RequantHint::signed_bits(acc, p, 16).unwrap());
            assert!(sat, "acc {acc}");
            assert_eq!(out, int_to_field(y));
        }
        // too few accumulator bits above the shift for 16 output bits
        assert!(RequantHint::signed_bits(0, RequantSpec::new(10, 25).unwrap(), 16).is_err());
        assert!(RequantHint::signed_bits(0, p, 33).is_err());
    }

    fn signed_acc_in(p: RequantSpec) -> impl Strategy<Value = i64> {
        let half = 1i64 << (p.acc_bits() - 1);
        let edge = 1i64 << (p.shift() + 7);
        prop_oneof![-half..half, -edge - 5..-edge + 5, edge - 5..edge + 5, -300i64..300]
            .prop_map(move |a| a.clamp(-half, half - 1))
    }

    #[test]
    fn signed_edges() {
        let p = RequantSpec::new(4, 16).unwrap();
        for (acc, y) in
            [(-32768, -128), (-128 * 16, -128), (-128 * 16 + 15, -128), (-127 * 16 - 1, -128), (-1, -1), (0, 0)]
                .into_iter()
                .chain([(15, 0), (127 * 16 + 15, 127), (128 * 16, 127), (32767, 127)])
        {
            assert_eq!(requantize_signed_native(acc, p), Ok(y), "acc {acc}");
            let (sat, out, _) = run_signed(acc, p, &RequantHint::signed(acc, p).unwrap());
            assert!(sat, "acc {acc}");
            assert_eq!(out, int_to_field(i64::from(y)));
        }
        assert!(requantize_signed_native(32768, p).is_err());
        // the narrowest width: no bits above the output bits
        let tight = RequantSpec::new(2, 10).unwrap();
        for acc in [-512, -100, 0, 100, 511] {
            let (sat, out, _) = run_signed(acc, tight, &RequantHint::signed(acc, tight).unwrap());
            assert!(sat);
            assert_eq!(out, int_to_field(i64::from(requantize_signed_native(acc, tight).unwrap())));
        }
    }

    #[test]
    fn sign_flip_with_consistent_output_rejected() {
        // A negative accumulator claimed non-negative: flip the sign bit and set y, ok, inv
        // to what a positive reading would give; the recomposition no longer equals acc.
        let p = RequantSpec::new(2, 12).unwrap();
        let acc = -40;
        let honest = RequantHint::new(acc, p).unwrap();
        let fake = RequantHint::new(acc + (1 << 11), p).unwrap();
        assert_ne!(honest.y, fake.y);
        assert!(!run(acc, p, &fake).0);
    }

    #[test]
    fn remainder_out_of_range_rejected() {
        // acc = q·2^s + r; claim quotient q-1 with remainder r + 2^s: the recomposition holds
        // only if "bit 0" carries 2^s, which booleanity rejects.
        let p = RequantSpec::new(4, 16).unwrap();
        let acc = 16 * 9 + 3;
        let mut hint = RequantHint::new(acc - 16, p).unwrap(); // quotient 8, remainder 3
        hint.bits[0] += F::from(16); // remainder 19 >= 2^4
        assert_eq!(hint.y, F::from(8));
        assert!(!run(acc, p, &hint).0);
    }

    #[test]
    fn wrong_saturation_flag_rejected() {
        let p = RequantSpec::new(3, 16).unwrap();
        for acc in [-5i64, 100, 5000] {
            let mut hint = RequantHint::new(acc, p).unwrap();
            hint.ok = F::ONE - hint.ok;
            // keep y consistent with the flipped flag so only the is-zero check can catch it
            let honest_y = hint.y;
            hint.y = if hint.ok == F::ONE { F::from(((acc.max(0) >> 3) & 127) as u64) } else { honest_y };
            assert!(!run(acc, p, &hint).0, "acc {acc}");
        }
    }
}
