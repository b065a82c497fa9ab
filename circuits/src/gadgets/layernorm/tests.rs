//! Tests of the LayerNorm gadget: against its native twin, against float LayerNorm, and
//! wrong witnesses, each rejected by the constraint that should reject it.

use super::*;
use crate::count_cs::CountCS;
use ff::Field;
use nova_snark::frontend::test_cs::TestConstraintSystem;
use proptest::collection::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

#[derive(Clone, Debug)]
struct Case {
    spec: LayerNormSpec,
    x: Vec<i8>,
    gamma: Vec<i8>,
    beta: Vec<i64>,
}

impl Case {
    fn row(&self) -> Row {
        Row::new(&self.x, &self.gamma, &self.beta, &self.spec).unwrap()
    }
}

/// Synthesizes the row, its inputs allocated (unconstrained) variables, under "ln".
fn synth(case: &Case, hint: &LayerNormHint) -> (TestConstraintSystem<F>, Vec<F>) {
    let mut cs = TestConstraintSystem::<F>::new();
    let mut inputs = |name: &str, values: Vec<i64>| -> Vec<LinearCombination<F>> {
        let mut alloc = |(i, v)| AllocatedNum::alloc(cs.namespace(|| format!("{name}{i}")), || Ok(int_to_field(v)));
        values.into_iter().enumerate().map(|iv| LinearCombination::zero() + alloc(iv).unwrap().get_variable()).collect()
    };
    let x = inputs("x", case.x.iter().map(|&v| v.into()).collect());
    let gamma = inputs("gamma", case.gamma.iter().map(|&v| v.into()).collect());
    let beta = inputs("beta", case.beta.clone());
    let y = layernorm(&mut cs.namespace(|| "ln"), &case.spec, &x, &gamma, &beta, hint).unwrap();
    let values = y.iter().map(|y| y.get_value().unwrap()).collect();
    (cs, values)
}

/// The spec with shift `M + k` (outputs `≈ z·γ / 2^k`), biases up to `2^(shift+7)`, and
/// `extra` accumulator bits above what they need.
fn spec_for(d: usize, eps: u64, m: u32, k: u32, extra: u32) -> LayerNormSpec {
    let shift = m + k;
    let bits = acc_bits_for(d, eps, m, 1 << (shift + 7)).unwrap().max(shift + 8) + extra;
    LayerNormSpec::new(d, eps, m, RequantSpec::new(shift, bits).unwrap()).unwrap()
}

/// Uniform rows, rows of small spread (variance near eps), constant rows, extremes.
fn row(d: usize) -> impl Strategy<Value = Vec<i8>> {
    let narrow = (any::<i8>(), vec(-2i8..=2, d)).prop_map(|(b, n)| n.iter().map(|&n| b.saturating_add(n)).collect());
    prop_oneof![
        vec(any::<i8>(), d),
        narrow,
        any::<i8>().prop_map(move |v| vec![v; d]),
        vec(prop_oneof![Just(-128i8), Just(127)], d)
    ]
}

fn cases(extra: u32) -> impl Strategy<Value = Case> {
    (1usize..=16, prop_oneof![1u64..4, 1u64..1 << 20], 0u32..=24, 0u32..=8)
        .prop_flat_map(move |(d, eps, m, k)| {
            let spec = spec_for(d, eps, m, k, extra);
            let b = 1i64 << (spec.requant.shift() + 7);
            (Just(spec), row(d), vec(any::<i8>(), d), vec(-b..=b, d))
        })
        .prop_map(|(spec, x, gamma, beta)| Case { spec, x, gamma, beta })
}

fn config(seed: u64, cases: u32) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: proptest::test_runner::RngSeed::Fixed(seed), ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(41, 96))]
    #[test]
    fn matches_native(case in cases(0)) {
        let hint = LayerNormHint::new(&case.x, &case.gamma, &case.beta, &case.spec).unwrap();
        let (cs, y) = synth(&case, &hint);
        prop_assert_eq!(cs.which_is_unsatisfied(), None);
        let native = layernorm_native(&case.x, &case.gamma, &case.beta, &case.spec).unwrap();
        prop_assert_eq!(y, native.iter().map(|&v| int_to_field(v.into())).collect::<Vec<_>>());
        prop_assert_eq!(cs.num_constraints(), layernorm_constraints(&case.spec));
    }
}

