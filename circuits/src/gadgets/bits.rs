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

/// Range check: allocates the `n` bits of an unsigned value and returns it as a [`Num`]
/// (`n` constraints, `n` variables). Its twin is [`uint_native`].
pub fn alloc_uint<CS: ConstraintSystem<F>>(cs: &mut CS, bit_values: &[F]) -> Result<Num<F>, SynthesisError> {
    Ok(weighted_sum(&alloc_bits(cs, bit_values)?))
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
}
