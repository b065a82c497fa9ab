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

use super::bits::{add_constant, alloc_bits, lc, weighted_sum};
use crate::quant::{bits_le, requantize_native, QuantError, RequantSpec, ACT_BITS, ACT_MAX};
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
        let b = p.acc_bits();
        let s = p.shift();
        let biased = (acc + (1i64 << (b - 1))) as u64;
        let pos = biased >> (b - 1) & 1;
        let hi = (biased & ((1u64 << (b - 1)) - 1)) >> (s + ACT_BITS);
        let g = hi + (1 - pos) * (1u64 << (b - s - ACT_BITS - 1));
        let g = F::from(g);
        Ok(Self {
            bits: bits_le(biased, b),
            inv: g.invert().unwrap_or(F::ZERO),
            ok: if g == F::ZERO { F::ONE } else { F::ZERO },
            y: F::from(u64::from(y)),
        })
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
    let b = p0.acc_bits() as usize;
    if hint.bits.len() != b || p1.acc_bits() as usize != b {
        return Err(SynthesisError::Unsatisfiable("witness has the wrong length".into()));
    }
    let a = ACT_BITS as usize;
    let bits = alloc_bits(&mut cs.namespace(|| "bits"), &hint.bits)?;
    let sign = &bits[b - 1];
    let acc = add_constant::<CS>(weighted_sum(&bits), -F::from(2).pow_vartime([b as u64 - 1]));
    // the output bits and g = hi + k·(1 - sign) at shift s, with their values
    let at = |s: usize| {
        let l = weighted_sum(&bits[s..s + a]);
        let hi = weighted_sum(&bits[s + a..b - 1]);
        let k = F::from(2).pow_vartime([(b - s - a - 1) as u64]);
        let g = lc(&hi) + (k, CS::one()) - (k, sign.get_variable());
        let g_value = hi.get_value().zip(sign.get_value()).map(|(h, sg)| h + k * (F::ONE - sg));
        ((lc(&l), l.get_value()), (g, g_value))
    };
    let (s0, s1) = (p0.shift() as usize, p1.shift() as usize);
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
    let max = F::from(u64::from(ACT_MAX));
    cs.enforce(
        || "ok*(l-127) = y-127*sign",
        |lc| lc + ok.get_variable(),
        |_| l - (max, CS::one()),
        |lc| lc + y.get_variable() - (max, sign.get_variable()),
    );
    Ok((lc(&acc), y))
}

/// Constraints per output of [`requantize_relu`].
pub fn requant_constraints(p: RequantSpec) -> usize {
    p.acc_bits() as usize + 3
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
        let mut cs = TestConstraintSystem::<F>::new();
        let acc_var = AllocatedNum::alloc_input(cs.namespace(|| "acc"), || Ok(int_to_field(acc))).unwrap();
        let (acc_lc, y) = requantize_relu(&mut cs, p, hint).unwrap();
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