/// The first unsatisfied constraint once `change` has altered the honest row's integers
/// (the witness then rebuilt from them, out-of-width values modulo their width).
fn tampered(case: &Case, change: impl FnOnce(&mut Row, &Case)) -> Option<String> {
    let mut row = case.row();
    change(&mut row, case);
    let hint = LayerNormHint::from_row(&row, &case.spec).unwrap();
    synth(case, &hint).0.which_is_unsatisfied().map(String::from)
}

/// Rebuilds every stage after the square root.
fn after_sqrt(row: &mut Row, case: &Case) {
    row.recip(&case.spec);
    row.affine(&case.gamma, &case.beta, case.spec.beta_shift());
}

/// `q` replaced by `q + delta`, `R` and everything after recomputed from it.
fn shift_q(row: &mut Row, case: &Case, delta: i128) {
    row.q += delta;
    row.r = case.spec.n(row.v) - row.q * row.q;
    after_sqrt(row, case);
}

/// `ρ` replaced by `ρ + delta`, `rem` and the outputs recomputed from it.
fn shift_rho(row: &mut Row, case: &Case, delta: i128) {
    row.rho += delta;
    row.rem = case.spec.two_m_d() - row.rho * row.q;
    row.affine(&case.gamma, &case.beta, case.spec.beta_shift());
}

const ROOT: [&str; 3] = ["ln/R + t = 2q", "ln/q*q = dV + E - R", "ln/rho*q = 2^M d - rem"];

fn rejected_by(found: Option<String>, allowed: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(found.as_deref().is_some_and(|f| allowed.contains(&f)), "{:?} not in {:?}", found, allowed);
    Ok(())
}

