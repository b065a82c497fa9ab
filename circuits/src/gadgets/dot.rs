//! Dot product `Σ w_j·a_j + bias = acc` at one constraint per tap (a tap of a packed layer
//! multiplies a shared factor by several outputs' operands: [`super::pack`]).
//!
//! Products `p_0 … p_{n-2}` are allocated with `w_j·a_j = p_j`; the last product carries
//! the whole sum: `w_{n-1}·a_{n-1} = acc - bias - Σ p_j`. So `n` taps cost `n`
//! constraints and `n - 1` variables, and binding `acc` (a linear combination of the
//! requantization bits) costs nothing extra. A dot product with no taps (an output whose
//! window lies entirely in the padding) costs one linear constraint `bias = acc`.

use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};

/// Witness of a dot product: the values of the products `p_0 … p_{n-2}`.
#[derive(Clone, Debug, PartialEq)]
pub struct DotHint {
    /// `w_j · a_j` for every tap but the last, as field elements.
    pub products: Vec<F>,
}

impl DotHint {
    /// Honest witness from the values of the taps' factors.
    pub fn new(taps: impl Iterator<Item = (F, F)>) -> Self {
        let mut products: Vec<F> = taps.map(|(w, a)| w * a).collect();
        products.pop();
        Self { products }
    }
}

/// Native twin: `bias + Σ w_j·a_j`.
pub fn dot_native(taps: impl Iterator<Item = (i64, i64)>, bias: i64) -> i64 {
    taps.fold(bias, |acc, (w, a)| acc + w * a)
}

/// Constrains `Σ w_j·a_j + bias = acc` (see the module docs).
pub fn dot_product<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    taps: &[(&LinearCombination<F>, &LinearCombination<F>)],
    bias: &LinearCombination<F>,
    acc: &LinearCombination<F>,
    hint: &DotHint,
) -> Result<(), SynthesisError> {
    let Some(((w_last, a_last), rest)) = taps.split_last() else {
        cs.enforce(|| "bias = acc", |_| bias.clone(), |lc| lc + CS::one(), |_| acc.clone());
        return Ok(());
    };
    if hint.products.len() != rest.len() {
        return Err(SynthesisError::Unsatisfiable("witness has the wrong length".into()));
    }
    let mut remainder = acc.clone() - bias;
    for (j, ((w, a), &p)) in rest.iter().zip(&hint.products).enumerate() {
        let p = AllocatedNum::alloc(cs.namespace(|| format!("p{j}")), || Ok(p))?;
        cs.enforce(|| format!("w*a=p{j}"), |_| (*w).clone(), |_| (*a).clone(), |lc| lc + p.get_variable());
        remainder = remainder - p.get_variable();
    }
    cs.enforce(|| "last product closes the sum", |_| (*w_last).clone(), |_| (*a_last).clone(), |_| remainder);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::int_to_field;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    fn run(w: &[i64], a: &[i64], bias: i64, acc: i64, hint: &DotHint) -> (bool, usize) {
        let mut cs = TestConstraintSystem::<F>::new();
        let mut alloc = |name: String, v: i64| {
            let x = AllocatedNum::alloc(cs.namespace(|| name), || Ok(int_to_field(v))).unwrap();
            LinearCombination::zero() + x.get_variable()
        };
        let ws: Vec<_> = w.iter().enumerate().map(|(i, &v)| alloc(format!("w{i}"), v)).collect();
        let as_: Vec<_> = a.iter().enumerate().map(|(i, &v)| alloc(format!("a{i}"), v)).collect();
        let b = alloc("bias".into(), bias);
        let acc = alloc("acc".into(), acc);
        let taps: Vec<_> = ws.iter().zip(&as_).collect();
        dot_product(&mut cs, &taps, &b, &acc, hint).unwrap();
        (cs.is_satisfied(), cs.num_constraints())
    }

    fn hint(taps: impl Iterator<Item = (i64, i64)>) -> DotHint {
        DotHint::new(taps.map(|(w, a)| (int_to_field(w), int_to_field(a))))
    }

    fn case() -> impl Strategy<Value = (Vec<i64>, Vec<i64>, i64)> {
        (0usize..40).prop_flat_map(|n| {
            (
                proptest::collection::vec(-128i64..128, n),
                proptest::collection::vec(0i64..128, n),
                any::<i32>().prop_map(i64::from),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(3), ..ProptestConfig::default() })]
        #[test]
        fn matches_native((w, a, bias) in case()) {
            let taps = || w.iter().copied().zip(a.iter().copied());
            let acc = dot_native(taps(), bias);
            let (sat, n) = run(&w, &a, bias, acc, &hint(taps()));
            prop_assert!(sat);
            prop_assert_eq!(n, w.len().max(1));
        }

        #[test]
        fn wrong_sum_rejected((w, a, bias) in case()) {
            let taps = || w.iter().copied().zip(a.iter().copied());
            let acc = dot_native(taps(), bias);
            prop_assert!(!run(&w, &a, bias, acc + 1, &hint(taps())).0);
        }

        #[test]
        fn wrong_product_rejected((w, a, bias) in case().prop_filter("two taps", |c| c.0.len() >= 2)) {
            let taps = || w.iter().copied().zip(a.iter().copied());
            let acc = dot_native(taps(), bias);
            let mut hint = hint(taps());
            hint.products[0] += F::from(1);
            prop_assert!(!run(&w, &a, bias, acc, &hint).0);
        }
    }
}
