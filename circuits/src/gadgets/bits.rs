//! Bit decomposition: the range-check primitive every other gadget stands on.
//!
//! Witness values are given as field elements (not `bool`) so that wrong-witness tests
//! can inject a non-boolean "bit" and watch the booleanity constraint reject it.

use crate::{quant::bits_le, F};
use ff::Field;
use nova_snark::frontend::{
    num::{AllocatedNum, Num},
    ConstraintSystem, LinearCombination, SynthesisError,
};

/// Allocates one variable per value and constrains each to be 0 or 1 (one constraint each).
pub fn alloc_bits<CS: ConstraintSystem<F>>(cs: &mut CS, values: &[F]) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let b = AllocatedNum::alloc(cs.namespace(|| format!("b{i}")), || Ok(v))?;
            cs.enforce(
                || format!("b{i} is boolean"),
                |lc| lc + b.get_variable(),
                |lc| lc + CS::one() - b.get_variable(),
                |lc| lc,
            );
            Ok(b)
        })
        .collect()
}

/// `Σ 2^i · bits[i]` as a [`Num`] (a linear combination with its value; no constraint).
pub fn weighted_sum(bits: &[AllocatedNum<F>]) -> Num<F> {
    let mut coeff = F::ONE;
    let mut acc = Num::zero();
    for b in bits {
        acc = acc.add(&Num::from(b.clone()).scale(coeff));
        coeff = coeff.double();
    }
    acc
}

/// Adds the constant `c` to a [`Num`].
pub fn add_constant<CS: ConstraintSystem<F>>(n: Num<F>, c: F) -> Num<F> {
    use nova_snark::frontend::Boolean;
    n.add_bool_with_coeff(CS::one(), &Boolean::Constant(true), c)
}

/// Range check: allocates an unsigned value `x` of `n` bits and returns it as a [`Num`]
/// of one variable (`n` constraints, `n` variables). Its twin is [`uint_native`].
///
/// The low `n - 1` bits are allocated as booleans and `x` itself takes the top bit's
/// place: with `l = Σ_{i<n-1} 2^i·b_i`, the constraint `(x - l)·(x - l - 2^(n-1)) = 0`
/// says `x - l ∈ {0, 2^(n-1)}`, so `x = l + 2^(n-1)·b` for a boolean `b`: `x ∈ [0, 2^n)`.
/// Every later use of `x` reads one variable instead of the `n` terms of its bits (a
/// product's or a hash's row would otherwise repeat them: the prover's memory and folding
/// time grow with those entries).
pub fn alloc_uint<CS: ConstraintSystem<F>>(cs: &mut CS, bit_values: &[F]) -> Result<Num<F>, SynthesisError> {
    let Some((_, low_values)) = bit_values.split_last() else {
        return Ok(Num::zero());
    };
    let low = weighted_sum(&alloc_bits(cs, low_values)?).lc(F::ONE);
    let value = bit_values.iter().rev().fold(F::ZERO, |acc, &b| acc.double() + b);
    let x = AllocatedNum::alloc(cs.namespace(|| "value"), || Ok(value))?;
    let top = F::from(2).pow_vartime([low_values.len() as u64]);
    cs.enforce(
        || "top bit is boolean",
        |lc| lc + x.get_variable() - &low,
        |lc| lc + x.get_variable() - &low - (top, CS::one()),
        |lc| lc,
    );
    Ok(Num::from(x))
}

/// The low bits of a range-checked linear combination and `v - l`, its part above them
/// ([`range_check_lc`]).
pub type Split = (Vec<AllocatedNum<F>>, LinearCombination<F>);

/// Range check of a linear combination, `v ∈ [0, 2^n)` with `n = low.len() + 1`, at `n`
/// constraints: [`alloc_uint`]'s construction without a variable for `v` (the low bits
/// allocated boolean, the top bit implied by `(v - l)·(v - l - 2^(n-1)) = 0`). Returns the
/// low bits and `v - l`, that is `2^(n-1)` times the top bit.
pub fn range_check_lc<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    v: &LinearCombination<F>,
    low: &[F],
) -> Result<Split, SynthesisError> {
    let bits = alloc_bits(cs, low)?;
    let top = v.clone() - &lc(&weighted_sum(&bits));
    let weight = F::from(2).pow_vartime([low.len() as u64]);
    cs.enforce(|| "top bit is boolean", |_| top.clone(), |_| top.clone() - (weight, CS::one()), |lc| lc);
    Ok((bits, top))
}

/// Native twin of [`alloc_uint`]: the bit witness of `x`, or `None` if `x >= 2^n`.
pub fn uint_native(x: u64, n: u32) -> Option<Vec<F>> {
    (n >= 64 || x >> n == 0).then(|| bits_le(x, n))
}

/// The linear combination of a [`Num`].
pub fn lc(n: &Num<F>) -> LinearCombination<F> {
    n.lc(F::ONE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    fn check(bit_values: &[F]) -> (bool, Option<F>) {
        let mut cs = TestConstraintSystem::<F>::new();
        let n = alloc_uint(&mut cs, bit_values).unwrap();
        assert_eq!(cs.num_constraints(), bit_values.len());
        let mut counted = crate::count_cs::CountCS::new();
        alloc_uint(&mut counted, bit_values).unwrap();
        assert_eq!(counted.num_aux(), bit_values.len(), "n variables");
        assert_eq!(n.lc(F::ONE).len(), 1, "the value is one variable");
        (cs.is_satisfied(), n.get_value())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(1), ..ProptestConfig::default() })]
        #[test]
        fn range_check_matches_native(x in any::<u64>(), n in 1u32..=63) {
            let x = x & ((1u64 << n) - 1);
            let bits = uint_native(x, n).unwrap();
            let (sat, value) = check(&bits);
            prop_assert!(sat);
            prop_assert_eq!(value, Some(F::from(x)));
        }
    }

    #[test]
    fn out_of_range_value_has_no_witness() {
        assert!(uint_native(128, 7).is_none());
        assert!(uint_native(127, 7).is_some());
    }

    #[test]
    fn non_boolean_bit_is_rejected() {
        // 128 written as "bit0 = 128" keeps the weighted sum right but is not a bit.
        let mut bits = uint_native(0, 7).unwrap();
        bits[0] = F::from(128);
        let (sat, value) = check(&bits);
        assert_eq!(value, Some(F::from(128)));
        assert!(!sat);
        // a negative value (p - 1) cannot be written with 7 booleans either
        let mut bits = uint_native(0, 7).unwrap();
        bits[0] = -F::ONE;
        assert!(!check(&bits).0);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(2), ..ProptestConfig::default() })]
        /// The value stands in for the top bit: one whose part above the low bits is not
        /// 0 or 2^(n-1) (a top "bit" of 2, -1 or anything else) is rejected by exactly that
        /// constraint, however right the low bits are.
        #[test]
        fn a_top_bit_out_of_range_is_rejected(x in any::<u64>(), n in 1u32..=63, top in prop_oneof![Just(2u64), Just(3), 4u64..]) {
            let mut bits = uint_native(x & ((1u64 << n) - 1), n).unwrap();
            for t in [F::from(top), -F::ONE, -F::from(top)] {
                bits[n as usize - 1] = t;
                let mut cs = TestConstraintSystem::<F>::new();
                alloc_uint(&mut cs, &bits).unwrap();
                prop_assert_eq!(cs.which_is_unsatisfied(), Some("top bit is boolean"));
            }
        }
    }
}