proptest! {
    #![proptest_config(config(42, 48))]
    /// `q ± 1`, the rest of the witness made as consistent with it as it can be.
    #[test]
    fn q_off_by_one_rejected(case in cases(16)) {
        rejected_by(tampered(&case, |r, c| shift_q(r, c, 1)), &ROOT)?;
        prop_assume!(case.row().q >= 2);
        rejected_by(tampered(&case, |r, c| shift_q(r, c, -1)), &ROOT)?;
    }

    #[test]
    fn inconsistent_r_rejected(case in cases(16)) {
        for delta in [1, -1] {
            let wrong = tampered(&case, |r, c| { r.r += delta; after_sqrt(r, c) });
            rejected_by(wrong, &ROOT[..2])?;
        }
    }

    #[test]
    fn rho_off_by_one_rejected(case in cases(16)) {
        rejected_by(tampered(&case, |r, c| shift_rho(r, c, 1)), &ROOT)?;
        prop_assume!(case.row().rho >= 1);
        rejected_by(tampered(&case, |r, c| shift_rho(r, c, -1)), &ROOT)?;
    }

    /// `ρ - 1` with its true remainder `rem + q ≥ q`, which `σ = q - 1 - rem` cannot write in
    /// bits: given as the field value, the range check rejects it.
    #[test]
    fn remainder_out_of_range_rejected(case in cases(16)) {
        let mut row = case.row();
        prop_assume!(row.rho >= 1);
        shift_rho(&mut row, &case, -1);
        let mut hint = LayerNormHint::from_row(&row, &case.spec).unwrap();
        hint.slack.iter_mut().for_each(|b| *b = F::ZERO);
        hint.slack[0] = field(row.q - 1 - row.rem);
        let found = synth(&case, &hint).0.which_is_unsatisfied().map(String::from);
        prop_assert!(found.as_deref().is_some_and(|f| f.starts_with("ln/slack/") && f.ends_with("boolean")), "{:?}", found);
    }

    /// `ρ = (2^M·d - rem')/q` in the field for another remainder `rem' < q`: every product
    /// holds, and only the range check of `ρ` can reject it.
    #[test]
    fn rho_as_a_field_quotient_rejected(case in cases(16)) {
        let (row, spec) = (case.row(), &case.spec);
        prop_assume!(row.q >= 2 && spec.rho_bits() >= 1); // with Wρ = 0, ρ is the constant 0
        let rem = (row.rem + 1) % row.q;
        let rho = field(spec.two_m_d() - rem) * field(row.q).invert().unwrap();
        let mut hint = LayerNormHint::from_row(&row, spec).unwrap();
        (hint.rem, hint.slack) = (wrapped_bits(rem, spec.q_bits()), wrapped_bits(row.q - 1 - rem, spec.q_bits()));
        hint.rho.iter_mut().for_each(|b| *b = F::ZERO);
        hint.rho[0] = rho;
        hint.u = row.c.iter().map(|&c| int_to_field(c) * rho).collect();
        let found = synth(&case, &hint).0.which_is_unsatisfied().map(String::from);
        prop_assert!(found.as_deref().is_some_and(|f| f.starts_with("ln/rho/")), "{:?}", found);
    }

    #[test]
    fn wrong_variance_rejected(case in cases(16)) {
        for delta in [1, -1] {
            prop_assume!(case.row().v + delta >= 0);
            let wrong = tampered(&case, |r, c| { r.v += delta; r.sqrt(&c.spec); after_sqrt(r, c) });
            rejected_by(wrong, &["ln/V = sum c^2/last product closes the sum"])?;
        }
    }

    #[test]
    fn wrong_sum_rejected(case in cases(16)) {
        let wrong = tampered(&case, |r, c| {
            r.sum += 1;
            r.centre(&c.x, &c.spec);
            r.sqrt(&c.spec);
            after_sqrt(r, c)
        });
        rejected_by(wrong, &["ln/S = sum x"])?;
    }

    #[test]
    fn wrong_u_rejected(case in cases(16), i in any::<prop::sample::Index>(), delta in prop_oneof![Just(1i128), Just(-1)]) {
        let i = i.index(case.spec.d);
        let wrong = tampered(&case, |r, c| {
            r.u[i] += delta;
            r.acc[i] = r.u[i] * i128::from(c.gamma[i]) + i128::from(c.beta[i]);
        });
        rejected_by(wrong, &[&format!("ln/y{i}/c*rho = u")])?;
    }

    #[test]
    fn output_off_by_one_rejected(case in cases(0), i in any::<prop::sample::Index>(), delta in prop_oneof![Just(F::ONE), Just(-F::ONE)]) {
        let i = i.index(case.spec.d);
        let mut hint = LayerNormHint::new(&case.x, &case.gamma, &case.beta, &case.spec).unwrap();
        hint.outputs[i].y += delta;
        let found = synth(&case, &hint).0.which_is_unsatisfied().map(String::from);
        prop_assert!(found.as_deref().is_some_and(|f| f.starts_with(&format!("ln/y{i}/requant/"))), "{:?}", found);
    }

    /// Another output with the honest requantization witness of the accumulator that gives
    /// it: only the binding of the accumulator can tell.
    #[test]
    fn output_of_another_accumulator_rejected(case in cases(0), i in any::<prop::sample::Index>(), up in any::<bool>()) {
        let (i, p) = (i.index(case.spec.d), case.spec.requant);
        let acc = fit(case.row().acc[i], p).unwrap();
        let other = if up { acc + (1 << p.shift()) } else { acc - (1 << p.shift()) };
        let claimed = RequantHint::signed(other, p);
        prop_assume!(claimed.as_ref().is_ok_and(|h| h.y != int_to_field(requantize_signed_native(acc, p).unwrap().into())));
        let mut hint = LayerNormHint::new(&case.x, &case.gamma, &case.beta, &case.spec).unwrap();
        hint.outputs[i] = claimed.unwrap();
        rejected_by(synth(&case, &hint).0.which_is_unsatisfied().map(String::from), &[&format!("ln/y{i}/u*gamma = acc - beta")])?;
    }
}

