//! Tests of [`super`]: the gadget against its native twin, its constraint count, and
//! wrong witnesses.

use super::*;
use ff::Field;
use nova_snark::frontend::test_cs::TestConstraintSystem;
use proptest::prelude::*;

fn alloc(cs: &mut TestConstraintSystem<F>, name: &str, xs: &[i8]) -> Vec<LinearCombination<F>> {
    xs.iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = AllocatedNum::alloc(cs.namespace(|| format!("{name}{i}")), || Ok(int_to_field(v.into()))).unwrap();
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
                        assert_eq!(i64::from(spec.of_sum(sum).unwrap()), mean_ref(sum, n, rounding), "n {n} sum {sum}");
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
        println!("n {n}: floor error in [{floor_lo:.4}, {floor_hi:.4}], half-up error in [{half_lo:.4}, {half_hi:.4}]");
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

/// A wide add (a 16-bit stream plus an int8 branch to a 16-bit stream) and its operands.
fn wide_case() -> impl Strategy<Value = (AddSpec, Vec<i16>, Vec<i8>)> {
    (1i64..400, 1i64..400, 0u32..10, 8u32..=16, 8u32..=16, 1usize..6).prop_flat_map(|(ma, mb, s, ab, ob, n)| {
        let half = 1i64 << (ab - 1);
        let span = (half + 128) * (ma + mb);
        let bits = (64 - span.leading_zeros() + 2).max(s + ob);
        let spec = AddSpec::wide(ma, mb, 1 << s >> 1, RequantSpec::new(s, bits).unwrap(), ab, ob).unwrap();
        let a = proptest::collection::vec((-half..half).prop_map(|v| v as i16), n);
        (Just(spec), a, proptest::collection::vec(any::<i8>(), n))
    })
}

fn run_wide(spec: &AddSpec, a: &[i16], b: &[i8], hint: &[RequantHint]) -> (bool, Vec<F>, usize) {
    let mut cs = TestConstraintSystem::<F>::new();
    let wide: Vec<LinearCombination<F>> = a
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            LinearCombination::zero()
                + AllocatedNum::alloc(cs.namespace(|| format!("a{i}")), || Ok(int_to_field(v.into())))
                    .unwrap()
                    .get_variable()
        })
        .collect();
    let b = alloc(&mut cs, "b", b);
    let before = cs.num_constraints();
    let out = add(&mut cs, spec, &wide, &b, hint).unwrap();
    (cs.is_satisfied(), values(&out), cs.num_constraints() - before)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(16), ..ProptestConfig::default() })]
    #[test]
    fn wide_add_matches_native_and_rejects_another_output((spec, a, b) in wide_case()) {
        let y = add_wide_native(&spec, &a, &b).unwrap();
        let (ab, ob) = spec.widths();
        let (lo, hi) = (-(1i64 << (ob - 1)), (1i64 << (ob - 1)) - 1);
        for ((&x, &z), &y) in a.iter().zip(&b).zip(&y) {
            let acc = spec.m_a * i64::from(x) + spec.m_b * i64::from(z) + spec.c;
            prop_assert_eq!(i64::from(y), acc.div_euclid(1 << spec.requant().shift()).clamp(lo, hi));
        }
        let mut hint = add_wide_hint(&spec, &a, &b).unwrap();
        let (sat, out, n) = run_wide(&spec, &a, &b, &hint);
        prop_assert!(sat);
        prop_assert_eq!(out, y.iter().map(|&v| int_to_field(v.into())).collect::<Vec<_>>());
        prop_assert_eq!(n, a.len() * output_constraints(spec.requant()));
        hint[0].y += F::ONE;
        prop_assert!(!run_wide(&spec, &a, &b, &hint).0);
        // an operand beyond its width is an error natively
        if ab < 16 {
            let mut wide = a.clone();
            wide[0] = 1 << (ab - 1);
            prop_assert!(add_wide_native(&spec, &wide, &b).is_err());
        }
    }
}

#[test]
fn wide_widths_are_validated() {
    let p = RequantSpec::new(8, 30).unwrap();
    assert!(AddSpec::wide(200, 100, 128, p, 16, 16).is_ok());
    assert!(AddSpec::wide(200, 100, 128, p, 17, 16).is_err());
    assert!(AddSpec::wide(200, 100, 128, RequantSpec::new(8, 23).unwrap(), 16, 16).is_err());
    // an int8 reading of a wide spec is refused
    let wide = AddSpec::wide(1, 1, 0, p, 16, 16).unwrap();
    assert!(add_native(&wide, &[1], &[1]).is_err());
}
