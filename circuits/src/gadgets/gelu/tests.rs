//! Tests of [`super`]: the circuit against its native twin, the accuracy against exact GELU,
//! and wrong witnesses.

use super::*;
use crate::count_cs::CountCS;
use crate::quant::requantize_signed_native;
use nova_snark::frontend::test_cs::TestConstraintSystem;
use proptest::prelude::*;
use std::f64::consts::{PI, SQRT_2};

type Cs = TestConstraintSystem<F>;

/// Synthesizes the gadget on `x` passed as the linear combination `(x + offset) - offset`
/// of two inputs: the gadget may assume nothing of its shape or value.
fn synth(spec: GeluSpec, x: F, offset: F, hint: &GeluHint) -> (Cs, F) {
    let mut cs = Cs::new();
    let a = AllocatedNum::alloc_input(cs.namespace(|| "a"), || Ok(x + offset)).unwrap();
    let b = AllocatedNum::alloc_input(cs.namespace(|| "b"), || Ok(offset)).unwrap();
    let x = LinearCombination::zero() + a.get_variable() - b.get_variable();
    let y = gelu(&mut cs, spec, &x, hint).unwrap();
    (cs, y.get_value().unwrap())
}

/// The first unsatisfied constraint, `None` if the witness is accepted.
fn rejection(spec: GeluSpec, x: F, hint: &GeluHint) -> Option<String> {
    synth(spec, x, F::ZERO, hint).0.which_is_unsatisfied().map(String::from)
}

fn field(x: i8) -> F {
    int_to_field(i64::from(x))
}

fn all_specs() -> impl Iterator<Item = GeluSpec> {
    (2..=6).flat_map(|f| (0..=7).map(move |g| GeluSpec::new(f, g).unwrap()))
}

fn default_specs() -> impl Iterator<Item = GeluSpec> {
    (2..=6).map(|f| GeluSpec::same_scale(f).unwrap())
}

fn specs() -> impl Strategy<Value = GeluSpec> {
    (2u32..=6, 0u32..=7).prop_map(|(f, g)| GeluSpec::new(f, g).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]
    #[test]
    fn matches_native(spec in specs(), x in any::<i8>(), offset in any::<u64>()) {
        let (cs, y) = synth(spec, field(x), F::from(offset), &GeluHint::new(x, spec).unwrap());
        prop_assert!(cs.is_satisfied());
        prop_assert_eq!(y, field(gelu_native(x, spec)));
        prop_assert_eq!(cs.num_constraints(), gelu_constraints(spec));
    }
}

#[test]
fn every_input_matches_native_at_the_default_scales() {
    for spec in default_specs() {
        for x in i8::MIN..=i8::MAX {
            let (cs, y) = synth(spec, field(x), F::ZERO, &GeluHint::new(x, spec).unwrap());
            assert!(cs.is_satisfied(), "{spec:?} x {x}");
            assert_eq!(y, field(gelu_native(x, spec)), "{spec:?} x {x}");
        }
    }
}

#[test]
fn constraint_counts() {
    let pinned: Vec<_> = default_specs().map(gelu_constraints).collect();
    assert_eq!(pinned, [45, 47, 49, 51, 44]);
    for spec in all_specs() {
        let b = spec.requant().acc_bits() as usize;
        assert_eq!(gelu_constraints(spec), b + 15 + if spec.clips() { 9 } else { 0 });
        let mut counted = CountCS::new();
        gelu(&mut counted, spec, &LinearCombination::zero(), &GeluHint::new(0, spec).unwrap()).unwrap();
        assert_eq!(counted.num_constraints(), gelu_constraints(spec), "{spec:?}");
    }
}

#[test]
fn constants() {
    let clips: Vec<_> = default_specs().map(|s| s.clip()).collect();
    assert_eq!(clips, [10, 20, 40, 80, 160]);
    for (f, &c) in (2..=6).zip(&clips) {
        assert_eq!(c, (1.769 * SQRT_2 * f64::from(1 << f)).round() as i64);
    }
    let spec = GeluSpec::same_scale(4).unwrap();
    assert_eq!(spec.k(), 37);
    assert_eq!(spec.k(), (0.2888 * 128.0f64).round() as i64);
    assert_eq!(spec.relu_weight(), 1 << 16);
    assert_eq!(spec.requant(), RequantSpec::new(17, 25).unwrap());
    assert_eq!(GeluSpec::new(4, 1).unwrap().requant(), RequantSpec::new(20, 28).unwrap());
    assert_eq!((spec.frac_bits(), spec.out_frac_bits()), (4, 4));
    assert_eq!([gelu_native(0, spec), gelu_native(16, spec), gelu_native(-16, spec)], [0, 13, -3]);
    assert_eq!([gelu_native(127, spec), gelu_native(-128, spec), gelu_native(-1, spec)], [127, 0, 0]);
}