#[test]
fn constant_row_is_the_bias_requantized() {
    let spec = spec_for(12, eps_int(1e-5, 12, 4).unwrap(), 20, 4, 0);
    let unit = 1i64 << 24; // the output's unit in the accumulator (shift 24)
    let beta = vec![
        -(1 << 31),
        -129 * unit,
        -128 * unit,
        -5 * unit - 1,
        -1,
        0,
        1,
        unit,
        127 * unit - 1,
        127 * unit,
        128 * unit,
        (1 << 31) - 1,
    ];
    let gamma: Vec<i8> = (0..12).map(|i| (i * 23 - 128) as i8).collect();
    for v in [-128, -1, 0, 77, 127] {
        let case = Case { spec, x: vec![v; 12], gamma: gamma.clone(), beta: beta.clone() };
        let row = case.row();
        assert_eq!((row.v, row.q), (0, i128::from(spec.eps_int()).isqrt()));
        assert!(row.u.iter().all(|&u| u == 0));
        let expected: Vec<i8> = beta.iter().map(|&b| requantize_signed_native(b, spec.requant()).unwrap()).collect();
        assert_eq!(layernorm_native(&case.x, &gamma, &beta, &spec).unwrap(), expected);
        assert!(expected.contains(&-128) && expected.contains(&127) && expected.contains(&0));
        let (cs, y) = synth(&case, &LayerNormHint::new(&case.x, &gamma, &beta, &spec).unwrap());
        assert!(cs.is_satisfied());
        assert_eq!(y, expected.iter().map(|&v| int_to_field(v.into())).collect::<Vec<_>>());
    }
}

/// The widest rows (half the values at -128, half at 127) reach `V_max`, and their `q` the
/// top bit of `Wq`: the widths hold every row, with no bit to spare.
#[test]
fn widths_hold_the_widest_rows() {
    for d in (1..=16).chain([64, 768, MAX_DIM]) {
        let spec = spec_for(d, 1, 20, 6, 0);
        let x: Vec<i8> = (0..d).map(|i| if i < d / 2 { -128 } else { 127 }).collect();
        let (gamma, beta) = (vec![-128i8; d], vec![0i64; d]);
        let row = Row::new(&x, &gamma, &beta, &spec).unwrap();
        assert_eq!(row.v as u128, v_max(d, 8), "d = {d}");
        assert_eq!(bits_of(row.q as u128), spec.q_bits(), "d = {d}");
        assert!(row.u.iter().all(|&u| u.unsigned_abs() <= u128::from(spec.u_max())), "d = {d}");
        let hint = LayerNormHint::new(&x, &gamma, &beta, &spec).unwrap();
        if d <= 16 {
            let (cs, _) = synth(&Case { spec, x, gamma, beta }, &hint);
            assert_eq!(cs.which_is_unsatisfied(), None, "d = {d}");
        }
    }
}

