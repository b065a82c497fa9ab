//! Tests of [`super`]: the gadget against its native twin, its constraint count, and
//! wrong witnesses.

use super::*;
use crate::count_cs::CountCS;
use nova_snark::frontend::test_cs::TestConstraintSystem;
use proptest::prelude::*;

/// A product as a caller stores it: `A` row-major, `B` row-major or as its transpose
/// (row-major `Bᵀ`, read through a transposed view), a bias per output or one row of it
/// broadcast over the rows.
#[derive(Clone, Debug)]
struct Case {
    spec: MatMulSpec,
    a: Vec<i8>,
    b: Vec<i8>,
    b_transposed: bool,
    bias: Option<(Vec<i64>, bool)>,
}

impl Case {
    fn a_view<'a, T>(&self, data: &'a [T]) -> View<'a, T> {
        let (n, k, _) = self.spec.dims();
        View::row_major(data, n, k).unwrap()
    }

    fn b_view<'a, T>(&self, data: &'a [T]) -> View<'a, T> {
        let (_, k, m) = self.spec.dims();
        match self.b_transposed {
            true => View::row_major(data, m, k).unwrap().transpose(),
            false => View::row_major(data, k, m).unwrap(),
        }
    }

    fn bias_view<'a, T>(&self, data: &'a [T]) -> Option<View<'a, T>> {
        let (n, _, m) = self.spec.dims();
        let broadcast = self.bias.as_ref()?.1;
        let stride = if broadcast { [0, 1] } else { [m, 1] };
        Some(View::strided(data, (n, m), stride, 0).unwrap())
    }

    fn bias_data(&self) -> &[i64] {
        self.bias.as_ref().map_or(&[], |(b, _)| b)
    }

    fn native(&self) -> Result<Vec<i8>, MatMulError> {
        let (a, b, bias) = (self.a_view(&self.a), self.b_view(&self.b), self.bias_view(self.bias_data()));
        matmul_native(&self.spec, a, b, bias)
    }

    fn accumulators(&self) -> Vec<i64> {
        let (a, b, bias) = (self.a_view(&self.a), self.b_view(&self.b), self.bias_view(self.bias_data()));
        accumulators(&self.spec, a, b, bias).unwrap()
    }

    fn hint(&self) -> MatMulHint {
        let (a, b, bias) = (self.a_view(&self.a), self.b_view(&self.b), self.bias_view(self.bias_data()));
        MatMulHint::new(&self.spec, a, b, bias).unwrap()
    }

    /// An independent reference: plain loops over the stored layouts.
    fn reference(&self) -> Vec<i8> {
        let (n, k, m) = self.spec.dims();
        let b = |t: usize, j: usize| i64::from(if self.b_transposed { self.b[j * k + t] } else { self.b[t * m + j] });
        let bias = |i: usize, j: usize| match &self.bias {
            None => 0,
            Some((v, true)) => v[j],
            Some((v, false)) => v[i * m + j],
        };
        let div = 1i64 << self.spec.requant().shift();
        let mut out = vec![];
        for i in 0..n {
            for j in 0..m {
                let acc = (0..k).map(|t| i64::from(self.a[i * k + t]) * b(t, j)).sum::<i64>() + bias(i, j);
                out.push(acc.div_euclid(div).clamp(-128, 127) as i8);
            }
        }
        out
    }
}

fn alloc(cs: &mut TestConstraintSystem<F>, name: &str, values: impl Iterator<Item = i64>) -> Vec<LinearCombination<F>> {
    values
        .enumerate()
        .map(|(i, v)| {
            let x = AllocatedNum::alloc(cs.namespace(|| format!("{name}{i}")), || Ok(int_to_field(v))).unwrap();
            LinearCombination::zero() + x.get_variable()
        })
        .collect()
}

