//! Tests of [`super`]: the gadget against its native twin, its constraint count, and
//! wrong witnesses.

use super::*;
use crate::quant::int_to_field;
use nova_snark::frontend::test_cs::TestConstraintSystem;
use proptest::prelude::*;

/// Synthesizes one row; the satisfaction, the first unsatisfied constraint, the
/// outputs and the constraint count.
fn run(x: &[i8], spec: &SoftmaxSpec, hint: &SoftmaxHint) -> (Option<String>, Vec<Option<F>>, usize) {
    let mut cs = TestConstraintSystem::<F>::new();
    let inputs: Vec<_> = x
        .iter()
        .enumerate()
        .map(|(j, &v)| {
            let x = AllocatedNum::alloc(cs.namespace(|| format!("x{j}")), || Ok(int_to_field(i64::from(v)))).unwrap();
            (LinearCombination::zero() + x.get_variable(), x.get_value())
        })
        .collect();
    let out = softmax(&mut cs, spec, &inputs, hint).unwrap();
    let unsat = cs.which_is_unsatisfied().map(str::to_string);
    (unsat, out.iter().map(Num::get_value).collect(), cs.num_constraints())
}

fn specs() -> impl Strategy<Value = SoftmaxSpec> {
    (1usize..=12, 2u32..=7, 1u32..=8, 0u32..=6)
        .prop_filter_map("valid", |(n, f, k, extra)| SoftmaxSpec::new(n, f, k, k + 4 + extra).ok())
}

fn rows() -> impl Strategy<Value = (SoftmaxSpec, Vec<i8>)> {
    specs().prop_flat_map(|s| {
        let row = prop_oneof![
            proptest::collection::vec(any::<i8>(), s.n()),
            proptest::collection::vec(-6i8..6, s.n()),
            proptest::collection::vec(prop_oneof![Just(-128i8), Just(127)], s.n()),
        ];
        (Just(s), row)
    })
}

/// The exact base-2 softmax of the dequantized row.
fn exact(x: &[i8], f: u32) -> Vec<f64> {
    let m = f64::from(*x.iter().max().unwrap());
    let e: Vec<f64> = x.iter().map(|&v| ((f64::from(v) - m) / f64::from(1 << f)).exp2()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(17), ..ProptestConfig::default() })]
    #[test]
    fn matches_native((spec, x) in rows()) {
        let hint = SoftmaxHint::new(&x, &spec).unwrap();
        let (unsat, out, count) = run(&x, &spec, &hint);
        prop_assert_eq!(unsat, None);
        let native = softmax_native(&x, &spec).unwrap();
        let expect: Vec<_> = native.iter().map(|&p| Some(F::from(u64::from(p)))).collect();
        prop_assert_eq!(out, expect);
        prop_assert_eq!(count, softmax_constraints(&spec));
    }

    /// Against the float softmax: within 0.5 (rounding) + 1/8 (the reciprocal's floor)
    /// output steps plus the table's relative error `2^-(P+1)` of the largest output.
    #[test]
    fn error_against_float((spec, x) in rows()) {
        let out = softmax_native(&x, &spec).unwrap();
        let step = f64::from(1u32 << spec.out_bits());
        let table_err = 2f64.powi(-(spec.table_bits() as i32)) * step;
        for (p, e) in out.iter().zip(exact(&x, spec.frac_bits())) {
            let err = (f64::from(*p) - e * step).abs();
            prop_assert!(err <= 0.625 + table_err, "{} vs {} ({} steps)", p, e * step, err);
        }
    }

    #[test]
    fn wrong_output_rejected((spec, x) in rows(), j in any::<prop::sample::Index>(), up in any::<bool>()) {
        let mut hint = SoftmaxHint::new(&x, &spec).unwrap();
        let j = j.index(spec.n());
        let p = &mut hint.outputs[j];
        *p = if up || *p == 0 { *p + 1 } else { *p - 1 };
        prop_assert!(run(&x, &spec, &hint).0.is_some());
    }

    /// A maximum above the true one keeps every difference in range: only `Π d = 0`
    /// catches it.
    #[test]
    fn maximum_above_the_row_rejected((spec, x) in rows().prop_filter("room above", |(_, x)| x.iter().all(|&v| v > -128) && *x.iter().max().unwrap() < 127)) {
        let m = *x.iter().max().unwrap() + 1;
        let hint = SoftmaxHint::at_max(&x, m, &spec).unwrap();
        let unsat = run(&x, &spec, &hint).0;
        prop_assert_eq!(unsat.as_deref(), Some("max is a logit/product is zero"));
    }

    #[test]
    fn maximum_below_the_row_rejected((spec, x) in rows().prop_filter("room below", |(_, x)| *x.iter().max().unwrap() > -128)) {
        let m = *x.iter().max().unwrap() - 1;
        let hint = SoftmaxHint::at_max(&x, m, &spec).unwrap();
        prop_assert!(run(&x, &spec, &hint).0.is_some());
    }

    /// `ρ ± 1` with the remainder that keeps `ρ·S = 2^M - rem` true and every output
    /// and rounding remainder recomputed for it: only the range of `rem` (for `ρ + 1`,
    /// which makes it negative) or of `S - 1 - rem` (for `ρ - 1`, which makes it `>= S`)
    /// can reject it.
    #[test]
    fn wrong_reciprocal_rejected((spec, x) in rows(), up in any::<bool>()) {
        let table = exp2_table(&spec);
        let m = *x.iter().max().unwrap();
        let e: Vec<u128> = x.iter().map(|&v| weight(&spec, &table, (i32::from(m) - i32::from(v)) as u32)).collect();
        let sum: u128 = e.iter().sum();
        let mut hint = SoftmaxHint::new(&x, &spec).unwrap();
        if up {
            hint.rho += 1;
            hint.rem = hint.rem.wrapping_sub(sum);
        } else {
            hint.rho -= 1;
            hint.rem += sum;
        }
        let shift = spec.recip_bits() - spec.out_bits();
        for (j, e) in e.iter().enumerate() {
            let v = e * hint.rho + (1 << (shift - 1));
            hint.outputs[j] = (v >> shift) as u32;
            hint.rems[j] = v & ((1 << shift) - 1);
        }
        prop_assert!(run(&x, &spec, &hint).0.is_some());
    }

    /// The rounding remainder moved by one step with the output moved against it keeps
    /// the equation but leaves the remainder's range.
    #[test]
    fn remainder_out_of_range_rejected((spec, x) in rows(), j in any::<prop::sample::Index>()) {
        let mut hint = SoftmaxHint::new(&x, &spec).unwrap();
        let j = j.index(spec.n());
        prop_assume!(hint.outputs[j] > 0);
        hint.outputs[j] -= 1;
        hint.rems[j] += 1 << (spec.recip_bits() - spec.out_bits());
        prop_assert!(run(&x, &spec, &hint).0.is_some());
    }

    #[test]
    fn non_boolean_difference_bit_rejected((spec, x) in rows(), j in any::<prop::sample::Index>(), bit in 0usize..7) {
        let mut hint = SoftmaxHint::new(&x, &spec).unwrap();
        let j = j.index(spec.n());
        hint.low_bits[j][bit] += F::from(2);
        prop_assert!(run(&x, &spec, &hint).0.is_some());
    }
}