/// Rows of 16-bit inputs (the wide residual stream): the widest rows reach `V_max` and the
/// top bit of `Wq`; random wide rows give the native twin's outputs in the circuit, and an
/// output moved by one is rejected; a value beyond 16 bits is an error natively.
#[test]
fn sixteen_bit_rows() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for d in (1..=16).chain([64, 768]) {
        let spec = spec_for(d, 1, 20, 6, 0).with_input_bits(16).unwrap();
        let widest: Vec<i16> = (0..d).map(|i| if i < d / 2 { i16::MIN } else { i16::MAX }).collect();
        let random: Vec<i16> = (0..d).map(|_| rng.next_u32() as i16).collect();
        let gamma: Vec<i8> = (0..d).map(|_| rng.next_u32() as i8).collect();
        let beta = vec![0i64; d];
        let row = Row::new(&widest, &gamma, &beta, &spec).unwrap();
        assert_eq!(row.v as u128, v_max(d, 16), "d = {d}");
        assert_eq!(bits_of(row.q as u128), spec.q_bits(), "d = {d}");
        if d > 64 {
            continue;
        }
        for x in [widest, random] {
            let expected = layernorm_native(&x, &gamma, &beta, &spec).unwrap();
            let mut hint = LayerNormHint::new(&x, &gamma, &beta, &spec).unwrap();
            let run = |hint: &LayerNormHint| {
                let mut cs = TestConstraintSystem::<F>::new();
                let mut alloc = |name: &str, v: Vec<i64>| -> Vec<LinearCombination<F>> {
                    let mut one =
                        |(i, v)| AllocatedNum::alloc(cs.namespace(|| format!("{name}{i}")), || Ok(int_to_field(v)));
                    v.into_iter()
                        .enumerate()
                        .map(|iv| LinearCombination::zero() + one(iv).unwrap().get_variable())
                        .collect()
                };
                let xs = alloc("x", x.iter().map(|&v| v.into()).collect());
                let gs = alloc("g", gamma.iter().map(|&v| v.into()).collect());
                let bs = alloc("b", beta.clone());
                let y = layernorm(&mut cs.namespace(|| "ln"), &spec, &xs, &gs, &bs, hint).unwrap();
                (cs.is_satisfied(), y.iter().map(|y| y.get_value().unwrap()).collect::<Vec<_>>())
            };
            let (sat, y) = run(&hint);
            assert!(sat, "d = {d}");
            assert_eq!(y, expected.iter().map(|&v| int_to_field(v.into())).collect::<Vec<_>>());
            hint.outputs[0].y += F::ONE;
            assert!(!run(&hint).0, "d = {d}");
        }
    }
    let narrow = spec_for(4, 1, 20, 6, 0);
    assert!(layernorm_native(&[300i16, 0, 0, 0], &[1; 4], &[0; 4], &narrow).is_err());
    assert!(narrow.with_input_bits(17).is_err());
}

/// A bias shift `k` reads `β·2^k`: the same outputs as the unshifted spec given `β·2^k`,
/// in the circuit as natively; a bias moved by one (an accumulator moved by `2^k`) changes
/// the accepted outputs or is rejected.
#[test]
fn shifted_biases_are_biases_times_two_to_the_k() {
    let mut rng = ChaCha8Rng::seed_from_u64(30);
    let plain = spec_for(16, 3, 20, 6, 12);
    for k in [0, 5, 11] {
        let spec = plain.with_beta_shift(k).unwrap();
        let x: Vec<i8> = (0..16).map(|_| rng.next_u32() as i8).collect();
        let gamma: Vec<i8> = (0..16).map(|_| rng.next_u32() as i8).collect();
        let beta: Vec<i64> = (0..16).map(|_| i64::from(rng.next_u32() as i16)).collect();
        let wide: Vec<i64> = beta.iter().map(|&b| b << k).collect();
        let y = layernorm_native(&x, &gamma, &beta, &spec).unwrap();
        assert_eq!(y, layernorm_native(&x, &gamma, &wide, &plain).unwrap(), "k = {k}");
        let case = Case { spec, x: x.clone(), gamma: gamma.clone(), beta: beta.clone() };
        let hint = LayerNormHint::new(&x, &gamma, &beta, &spec).unwrap();
        let (cs, out) = synth(&case, &hint);
        assert!(cs.is_satisfied(), "k = {k}");
        assert_eq!(out, y.iter().map(|&v| int_to_field(v.into())).collect::<Vec<_>>());
        // the unshifted reading of the same bias is another accumulator
        if k > 0 {
            let unshifted = LayerNormHint::new(&x, &gamma, &beta, &plain).unwrap();
            let bad = Case { spec, ..case.clone() };
            assert!(!synth(&bad, &unshifted).0.is_satisfied(), "k = {k}");
        }
    }
    assert!(plain.with_beta_shift(31).is_err());
}

/// The spec of the accuracy measurement: inputs and outputs at `2^-4`, gains at `2^-6`,
/// eps = 1e-5, `M = 16 + bits(d)`, biases up to 2 (module docs).
fn measured_spec(d: usize) -> (LayerNormSpec, u32) {
    let (f, g, out) = (4, 6, 4);
    let m = 16 + bits_of(d as u128);
    let shift = m + g - out;
    let beta_max = (2 << (m + g)) + (1 << (shift - 1));
    let bits = acc_bits_for(d, eps_int(1e-5, d, f).unwrap(), m, beta_max).unwrap();
    let requant = RequantSpec::new(shift, bits.max(shift + 8)).unwrap();
    (LayerNormSpec::new(d, eps_int(1e-5, d, f).unwrap(), m, requant).unwrap(), f)
}