/// Synthesizes the case with `hint`: the system (to test) and the outputs' values.
fn synth(case: &Case, hint: &MatMulHint) -> (TestConstraintSystem<F>, Vec<F>) {
    let mut cs = TestConstraintSystem::<F>::new();
    let a = alloc(&mut cs, "a", case.a.iter().map(|&v| v.into()));
    let b = alloc(&mut cs, "b", case.b.iter().map(|&v| v.into()));
    let bias = alloc(&mut cs, "bias", case.bias_data().iter().copied());
    let (a, b, bias_view) = (case.a_view(&a), case.b_view(&b), case.bias_view(&bias));
    let out = matmul(&mut cs.namespace(|| "mm"), &case.spec, a, b, bias_view, hint).unwrap();
    let values = out.iter().map(|y| y.get_value().unwrap()).collect();
    (cs, values)
}

/// The narrowest accumulator that holds `k` products and a bias of `bias_bits`.
fn acc_bits_for(k: usize, bias_bits: Option<u32>) -> u32 {
    let need = k as i128 * 128 * 128 + bias_bits.map_or(0, |b| 1i128 << (b - 1));
    129 - need.leading_zeros()
}

fn case() -> impl Strategy<Value = Case> {
    let shape = (1usize..6, 1usize..9, 1usize..14);
    let options = (0u32..14, 0u32..4, prop::option::of(1u32..20), any::<[bool; 3]>());
    (shape, options).prop_flat_map(|((n, k, m), (shift, extra, bias_bits, [transposed, broadcast, packed]))| {
        let acc_bits = acc_bits_for(k, bias_bits).max(shift + 8) + extra;
        let mut spec = MatMulSpec::new(n, k, m, RequantSpec::new(shift, acc_bits).unwrap()).unwrap();
        if let Some(bits) = bias_bits {
            spec = spec.with_bias(bits).unwrap();
        }
        if !packed {
            spec = spec.with_max_slots(1);
        }
        let half = 1i64 << (bias_bits.unwrap_or(1) - 1);
        let bias_len = if broadcast { m } else { n * m };
        let bias = proptest::collection::vec(-half..half, bias_len);
        let a = proptest::collection::vec(any::<i8>(), n * k);
        let b = proptest::collection::vec(any::<i8>(), k * m);
        (a, b, bias).prop_map(move |(a, b, bias)| Case {
            spec,
            a,
            b,
            b_transposed: transposed,
            bias: bias_bits.map(|_| (bias, broadcast)),
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(31), ..ProptestConfig::default() })]
    #[test]
    fn matches_native_and_reference(case in case()) {
        let native = case.native().unwrap();
        prop_assert_eq!(&native, &case.reference());
        let (cs, out) = synth(&case, &case.hint());
        prop_assert!(cs.is_satisfied());
        prop_assert_eq!(out, native.iter().map(|&y| int_to_field(y.into())).collect::<Vec<_>>());
        prop_assert_eq!(cs.num_constraints(), matmul_constraints(&case.spec));
    }

    /// An output off by one (alone, or with the honest witness of a neighbouring
    /// accumulator), a wrong product and a wrong shared sum are each rejected.
    #[test]
    fn wrong_witnesses_rejected(case in case(), pick in any::<prop::sample::Index>(), up in any::<bool>()) {
        let honest = case.hint();
        let (n, _, m) = case.spec.dims();
        let o = pick.index(n * m);
        let step = if up { F::ONE } else { -F::ONE };
        let mut hint = honest.clone();
        hint.requant[o].y += step;
        prop_assert!(!synth(&case, &hint).0.is_satisfied());
        let p = case.spec.requant();
        let moved = case.accumulators()[o] + if up { 1 << p.shift() } else { -(1 << p.shift()) };
        if let Ok(other) = RequantHint::signed(moved, p) {
            let mut hint = honest.clone();
            hint.requant[o] = other;
            prop_assert!(!synth(&case, &hint).0.is_satisfied());
        }
        let mut hint = honest.clone();
        let d = pick.index(hint.dots.len());
        if let Some(product) = hint.dots[d].products.first_mut() {
            *product += step;
            prop_assert!(!synth(&case, &hint).0.is_satisfied());
        }
        let mut hint = honest.clone();
        if !hint.sums.is_empty() {
            let i = pick.index(hint.sums.len());
            hint.sums[i] += step;
            prop_assert!(!synth(&case, &hint).0.is_satisfied());
        }
        // B read as another matrix: the whole witness of B with one entry changed, against
        // the true B. A shared sum's binding is what catches it.
        let mut b = case.b.clone();
        let e = pick.index(b.len());
        b[e] = b[e].wrapping_add(if up { 1 } else { -1 });
        let forged = Case { b, ..case.clone() }.hint();
        let cs = synth(&case, &forged).0;
        if case.spec.shares_sums() {
            prop_assert!(cs.which_is_unsatisfied().is_some_and(|c| c.ends_with("packs B")));
        } else if forged != honest {
            prop_assert!(!cs.is_satisfied());
        }
    }
}

/// The requantization witness of any accumulator whose decomposition fits the gadget's
/// `B + 1` bits, inside the declared range or not (the honest constructor refuses the
/// latter): what a prover moving a carry between slots would need.
fn any_requant(acc: i64, p: RequantSpec) -> Option<RequantHint> {
    let (b, s) = (u64::from(p.acc_bits()), u64::from(p.shift()));
    let biased = u64::try_from(acc + (1 << (s + 7)) + (1 << b)).ok().filter(|&z| z >> (b + 1) == 0)?;
    let sign = biased >> b & 1;
    let hi = (biased & ((1 << b) - 1)) >> (s + 8);
    let g = F::from(hi + (1 - sign) * (1 << (b - s - 8)));
    let ok = g == F::ZERO;
    let y = if ok { ((biased >> s) & 255) as i64 - 128 } else { 255 * sign as i64 - 128 };
    let (inv, ok) = (g.invert().unwrap_or(F::ZERO), if ok { F::ONE } else { F::ZERO });
    Some(RequantHint { bits: crate::quant::bits_le(biased, b as u32 + 1), inv, ok, y: int_to_field(y) })
}

/// The packing argument's one gap would be a carry: slot 0 claims `acc + 2^w` and slot
/// 1 `acc - 1` (or the reverse), which leaves the packed sum unchanged. No `B + 1`
/// boolean bits write the carried accumulator; written with a non-boolean bit, every
/// constraint but that bit's booleanity holds.
#[test]
fn a_carry_between_slots_is_rejected() {
    let p = RequantSpec::new(4, 20).unwrap();
    let spec = MatMulSpec::new(1, 3, 2, p).unwrap();
    assert_eq!(spec.slots(), 2);
    let case = Case { spec, a: vec![3, -7, 100], b: vec![5, 9, -2, 8, 40, -1], b_transposed: false, bias: None };
    assert!(synth(&case, &case.hint()).0.is_satisfied());
    let accs = case.accumulators();
    for &acc in &accs {
        assert_eq!(any_requant(acc, p), Some(RequantHint::signed(acc, p).unwrap()));
    }
    let carry = 1i64 << slot_bits(p);
    assert_eq!(any_requant(accs[0] + carry, p), None);
    assert_eq!(any_requant(accs[0] - carry, p), None);
    let mut hint = case.hint();
    hint.requant[0].bits[0] += int_to_field(carry);
    hint.requant[1] = any_requant(accs[1] - 1, p).unwrap();
    let (cs, _) = synth(&case, &hint);
    assert_eq!(cs.which_is_unsatisfied(), Some("mm/out0_0/bits/b0 is boolean"));
}

/// `Q·Kᵀ` per head, the heads as column blocks of the projections: the views cost
/// nothing (each head costs exactly one product's constraints).
#[test]
fn multi_head_scores_through_views() {
    let (tokens, heads, width) = (3, 2, 4);
    let q: Vec<i8> = (0..tokens * heads * width).map(|i| (i as i8).wrapping_mul(37)).collect();
    let k: Vec<i8> = (0..tokens * heads * width).map(|i| (i as i8).wrapping_mul(-53)).collect();
    let spec = MatMulSpec::new(tokens, width, tokens, RequantSpec::new(6, 20).unwrap()).unwrap();
    let mut cs = TestConstraintSystem::<F>::new();
    let (q_lc, k_lc) =
        (alloc(&mut cs, "q", q.iter().map(|&v| v.into())), alloc(&mut cs, "k", k.iter().map(|&v| v.into())));
    for h in 0..heads {
        fn head<T>(data: &[T], (tokens, heads, width, h): (usize, usize, usize, usize)) -> View<'_, T> {
            View::row_major(data, tokens, heads * width).unwrap().columns(h * width, width).unwrap()
        }
        let at = (tokens, heads, width, h);
        let native = matmul_native(&spec, head(&q, at), head(&k, at).transpose(), None).unwrap();
        // the head copied out, for an independent reference
        let copy = |x: &[i8]| (0..tokens).flat_map(|i| x[i * heads * width + h * width..][..width].to_vec()).collect();
        let case = Case { spec, a: copy(&q), b: copy(&k), b_transposed: true, bias: None };
        assert_eq!(native, case.reference());
        let hint = MatMulHint::new(&spec, head(&q, at), head(&k, at).transpose(), None).unwrap();
        let (qv, kv) = (head(&q_lc, at), head(&k_lc, at).transpose());
        let out = matmul(&mut cs.namespace(|| format!("head{h}")), &spec, qv, kv, None, &hint).unwrap();
        assert_eq!(
            out.iter().map(|y| y.get_value().unwrap()).collect::<Vec<_>>(),
            native.iter().map(|&y| int_to_field(y.into())).collect::<Vec<_>>()
        );
    }
    assert!(cs.is_satisfied());
    assert_eq!(cs.num_constraints(), heads * matmul_constraints(&spec));
}