/// The table is within rounding of `2^P·2^(-r/2^f)` and never near a tie, so every
/// platform's IEEE arithmetic rounds it the same way.
#[test]
fn table_is_exact_and_far_from_ties() {
    for f in 2..=7 {
        for p in 1..=24 {
            let spec = SoftmaxSpec::new(1, f, 1, p).unwrap();
            for (r, &t) in exp2_table(&spec).iter().enumerate() {
                let exact = 2f64.powi(p as i32) * (-(r as f64) / f64::from(1 << f)).exp2();
                assert!((t as f64 - exact).abs() <= 0.5, "f {f} P {p} r {r}");
                assert!(((exact - exact.floor()) - 0.5).abs() > 1e-6, "tie at f {f} P {p} r {r}");
            }
        }
    }
}

#[test]
fn constraints_at_the_documented_shape() {
    let spec = SoftmaxSpec::new(32, 4, 8, 12).unwrap();
    assert_eq!(softmax_constraints(&spec), 32 * 69 + 117);
}

/// The documented error at `K = 8, P = 12`, rows of 32: at most 0.52 output steps
/// (measured 0.509) against the exact softmax of the dequantized logits.
#[test]
fn measured_error_at_the_documented_shape() {
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        ProptestConfig::default(),
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let row = proptest::collection::vec(prop_oneof![any::<i8>(), -16i8..16], 32);
    for f in [3, 4, 5] {
        let spec = SoftmaxSpec::new(32, f, 8, 12).unwrap();
        let mut worst = 0f64;
        for _ in 0..4000 {
            let x = proptest::strategy::ValueTree::current(&row.new_tree(&mut runner).unwrap());
            let out = softmax_native(&x, &spec).unwrap();
            for (p, e) in out.iter().zip(exact(&x, f)) {
                worst = worst.max((f64::from(*p) - e * 256.0).abs());
            }
        }
        assert!(worst <= 0.52, "f {f}: {worst} steps");
        assert!(worst >= 0.5, "f {f}: {worst} steps: rounding should reach half a step");
    }
}

#[test]
fn uniform_row_is_uniform() {
    let spec = SoftmaxSpec::new(4, 4, 8, 12).unwrap();
    assert_eq!(softmax_native(&[5; 4], &spec).unwrap(), vec![64; 4]);
    assert_eq!(softmax_native(&[-128, -128, 127, -128], &spec).unwrap(), vec![0, 0, 256, 0]);
}

#[test]
fn bad_specs_are_refused() {
    assert!(SoftmaxSpec::new(0, 4, 8, 12).is_err());
    assert!(SoftmaxSpec::new(4, 1, 8, 12).is_err());
    assert!(SoftmaxSpec::new(4, 8, 8, 12).is_err());
    assert!(SoftmaxSpec::new(4, 4, 8, 7).is_err());
    assert!(SoftmaxSpec::new(4, 4, 17, 20).is_err());
    assert!(SoftmaxSpec::new(1 << 20, 2, 16, 24).is_err(), "M over 120");
    let spec = SoftmaxSpec::new(3, 4, 8, 12).unwrap();
    assert!(matches!(softmax_native(&[1, 2], &spec), Err(QuantError::WrongLength { .. })));
}