#[test]
fn specs_are_validated() {
    for (f, g) in [(1, 1), (7, 7), (0, 0), (4, 8), (2, 100), (u32::MAX, 4)] {
        assert!(matches!(GeluSpec::new(f, g), Err(QuantError::BadSpec(_))), "f {f} g {g}");
    }
    assert!(GeluSpec::new(2, 7).is_ok() && GeluSpec::new(6, 0).is_ok());
}

/// The accumulator bound of the module docs, for every input of every spec.
#[test]
fn accumulators_fit() {
    for spec in all_specs() {
        for x in i8::MIN..=i8::MAX {
            let acc = gelu_acc_native(x, spec);
            assert_eq!(requantize_signed_native(acc, spec.requant()), Ok(gelu_native(x, spec)), "{spec:?} {x}");
        }
    }
}

/// `erf` to about 1e-15: below 3 the series `2/√π·e^(-t²)·Σ 2^n t^(2n+1)/(1·3···(2n+1))`
/// (positive terms, no cancellation), above it the continued fraction of `erfc`,
/// `e^(-t²)/√π / (t + (1/2)/(t + 1/(t + (3/2)/(t + …))))`.
fn erf(t: f64) -> f64 {
    if t < 0.0 {
        return -erf(-t);
    }
    if t < 3.0 {
        let (mut term, mut sum, mut n) = (t, t, 0.0);
        while term > 1e-17 * sum {
            n += 1.0;
            term *= 2.0 * t * t / (2.0 * n + 1.0);
            sum += term;
        }
        return 2.0 / PI.sqrt() * (-t * t).exp() * sum;
    }
    let fraction = (1..=60).rev().fold(t, |inner, k| t + f64::from(k) / 2.0 / inner);
    1.0 - (-t * t).exp() / (PI.sqrt() * fraction)
}

fn exact_gelu(x: f64) -> f64 {
    x / 2.0 * (1.0 + erf(x / SQRT_2))
}

/// I-BERT's i-GELU in floating point.
fn i_gelu(x: f64) -> f64 {
    let t = x / SQRT_2;
    x / 2.0 * (1.0 + t.signum() * (-0.2888 * (t.abs().min(1.769) - 1.769).powi(2) + 1.0))
}

#[test]
fn erf_is_accurate() {
    // reference values (Abramowitz and Stegun, table 7.1, and erfc(4), erfc(6))
    let known = [(0.5, 0.520_499_877_813_046_5), (1.0, 0.842_700_792_949_714_9), (2.0, 0.995_322_265_018_952_7)];
    for (t, v) in
        known.into_iter().chain([(3.0, 1.0 - 2.209_049_699_858_544e-5), (4.0, 1.0 - 1.541_725_790_028_002e-8)])
    {
        assert!((erf(t) - v).abs() < 1e-15, "erf({t}) = {}", erf(t));
        assert!((erf(-t) + v).abs() < 1e-15);
    }
    assert!((1.0 - erf(6.0) - 2.151_973_671_249_891e-17).abs() < 1e-16);
    // the two branches meet at 3
    assert!((erf(3.0 - 1e-12) - erf(3.0)).abs() < 1e-15);
}

/// The accuracy table of the module docs: `(f, max error in real units, in output steps)`.
const MEASURED: [(u32, f64, f64); 5] =
    [(2, 0.1179, 0.472), (3, 0.0570, 0.456), (4, 0.0404, 0.646), (5, 0.0314, 1.005), (6, 0.0170, 1.087)];

#[test]
fn error_against_exact_gelu() {
    for (spec, (f, real, steps)) in default_specs().zip(MEASURED) {
        let step = 0.5f64.powi(f as i32);
        let worst = (i8::MIN..=i8::MAX)
            .map(|x| (f64::from(gelu_native(x, spec)) * step - exact_gelu(f64::from(x) * step)).abs())
            .fold(0.0, f64::max);
        assert!((worst - real).abs() < 5e-5 && (worst / step - steps).abs() < 5e-4, "f {f}: {worst}");
    }
}

#[test]
fn close_to_the_float_polynomial() {
    for spec in all_specs() {
        let (input, output) = (0.5f64.powi(spec.frac_bits() as i32), 2f64.powi(spec.out_frac_bits() as i32));
        for x in i8::MIN..=i8::MAX {
            let float = (i_gelu(f64::from(x) * input) * output).clamp(-128.0, 127.0);
            let bound = if spec.out_frac_bits() == spec.frac_bits() { 0.52 } else { 0.53 };
            assert!((f64::from(gelu_native(x, spec)) - float).abs() <= bound, "{spec:?} x {x}");
        }
    }
}