#[test]
fn accumulator_width_is_checked_exactly() {
    let p = RequantSpec::new(4, 16).unwrap();
    // 128·128 < 2^15 but 2·128·128 = 2^15 does not fit 16 signed bits
    assert!(MatMulSpec::new(2, 1, 2, p).is_ok());
    assert!(matches!(MatMulSpec::new(2, 2, 2, p), Err(MatMulError::AccumulatorTooWide { max: 32768, .. })));
    // plus a bias of 15 bits: at most 16384 + 16383 = 32767, which fits; of 16 bits, not
    let spec = MatMulSpec::new(1, 1, 1, p).unwrap().with_bias(15).unwrap();
    assert!(MatMulSpec::new(1, 1, 1, p).unwrap().with_bias(16).is_err());
    assert_eq!(MatMulSpec::new(1, 1, 1, p).unwrap().with_bias(0), Err(MatMulError::BadBiasBits { bits: 0 }));
    assert_eq!(MatMulSpec::new(0, 1, 1, p), Err(MatMulError::EmptyDimension { n: 0, k: 1, m: 1 }));
    // the extremes are provable
    for (a, b, bias) in [(-128i8, -128i8, 16383i64), (-128, 127, -16384)] {
        let case = Case { spec, a: vec![a], b: vec![b], b_transposed: false, bias: Some((vec![bias], false)) };
        assert_eq!(case.native().unwrap(), case.reference());
        assert!(synth(&case, &case.hint()).0.is_satisfied());
    }
}