#[test]
fn pinned_counts() {
    for (d, constraints) in [(1, 62), (16, 712), (64, 2792), (768, 35_463)] {
        let (spec, _) = measured_spec(d);
        let (x, gamma, beta) = (vec![1i8; d], vec![1i8; d], vec![0i64; d]);
        let mut cs = CountCS::new();
        let hint = LayerNormHint::new(&x, &gamma, &beta, &spec).unwrap();
        let lcs = |n: usize| vec![LinearCombination::zero(); n];
        layernorm(&mut cs, &spec, &lcs(d), &lcs(d), &lcs(d), &hint).unwrap();
        assert_eq!((cs.num_constraints(), layernorm_constraints(&spec)), (constraints, constraints), "d = {d}");
    }
}

/// Float LayerNorm in output units: `((x - mean)/sqrt(var + eps)·γ + β)·2^4`, with the
/// normalised values `z` (module docs for the scales).
fn float_layernorm(x: &[i8], gamma: &[i8], beta: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>) {
    let real: Vec<f64> = x.iter().map(|&v| f64::from(v) / 16.0).collect();
    let mean = real.iter().sum::<f64>() / real.len() as f64;
    let var = real.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / real.len() as f64;
    let z: Vec<f64> = real.iter().map(|v| (v - mean) / (var + eps).sqrt()).collect();
    let y = z.iter().zip(gamma).zip(beta).map(|((z, &g), b)| (z * f64::from(g) / 64.0 + b) * 16.0).collect();
    (y, z)
}

/// The module docs' bound on `u / (2^M·z) - 1` for a row: the reciprocal's floor, the square
/// root's floor and the rounding of `E`.
fn relative_bound(row: &Row, spec: &LayerNormSpec, f: u32) -> f64 {
    let (d, q) = (spec.d as f64, row.q as f64);
    let eps_units = 1e-5 * d.powi(4) * 4f64.powi(f as i32);
    let n = spec.n(row.v) as f64;
    let eps_ratio = ((d * row.v as f64 + eps_units) / n).sqrt();
    let reciprocal = q / (2f64.powi(spec.recip_bits() as i32) * d);
    ((1.0 + 1.0 / q) * eps_ratio - 1.0).max(1.0 - (1.0 - reciprocal) * eps_ratio)
}

#[test]
fn error_against_float_layernorm() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut byte = move || rng.next_u32() as u8 as i8;
    for (d, rows, measured) in [
        (1, 50, 0.5),
        (2, 400, 0.661),
        (3, 400, 2.98),
        (8, 300, 1.251),
        (16, 200, 0.578),
        (64, 60, 0.511),
        (768, 6, 0.538),
    ] {
        let (spec, f) = measured_spec(d);
        let mut worst = 0f64;
        for r in 0..rows {
            let base = byte();
            let x: Vec<i8> = match r % 3 {
                0 => (0..d).map(|_| byte()).collect(),
                1 => (0..d).map(|_| base.saturating_add(byte() % 3)).collect(),
                _ => vec![base; d],
            };
            let gamma: Vec<i8> = (0..d).map(|_| byte()).collect();
            let beta_real: Vec<f64> = (0..d).map(|_| f64::from(byte()) / 64.0).collect();
            let half = 1i64 << (spec.requant().shift() - 1);
            let scale = 2f64.powi((spec.recip_bits() + 6) as i32);
            let beta: Vec<i64> = beta_real.iter().map(|b| (b * scale).round() as i64 + half).collect();
            let y = layernorm_native(&x, &gamma, &beta, &spec).unwrap();
            let (expected, z) = float_layernorm(&x, &gamma, &beta_real, 1e-5);
            let rel = relative_bound(&Row::new(&x, &gamma, &beta, &spec).unwrap(), &spec, f);
            for i in 0..d {
                let err = (f64::from(y[i]) - expected[i].clamp(-128.0, 127.0)).abs();
                let bound = 0.5 + (z[i] * f64::from(gamma[i]) / 4.0).abs() * rel + 1e-6;
                assert!(err <= bound, "d {d}, row {r}, element {i}: error {err} above {bound}");
                worst = worst.max(err);
            }
        }
        println!("d = {d}: largest error {worst:.3} output units");
        assert!(worst <= measured + 0.005, "d = {d}: largest error {worst}, documented {measured}");
    }
}