/// Every witness value of a hint, named, for perturbation.
fn fields(h: &mut GeluHint) -> Vec<(String, &mut F)> {
    let mut out: Vec<(String, &mut F)> = vec![];
    out.extend(h.low_bits.iter_mut().enumerate().map(|(i, v)| (format!("low bit {i}"), v)));
    out.push(("abs".into(), &mut h.abs));
    if let Some(clip) = h.clip.as_mut() {
        out.push(("clipped".into(), &mut clip.clipped));
        out.push(("dist".into(), &mut clip.dist));
        out.extend(clip.slack_bits.iter_mut().enumerate().map(|(i, v)| (format!("slack bit {i}"), v)));
    }
    out.push(("square".into(), &mut h.square));
    let rq = &mut h.requant;
    out.extend(rq.bits.iter_mut().enumerate().map(|(i, v)| (format!("requant bit {i}"), v)));
    out.extend([("requant inv".into(), &mut rq.inv), ("requant ok".into(), &mut rq.ok), ("y".into(), &mut rq.y)]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(12), ..ProptestConfig::default() })]
    /// Each witness value moved by +1 and by -1 (a flip, for a bit) is rejected; the one
    /// exception is the requantization's `inv` where its `ok = 1` (module docs), which
    /// `wrong_inverse_rejected_where_it_counts` covers.
    #[test]
    fn every_hint_field_perturbed_is_rejected(spec in specs(), x in any::<i8>()) {
        let honest = GeluHint::new(x, spec).unwrap();
        let n = fields(&mut honest.clone()).len();
        prop_assert_eq!(n, 7 + 2 + if spec.clips() { 8 } else { 0 } + spec.requant().acc_bits() as usize + 4);
        for i in 0..n {
            for delta in [F::ONE, -F::ONE] {
                let mut hint = honest.clone();
                let (name, value) = fields(&mut hint).swap_remove(i);
                if name == "requant inv" && honest.requant.ok == F::ONE {
                    continue;
                }
                *value += delta;
                prop_assert!(rejection(spec, field(x), &hint).is_some(), "{} of x {} moved", name, x);
            }
        }
    }
}

#[test]
fn wrong_inverse_rejected_where_it_counts() {
    // out_frac_bits 7 at frac_bits 2: y saturates from x = 5 (GELU(1.25) > 127/128) up
    let spec = GeluSpec::new(2, 7).unwrap();
    let saturated: Vec<_> =
        (i8::MIN..=i8::MAX).filter(|&x| GeluHint::new(x, spec).unwrap().requant.ok == F::ZERO).collect();
    assert_eq!(saturated, (5..=127).collect::<Vec<i8>>());
    for x in saturated {
        let mut hint = GeluHint::new(x, spec).unwrap();
        hint.requant.inv += F::ONE;
        assert_eq!(rejection(spec, field(x), &hint).as_deref(), Some("requant/g*inv = 1-ok"));
    }
}

#[test]
fn flipped_sign_bit_rejected() {
    for spec in [GeluSpec::same_scale(4).unwrap(), GeluSpec::same_scale(6).unwrap()] {
        for x in i8::MIN..=i8::MAX {
            // the witness of x with bit 7 flipped: the same low bits, the other sign
            let flipped = GeluHint::new(x ^ i8::MIN, spec).unwrap();
            assert!(rejection(spec, field(x), &flipped).is_some(), "x {x}");
            // or the other sign carried into the low bits: bit 6 would have to be 3 or -1
            let mut hint = GeluHint::new(x, spec).unwrap();
            hint.low_bits[6] += if x < 0 { F::from(2) } else { -F::from(2) };
            assert_eq!(rejection(spec, field(x), &hint).as_deref(), Some("x/b6 is boolean"), "x {x}");
        }
    }
}

#[test]
fn wrong_clip_flag_rejected() {
    for spec in default_specs().filter(GeluSpec::clips) {
        let c = spec.clip();
        for x in i8::MIN..=i8::MAX {
            // flip β and make d, d² and the slack's low bits consistent with the flip
            let mut hint = GeluHint::new(x, spec).unwrap();
            let u = i64::from(x).abs();
            let clipped = u < c;
            let d = if clipped { 0 } else { c - u };
            let slack = 2 * d - c - 1 + u + i64::from(clipped);
            let clip = hint.clip.as_mut().unwrap();
            clip.clipped = F::from(u64::from(clipped));
            clip.dist = int_to_field(d);
            clip.slack_bits = bits_le((slack & 63) as u64, 6);
            hint.square = int_to_field(d * d);
            assert!(slack < 0, "x {x}");
            assert_eq!(rejection(spec, field(x), &hint).as_deref(), Some("clip/slack/top bit is boolean"), "x {x}");
            // whatever low bits the slack is given
            if (u - c).abs() <= 1 {
                for low in 0..64 {
                    hint.clip.as_mut().unwrap().slack_bits = bits_le(low, 6);
                    assert_eq!(rejection(spec, field(x), &hint).as_deref(), Some("clip/slack/top bit is boolean"));
                }
            }
        }
    }
}