#[test]
fn bad_operands_are_errors_not_panics() {
    let spec = MatMulSpec::new(2, 3, 2, RequantSpec::new(4, 20).unwrap()).unwrap();
    let (a, b) = ([1i8; 6], [1i8; 6]);
    let av = View::row_major(&a, 2, 3).unwrap();
    let wrong = View::row_major(&b, 2, 3).unwrap();
    let expected = MatMulError::WrongShape { what: "B", expected: (3, 2), got: (2, 3) };
    assert_eq!(matmul_native(&spec, av, wrong, None), Err(expected));
    let bias = [0i64; 4];
    let bias = View::row_major(&bias, 2, 2).unwrap();
    let bv = wrong.transpose();
    assert_eq!(matmul_native(&spec, av, bv, Some(bias)), Err(MatMulError::BiasMismatch { declared: false }));
    let biased = spec.with_bias(8).unwrap();
    assert_eq!(matmul_native(&biased, av, bv, None), Err(MatMulError::BiasMismatch { declared: true }));
    let big = [0i64, 0, 128, 0];
    let big = View::row_major(&big, 2, 2).unwrap();
    let err = MatMulError::BiasOutOfRange { row: 1, col: 0, value: 128, bits: 8 };
    assert_eq!(matmul_native(&biased, av, bv, Some(big)), Err(err));
    // the gadget refuses a witness of the wrong shape
    let case = Case { spec, a: a.to_vec(), b: b.to_vec(), b_transposed: true, bias: None };
    let mut hint = case.hint();
    hint.requant.pop();
    let mut cs = TestConstraintSystem::<F>::new();
    let lcs = alloc(&mut cs, "x", [1i64; 6].into_iter());
    let (av, bv) = (case.a_view(&lcs), case.b_view(&lcs));
    assert!(matmul(&mut cs, &spec, av, bv, None, &hint).is_err());
}