#[test]
fn specs_are_validated() {
    let rq = RequantSpec::new(20, 40).unwrap();
    assert!(LayerNormSpec::new(16, 100, 20, rq).is_ok());
    for (d, eps, m) in [(0, 100, 20), (MAX_DIM + 1, 100, 20), (16, 0, 20), (16, MAX_EPS + 1, 20), (16, 100, 41)] {
        assert!(matches!(LayerNormSpec::new(d, eps, m, rq), Err(QuantError::BadSpec(_))), "{d} {eps} {m}");
    }
    // the accumulator must hold 128·u_max
    let need = acc_bits_for(16, 100, 20, 0).unwrap();
    assert!(LayerNormSpec::new(16, 100, 20, RequantSpec::new(20, need).unwrap()).is_ok());
    assert!(LayerNormSpec::new(16, 100, 20, RequantSpec::new(20, need - 1).unwrap()).is_err());
    // the largest parameters stay in their documented widths
    let big = LayerNormSpec::new(MAX_DIM, MAX_EPS, MAX_RECIP_BITS, RequantSpec::new(0, 62).unwrap()).unwrap();
    assert!(big.q_bits() <= 40 && big.rho_bits() <= 57 && big.u_max() < 1 << 50, "{big:?}");
}

#[test]
fn eps_units() {
    assert_eq!(eps_int(1e-5, 16, 4), Ok(168)); // 1e-5 · 16^4 · 2^8 = 167.77
    assert_eq!(eps_int(0.0, 16, 4), Ok(1));
    assert_eq!(eps_int(1e-12, 2, 0), Ok(1));
    assert!(eps_int(-1e-5, 16, 4).is_err());
    assert!(eps_int(f64::NAN, 16, 4).is_err());
    assert!(eps_int(1.0, MAX_DIM, 20).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    let spec = spec_for(4, 100, 12, 2, 0);
    let wrong = layernorm_native(&[1, 2, 3], &[1; 4], &[0; 4], &spec);
    assert_eq!(wrong, Err(QuantError::WrongLength { what: "layernorm input", expected: 4, got: 3 }));
    assert!(LayerNormHint::new(&[1; 4], &[1; 5], &[0; 4], &spec).is_err());
    // a bias beyond the headroom: the accumulator leaves its range, and no witness exists
    let (x, gamma) = ([-128, 127, -128, 127], [-128i8; 4]);
    let headroom = spec.beta_headroom();
    assert!(layernorm_native(&x, &gamma, &[headroom; 4], &spec).is_ok());
    let big = [i64::MAX - 5; 4];
    assert!(matches!(layernorm_native(&x, &gamma, &big, &spec), Err(QuantError::AccumulatorOutOfRange { .. })));
    assert!(LayerNormHint::new(&x, &gamma, &big, &spec).is_err());
    // the gadget rejects a witness or inputs of the wrong shape
    let case = Case { spec, x: x.to_vec(), gamma: gamma.to_vec(), beta: vec![0; 4] };
    let mut hint = LayerNormHint::new(&case.x, &case.gamma, &case.beta, &spec).unwrap();
    hint.rho.push(F::ZERO);
    let lcs = vec![LinearCombination::zero(); 4];
    let mut cs = TestConstraintSystem::<F>::new();
    assert!(layernorm(&mut cs, &spec, &lcs, &lcs, &lcs, &hint).is_err());
    let hint = LayerNormHint::new(&case.x, &case.gamma, &case.beta, &spec).unwrap();
    assert!(layernorm(&mut cs, &spec, &lcs[..3], &lcs, &lcs, &hint).is_err());
}