#[test]
fn out_of_range_x_rejected() {
    let spec = GeluSpec::same_scale(4).unwrap();
    let outside = [128i64, 200, 255, 256, 1 << 40, -129, -200, -256, -(1 << 40)];
    for x in outside.map(int_to_field).into_iter().chain([F::from(2).pow_vartime([200u64])]) {
        // every choice of the low bits, with the rest of the witness of that int8
        for low in 0..=i8::MAX {
            for int8 in [low, low.wrapping_sub(i8::MIN)] {
                let hint = GeluHint::new(int8, spec).unwrap();
                assert_eq!(rejection(spec, x, &hint).as_deref(), Some("x/top bit is boolean"));
            }
        }
    }
}

#[test]
fn wrong_output_rejected() {
    for spec in default_specs() {
        let s = 1i64 << spec.requant().shift();
        for x in i8::MIN..=i8::MAX {
            let honest = GeluHint::new(x, spec).unwrap();
            for delta in [F::ONE, -F::ONE] {
                let mut hint = honest.clone();
                hint.requant.y += delta;
                assert!(rejection(spec, field(x), &hint).is_some(), "x {x}");
            }
            // the honest requantization of a neighbouring accumulator, whose output is y ± 1
            let acc = gelu_acc_native(x, spec);
            for other in [acc - s, acc + s] {
                let Ok(forged) = RequantHint::signed(other, spec.requant()) else { continue };
                let hint = GeluHint { requant: forged, ..honest.clone() };
                assert_eq!(rejection(spec, field(x), &hint).as_deref(), Some("|x|·K·d² = A(x+|x|) + R - acc"));
            }
        }
    }
}

#[test]
fn malformed_hints_are_errors() {
    let (clipping, plain) = (GeluSpec::same_scale(4).unwrap(), GeluSpec::same_scale(6).unwrap());
    let mut short = GeluHint::new(3, clipping).unwrap();
    short.low_bits.pop();
    let mut no_clip = GeluHint::new(3, clipping).unwrap();
    no_clip.clip = None;
    for (spec, hint) in [(clipping, short), (clipping, no_clip), (plain, GeluHint::new(3, clipping).unwrap())] {
        let mut cs = Cs::new();
        assert!(gelu(&mut cs, spec, &LinearCombination::zero(), &hint).is_err());
    }
}

/// The witness an honest prover would derive from claimed `|x| = u`, `d` and `d² = q`:
/// the clip flag and slack from `u` and `d`, the requantization of the accumulator they
/// give (`None` where that accumulator is out of range).
fn derived(x: i8, spec: GeluSpec, u: i64, d: i64, q: i64) -> Option<GeluHint> {
    let mut hint = GeluHint::new(x, spec).unwrap();
    hint.abs = int_to_field(u);
    if let Some(clip) = hint.clip.as_mut() {
        let beta = i64::from(d == 0);
        clip.clipped = int_to_field(beta);
        clip.dist = int_to_field(d);
        clip.slack_bits = bits_le(((2 * d - spec.clip() - 1 + u + beta) & 63) as u64, 6);
    }
    hint.square = int_to_field(q);
    let acc = spec.relu_weight() * (i64::from(x) + u) - spec.k() * u * q + spec.rounding();
    hint.requant = RequantHint::signed(acc, spec.requant()).ok()?;
    Some(hint)
}

/// A wrong `|x|`, `d` or `d²` with everything after it consistent is rejected where it
/// is made.
#[test]
fn consistent_forgeries_rejected() {
    let mut tried = 0;
    for spec in default_specs() {
        let c = spec.clip();
        for x in i8::MIN..=i8::MAX {
            let u = i64::from(x).abs();
            let d = (c - u).max(0);
            for delta in [-1, 1] {
                let forgeries = [
                    (derived(x, spec, u, d, d * d + delta), Some("d·d = d²")),
                    (
                        derived(x, spec, u + delta, (c - u - delta).max(0), (c - u - delta).max(0).pow(2)),
                        Some("(2σ-1)·x = |x|"),
                    ),
                    (derived(x, spec, u, d + delta, (d + delta).pow(2)).filter(|_| spec.clips()), None),
                ];
                for (hint, at) in forgeries {
                    let Some(hint) = hint else { continue };
                    let rejected = rejection(spec, field(x), &hint);
                    assert!(rejected.is_some(), "{spec:?} x {x}");
                    assert!(at.is_none() || rejected.as_deref() == at, "{spec:?} x {x}: {rejected:?}");
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 6000, "{tried}");
}