/// Constraints of one head's attention products at 128 tokens and head width 64,
/// packed and unpacked: the formula, pinned, and counted by synthesis (the full
/// `Q·Kᵀ`, and a quarter of the rows of the others).
#[test]
fn counts_at_attention_sizes() {
    let count = |spec: &MatMulSpec| {
        let (n, k, m) = spec.dims();
        let (a, b) = (vec![0i8; n * k], vec![0i8; k * m]);
        let (av, bv) = (View::row_major(&a, n, k).unwrap(), View::row_major(&b, k, m).unwrap());
        let hint = MatMulHint::new(spec, av, bv, None).unwrap();
        let (la, lb) = (vec![LinearCombination::zero(); n * k], vec![LinearCombination::zero(); k * m]);
        let (av, bv) = (View::row_major(&la, n, k).unwrap(), View::row_major(&lb, k, m).unwrap());
        let mut cs = CountCS::new();
        matmul(&mut cs, spec, av, bv, None, &hint).unwrap();
        cs.num_constraints()
    };
    let quarter = |spec: MatMulSpec| {
        let (n, k, m) = spec.dims();
        let part = MatMulSpec::new(n / 4, k, m, spec.requant()).unwrap().with_max_slots(spec.slots());
        assert_eq!(count(&part), matmul_constraints(&part));
    };
    // Q·Kᵀ: 128×64 by 64×128, |acc| ≤ 2^20: 22 bits, 10 slots
    let scores = MatMulSpec::new(128, 64, 128, RequantSpec::new(8, 22).unwrap()).unwrap();
    assert_eq!(scores.slots(), 10);
    assert_eq!(matmul_constraints(&scores), 533_312);
    assert_eq!(count(&scores), 533_312);
    assert_eq!(matmul_constraints(&scores.with_max_slots(1)), 128 * 128 * (64 + 26));
    quarter(scores.with_max_slots(1));
    // attention·V: 128×128 by 128×64, |acc| ≤ 2^21: 23 bits, 10 slots
    let mixed = MatMulSpec::new(128, 128, 64, RequantSpec::new(7, 23).unwrap()).unwrap();
    assert_eq!(matmul_constraints(&mixed), 336_768);
    assert_eq!(matmul_constraints(&mixed.with_max_slots(1)), 128 * 64 * (128 + 27));
    quarter(mixed);
    quarter(mixed.with_max_slots(1));
}
