//! LayerNorm of one row of `d` signed activations of `b` bits (int8 by default, up to 16: a
//! transformer's residual stream, [`LayerNormSpec::with_input_bits`]):
//! `y_i = clamp(floor((u_i·γ_i + β_i) / 2^s), -128, 127)` with
//! `u_i ≈ 2^M·(x_i - mean)/sqrt(var + eps)`, in integers only.
//!
//! **Scales.** An input `x_i` stands for `x_i·2^-f` and a gain `γ_i` (int8) for `γ_i·2^-g`;
//! `u_i` is the normalised value at scale `2^M` (`M` = [`LayerNormSpec::recip_bits`]), so the
//! accumulator `u_i·γ_i + β_i` is at `2^(M+g)`: the bias `β_i` is given at that scale, and
//! the output `y_i` stands for `y_i·2^(s-M-g)` (`s` the shift of the spec's
//! [`RequantSpec`]). The circuit floors; for round-to-nearest add `2^(s-1)` to every `β_i`
//! (as [`crate::quant`] does for layers). `eps` enters as the integer `E ≥ 1`
//! ([`eps_int`]: `E = round(eps·d^4·2^(2f))`).
//!
//! **The caller's duties.** The inputs arrive as linear combinations whose ranges this
//! gadget does not check: every `x_i` must already be range-checked to `b` signed bits (the outputs of
//! [`super::requant::requantize_signed`] are int8, those of
//! [`super::requant::requantize_signed_bits`] `b` bits), every `γ_i` to int8 and every `β_i` to an
//! integer of magnitude below `2^62` (committed weights and biases, range-checked where they
//! are committed). These bounds keep every product below the field size (argument below).
//!
//! **Construction** (`B` = the requantization's `acc_bits`, `Wq` = [`LayerNormSpec::q_bits`],
//! `Wρ` = [`LayerNormSpec::rho_bits`]):
//! 1. `S = Σ x_i`, allocated (1 linear constraint), and `c_i = d·x_i - S = d·(x_i - mean)`
//!    (free). `S` is allocated so that each `c_i`, read by three constraints, holds two
//!    terms instead of the `d + 1` of `d·x_i - Σ x_j`: `O(d)` matrix entries per row
//!    instead of `O(d²)`, for one constraint.
//! 2. `V = Σ c_i²`, allocated, by [`dot_product`] with taps `(c_i, c_i)`: `d` constraints.
//! 3. `q = floor(sqrt(N))`, `N = d·V + E`: `R` and `t` are range-checked to `Wq + 1` bits,
//!    and `q·q = N - R`, `R + t = 2q` (2 constraints), so `0 ≤ R ≤ 2q`.
//! 4. `ρ = floor(2^M·d / q)`: `rem` and `σ` are range-checked to `Wq` bits and `q` **is**
//!    `σ + rem + 1` (so `rem ≤ q - 1` holds by construction and `q` costs no variable and no
//!    range check of its own); `ρ` is range-checked to `Wρ` bits and `ρ·q = 2^M·d - rem`
//!    (1 constraint).
//! 5. Per element: `u_i` allocated with `c_i·ρ = u_i` (1), `y_i` by
//!    [`requantize_signed`] (`B + 4`), whose accumulator is bound by
//!    `u_i·γ_i = acc_i - β_i` (1).
//!
//! That is [`layernorm_constraints`] `= d·(B + 7) + 4·Wq + Wρ + 6` per row: `B + 7` per
//! element and `4·Wq + Wρ + 6` per row. At the parameters of the `pinned_counts` test
//! (`M = 16 + bits(d)`, eps = 1e-5 at `f = 4`): 712 at `d = 16` (`B = 32`, `Wq = 15`,
//! `Wρ = 22`), 2,792 at `d = 64` (`B = 35`), 35,463 at `d = 768` (`B = 39`, `Wq = 27`,
//! `Wρ = 21`). Against the plan this was built from (`q` allocated and range-checked to
//! `Wq` bits, then bound to `σ + rem + 1`), writing `q` as `σ + rem + 1` saves `Wq + 1`
//! constraints and changes nothing in the argument below.
//!
//! **Soundness.** Every quantity below is an integer of magnitude below `2^100`, far below
//! `p/2 ≈ 2^253`, so each field equation between them is the same equation over the
//! integers. With `x_i` of `b ≤ 16` bits and `d ≤ 2^16`: `|c_i| ≤ (2^b - 1)·(d - 1) < 2^32`, so
//! `V = Σ c_i² < 2^80` is the integer sum of squares and `N = d·V + E < 2^97`. `R, t` are in
//! `[0, 2^(Wq+1))` and `rem, σ` in `[0, 2^Wq)` by their range checks (`Wq ≤ 49`), so
//! `q = σ + rem + 1 ∈ [1, 2^50)` and `0 ≤ rem ≤ q - 1`. `R + t = 2q` gives `0 ≤ R ≤ 2q`, and
//! `q·q = N - R` gives `q² ≤ N ≤ q² + 2q < (q + 1)²`: `q = floor(sqrt(N))`, the only value
//! the prover can use. `ρ < 2^Wρ ≤ 2^57` and `ρ·q + rem = 2^M·d` with `0 ≤ rem < q` make
//! `ρ = floor(2^M·d / q)`. Then `u_i = c_i·ρ` (`< 2^81`), `acc_i = u_i·γ_i + β_i`
//! (`< 2^89` before its range check) is the integer accumulator, which
//! [`requantize_signed`] range-checks and requantizes: every output is the native twin's.
//! `E ≥ 1` keeps `q ≥ 1` (`N ≥ 1`), so the reciprocal always exists, and a row of equal
//! values (`V = 0`) gives `u_i = 0` and `y_i` = `β_i` requantized.
//!
//! **Widths** (derived by [`LayerNormSpec`], which validates them). `Σ (x_i - mean)²` is
//! convex in each `x_i`, so over `b`-bit rows it is largest with every value at either end,
//! `k` of them at one end: `D²·k·(d - k)/d` with `D = 2^b - 1`. So `V = d²·Σ (x_i - mean)² ≤
//! V_max = d·D²·floor(d²/4)`, reached by the rows the `widths_hold_the_widest_rows` test
//! checks; `q ≤ Q = isqrt(d·V_max + E)` and `Wq` = bits of `Q` (then `R, t ≤ 2Q < 2^(Wq+1)`
//! and `rem, σ < Q`). `q ≥ isqrt(E)` bounds `ρ` (`Wρ`). Since `Σ c_i = 0`, Cauchy–Schwarz
//! gives `c_i² ≤ V·(d-1)/d`; with `d·V < (q + 1)²` this gives
//! `|u_i| < 2^M·sqrt(d-1)·(1 + 1/q)`, bounded by [`LayerNormSpec::u_max`]. The spec
//! requires `128·u_max < 2^(B-1)`, and any `|β_i| ≤` [`LayerNormSpec::beta_headroom`]
//! keeps every accumulator in range ([`acc_bits_for`] picks `B`). A larger `β_i` may give an
//! accumulator out of range: the native twin returns
//! [`QuantError::AccumulatorOutOfRange`] there, and the requantization's range check
//! leaves no witness.
//!
//! **Accuracy.** `u_i / (2^M·z_i)` (with `z_i` the float normalised value at `eps`) is
//! `(ρ·q / 2^M·d)·(sqrt(N)/q)·sqrt((d·V + eps·d⁴·2^(2f)) / N)`: the reciprocal's floor costs
//! at most `q/(2^M·d) ≈ d·σ_x/2^M` relatively (`σ_x` the row's standard deviation in input
//! units; choose `M ≥ log2(d) + 7 +` the bits of precision wanted), the square root's floor
//! at most `1/q`, and rounding `E` the rest. The error in output units is at most `1/2` (the
//! final rounding) plus `|γ_i·z_i|` in output units times that relative error. The test
//! `error_against_float_layernorm` (f = 4, g = 6, output at `2^-4`, eps = 1e-5,
//! `M = 16 + bits(d)`, round-to-nearest bias, `|β| ≤ 2`; uniform, narrow (spread 3) and
//! constant rows) asserts that bound on every element and pins the largest error it
//! measures, in output units: 0.50 (d = 1), 0.66 (d = 2), 2.98 (d = 3), 1.25 (d = 8),
//! 0.58 (d = 16), 0.51 (d = 64), 0.54 (d = 768). The large ones are narrow rows at small
//! `d`, where `q` is small: a non-constant row has `d·V ≥ d²·(d - 1)`, so `q ≥ d·sqrt(d-1)`
//! and the square root's floor costs up to 1/q (at `d = 3`, `x = (b, b, b+1)` has
//! `N = 19`, `q = 4`: the normalised values come out 7% high). From `d = 16` on (a
//! transformer's rows are wider) the error is the final rounding plus under 0.1.

use super::bits::{alloc_uint, lc};
use super::dot::{dot_product, DotHint};
use super::requant::{requant_signed_constraints, requantize_signed, RequantHint};
use crate::quant::{bits_le, check_signed, int_to_field, requantize_signed_native, QuantError, RequantSpec};
use crate::F;
use ff::PrimeField;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use serde::{Deserialize, Serialize};

/// Largest row length `d`.
pub const MAX_DIM: usize = 1 << 16;
/// Largest `E` (the epsilon in integer units).
pub const MAX_EPS: u64 = 1 << 62;
/// Largest `M` (the bits of the reciprocal's scale).
pub const MAX_RECIP_BITS: u32 = 40;

/// A LayerNorm row: its length, `E`, `M` and the output requantization. Built only by the
/// validating [`LayerNormSpec::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawLayerNorm", into = "RawLayerNorm")]
pub struct LayerNormSpec {
    d: usize,
    eps: u64,
    recip_bits: u32,
    requant: RequantSpec,
    u_max: u64,
    in_bits: u32,
    beta_shift: u32,
}

/// The encoding of a [`LayerNormSpec`] (its free parameters), validated when decoded.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayerNorm {
    d: usize,
    eps: u64,
    recip_bits: u32,
    requant: RequantSpec,
    in_bits: u32,
    beta_shift: u32,
}

impl TryFrom<RawLayerNorm> for LayerNormSpec {
    type Error = QuantError;
    fn try_from(r: RawLayerNorm) -> Result<Self, QuantError> {
        Self::new(r.d, r.eps, r.recip_bits, r.requant)?.with_input_bits(r.in_bits)?.with_beta_shift(r.beta_shift)
    }
}

impl From<LayerNormSpec> for RawLayerNorm {
    fn from(s: LayerNormSpec) -> Self {
        let LayerNormSpec { d, eps, recip_bits, requant, in_bits, beta_shift, .. } = s;
        Self { d, eps, recip_bits, requant, in_bits, beta_shift }
    }
}

impl LayerNormSpec {
    /// Validated constructor: `1 ≤ d ≤ MAX_DIM`, `1 ≤ E ≤ MAX_EPS`, `M ≤ MAX_RECIP_BITS`,
    /// and every `u_i·γ_i` fits the requantization's accumulator (module docs, widths).
    pub fn new(d: usize, eps_int: u64, recip_bits: u32, requant: RequantSpec) -> Result<Self, QuantError> {
        let u = u_bound(d, eps_int, recip_bits)?;
        let bits = requant.acc_bits();
        if 128 * u >= 1 << (bits - 1) {
            return Err(bad(format!("|u·γ| may reach 128·{u}, which {bits} signed accumulator bits do not hold")));
        }
        // below 2^50 (MAX_DIM, MAX_RECIP_BITS)
        Ok(Self { d, eps: eps_int, recip_bits, requant, u_max: u as u64, in_bits: 8, beta_shift: 0 })
    }

    /// The same LayerNorm of inputs of `bits` signed bits (`8..=16`; `new` reads int8).
    pub fn with_input_bits(self, bits: u32) -> Result<Self, QuantError> {
        if !(8..=16).contains(&bits) {
            return Err(bad(format!("inputs of {bits} bits: 8 to 16 are supported")));
        }
        Ok(Self { in_bits: bits, ..self })
    }

    /// The inputs' width in signed bits.
    pub fn in_bits(&self) -> u32 {
        self.in_bits
    }

    /// The same LayerNorm with every bias read as `β_i·2^k` (`k ≤ 30`): a bias committed as
    /// an int32 then reaches the accumulator's scale when `2^M` is large (a wide stream
    /// needs a large `M`), at a precision of `2^k` accumulator steps, far below one output
    /// step when `k` is well below the shift. The caller's bound on `|β_i|` becomes one on
    /// `|β_i|·2^k` (below `2^62`: an int32 `β` and `k ≤ 30` keep it).
    pub fn with_beta_shift(self, k: u32) -> Result<Self, QuantError> {
        if k > 30 {
            return Err(bad(format!("a bias shift of {k} bits: at most 30")));
        }
        Ok(Self { beta_shift: k, ..self })
    }

    /// `k`: every bias enters the accumulator as `β_i·2^k`.
    pub fn beta_shift(&self) -> u32 {
        self.beta_shift
    }

    /// The row length `d`.
    pub fn d(&self) -> usize {
        self.d
    }

    /// `E`, the epsilon in integer units.
    pub fn eps_int(&self) -> u64 {
        self.eps
    }

    /// `M`: the normalised values `u_i` are at scale `2^M`.
    pub fn recip_bits(&self) -> u32 {
        self.recip_bits
    }

    /// The output requantization.
    pub fn requant(&self) -> RequantSpec {
        self.requant
    }

    /// `Wq`: the bits of the largest `q = floor(sqrt(d·V + E))`.
    pub fn q_bits(&self) -> u32 {
        bits_of(q_max(self.d, self.eps, self.in_bits))
    }

    /// `Wρ`: the bits of the largest `ρ = floor(2^M·d / q)`.
    pub fn rho_bits(&self) -> u32 {
        bits_of(rho_max(self.d, self.eps, self.recip_bits))
    }

    /// An upper bound on every `|u_i|`.
    pub fn u_max(&self) -> u64 {
        self.u_max
    }

    /// The largest `|β_i|` that keeps every accumulator in range whatever the row and `γ`.
    pub fn beta_headroom(&self) -> i64 {
        (1i64 << (self.requant.acc_bits() - 1)) - 1 - 128 * self.u_max as i64
    }

    fn n(&self, v: i128) -> i128 {
        self.d as i128 * v + i128::from(self.eps)
    }

    fn two_m_d(&self) -> i128 {
        (self.d as i128) << self.recip_bits
    }
}

fn bad(reason: String) -> QuantError {
    QuantError::BadSpec(format!("layernorm: {reason}"))
}

/// Bits needed to write `x`.
fn bits_of(x: u128) -> u32 {
    u128::BITS - x.leading_zeros()
}

/// The largest `V` of inputs of `b` bits: `d·D²·floor(d²/4)`, `D = 2^b - 1` (module docs,
/// widths).
fn v_max(d: usize, b: u32) -> u128 {
    let (d, span) = (d as u128, (1u128 << b) - 1);
    d * span * span * (d * d / 4)
}

fn q_max(d: usize, eps: u64, b: u32) -> u128 {
    (d as u128 * v_max(d, b) + u128::from(eps)).isqrt()
}

fn rho_max(d: usize, eps: u64, recip_bits: u32) -> u128 {
    ((d as u128) << recip_bits) / u128::from(eps).isqrt()
}

/// `U ≥ |u_i|` (module docs): `|u_i| < 2^M·sqrt(d-1)·(q0 + 1)/q0` with `q0 = isqrt(E) ≤ q`,
/// and `2^M·sqrt(d-1) < isqrt((d-1)·4^M) + 1`.
fn u_bound(d: usize, eps: u64, recip_bits: u32) -> Result<u128, QuantError> {
    if d == 0 || d > MAX_DIM {
        return Err(bad(format!("row length {d} is not in [1, {MAX_DIM}]")));
    }
    if eps == 0 || eps > MAX_EPS {
        return Err(bad(format!("E = {eps} is not in [1, 2^62]")));
    }
    if recip_bits > MAX_RECIP_BITS {
        return Err(bad(format!("M = {recip_bits} is above {MAX_RECIP_BITS}")));
    }
    let q0 = u128::from(eps).isqrt();
    let root = ((d as u128 - 1) << (2 * recip_bits)).isqrt() + 1;
    Ok(if d == 1 { 0 } else { root * (q0 + 1) / q0 })
}

/// `E = max(1, round(eps·d⁴·2^(2f)))`: the epsilon of inputs with `f` fractional bits, in
/// the units of `d·V` (module docs).
pub fn eps_int(eps: f64, d: usize, frac_bits: u32) -> Result<u64, QuantError> {
    let e = (eps * (d as f64).powi(4) * 4f64.powi(frac_bits as i32)).round().max(1.0);
    if !(eps >= 0.0 && e <= MAX_EPS as f64) {
        return Err(bad(format!("eps {eps} at d = {d}, f = {frac_bits} is not in [0, 2^62] in integer units")));
    }
    Ok(e as u64)
}

/// The accumulator width `B` that holds every `u_i·γ_i + β_i` with `|β_i| ≤ beta_max`
/// (then `RequantSpec::new(s, B.max(s + 8))`).
pub fn acc_bits_for(d: usize, eps_int: u64, recip_bits: u32, beta_max: u64) -> Result<u32, QuantError> {
    Ok(bits_of(128 * u_bound(d, eps_int, recip_bits)? + u128::from(beta_max)) + 1)
}

/// Constraints of [`layernorm`] for one row: `d·(B + 7) + 4·Wq + Wρ + 6`.
pub fn layernorm_constraints(spec: &LayerNormSpec) -> usize {
    let per_element = requant_signed_constraints(spec.requant) + 3;
    spec.d * per_element + 4 * spec.q_bits() as usize + spec.rho_bits() as usize + 6
}

/// The integers of one row, as the circuit holds them (each stage recomputed from the
/// previous fields, so that a test can change one value and rebuild what follows).
#[derive(Clone, Debug)]
struct Row {
    sum: i64,
    c: Vec<i64>,
    v: i128,
    q: i128,
    r: i128,
    rho: i128,
    rem: i128,
    u: Vec<i128>,
    acc: Vec<i128>,
}

impl Row {
    fn new<T: Copy + Into<i64>>(x: &[T], gamma: &[i8], beta: &[i64], spec: &LayerNormSpec) -> Result<Self, QuantError> {
        check_signed("layernorm input", x, spec.in_bits)?;
        for (what, got) in
            [("layernorm input", x.len()), ("layernorm gain", gamma.len()), ("layernorm bias", beta.len())]
        {
            if got != spec.d {
                return Err(QuantError::WrongLength { what, expected: spec.d, got });
            }
        }
        let mut row = Self { sum: x.iter().map(|&v| v.into()).sum(), ..Self::empty() };
        row.centre(x, spec);
        row.sqrt(spec);
        row.recip(spec);
        row.affine(gamma, beta, spec.beta_shift);
        Ok(row)
    }

    fn empty() -> Self {
        Self { sum: 0, c: vec![], v: 0, q: 0, r: 0, rho: 0, rem: 0, u: vec![], acc: vec![] }
    }

    /// `c_i = d·x_i - S` and `V = Σ c_i²`.
    fn centre<T: Copy + Into<i64>>(&mut self, x: &[T], spec: &LayerNormSpec) {
        self.c = x.iter().map(|&v| spec.d as i64 * v.into() - self.sum).collect();
        self.v = self.c.iter().map(|&c| i128::from(c) * i128::from(c)).sum();
    }

    /// `q = isqrt(d·V + E)` and `R = d·V + E - q²` (`d·V + E ≥ 1`).
    fn sqrt(&mut self, spec: &LayerNormSpec) {
        let n = spec.n(self.v);
        self.q = n.max(0).isqrt();
        self.r = n - self.q * self.q;
    }

    /// `ρ = floor(2^M·d / q)` and its remainder.
    fn recip(&mut self, spec: &LayerNormSpec) {
        self.rho = spec.two_m_d().checked_div(self.q).unwrap_or(0);
        self.rem = spec.two_m_d() - self.rho * self.q;
    }

    /// `u_i = c_i·ρ` and `acc_i = u_i·γ_i + β_i·2^k`.
    fn affine(&mut self, gamma: &[i8], beta: &[i64], k: u32) {
        self.u = self.c.iter().map(|&c| i128::from(c) * self.rho).collect();
        let acc = |((&u, &g), &b): ((&i128, &i8), &i64)| u * i128::from(g) + (i128::from(b) << k);
        self.acc = self.u.iter().zip(gamma).zip(beta).map(acc).collect();
    }
}

/// An accumulator as `i64`, or the error of the range check it fails.
fn fit(acc: i128, p: RequantSpec) -> Result<i64, QuantError> {
    let acc = acc.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    p.check_acc(acc).map(|()| acc)
}

/// Native twin of [`layernorm`]: the int8 outputs of one row, or the error where the
/// circuit has no witness (inputs of the wrong length, an accumulator out of range).
pub fn layernorm_native<T: Copy + Into<i64>>(
    x: &[T],
    gamma: &[i8],
    beta: &[i64],
    spec: &LayerNormSpec,
) -> Result<Vec<i8>, QuantError> {
    let row = Row::new(x, gamma, beta, spec)?;
    row.acc.iter().map(|&a| requantize_signed_native(fit(a, spec.requant)?, spec.requant)).collect()
}

/// Witness of one row (module docs for the names).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormHint {
    /// `S = Σ x_i`.
    pub sum: F,
    /// `V = Σ c_i²`.
    pub v: F,
    /// The products `c_i²` of the dot product, all but the last.
    pub squares: DotHint,
    /// The `Wq + 1` bits of `R = d·V + E - q²`.
    pub r: Vec<F>,
    /// The `Wq + 1` bits of `t = 2q - R`.
    pub t: Vec<F>,
    /// The `Wq` bits of `rem = 2^M·d - ρ·q`.
    pub rem: Vec<F>,
    /// The `Wq` bits of `σ = q - 1 - rem`.
    pub slack: Vec<F>,
    /// The `Wρ` bits of `ρ`.
    pub rho: Vec<F>,
    /// `u_i = c_i·ρ`.
    pub u: Vec<F>,
    /// The requantization of every `acc_i`.
    pub outputs: Vec<RequantHint>,
}

impl LayerNormHint {
    /// Honest witness of a row; fails where [`layernorm_native`] fails.
    pub fn new<T: Copy + Into<i64>>(
        x: &[T],
        gamma: &[i8],
        beta: &[i64],
        spec: &LayerNormSpec,
    ) -> Result<Self, QuantError> {
        Self::from_row(&Row::new(x, gamma, beta, spec)?, spec)
    }

    /// The witness of a row's integers. An honest row's values lie in their widths (module
    /// docs); a value outside (only a test's tampered row) is written modulo `2^width`.
    fn from_row(row: &Row, spec: &LayerNormSpec) -> Result<Self, QuantError> {
        let (wq, wr) = (spec.q_bits(), spec.rho_bits());
        let outputs = row.acc.iter().map(|&a| RequantHint::signed(fit(a, spec.requant)?, spec.requant));
        Ok(Self {
            sum: int_to_field(row.sum),
            v: field(row.v),
            squares: DotHint::new(row.c.iter().map(|&c| (int_to_field(c), int_to_field(c)))),
            r: wrapped_bits(row.r, wq + 1),
            t: wrapped_bits(2 * row.q - row.r, wq + 1),
            rem: wrapped_bits(row.rem, wq),
            slack: wrapped_bits(row.q - 1 - row.rem, wq),
            rho: wrapped_bits(row.rho, wr),
            u: row.u.iter().map(|&u| field(u)).collect(),
            outputs: outputs.collect::<Result<_, _>>()?,
        })
    }

    fn check(&self, spec: &LayerNormSpec, lengths: [usize; 3]) -> Result<(), SynthesisError> {
        let (d, wq, wr) = (spec.d, spec.q_bits() as usize, spec.rho_bits() as usize);
        let widths = [(self.r.len(), wq + 1), (self.t.len(), wq + 1), (self.rem.len(), wq), (self.slack.len(), wq)];
        let shapes = [(self.rho.len(), wr), (self.u.len(), d), (self.outputs.len(), d)];
        let inputs = lengths.map(|n| (n, d));
        if widths.iter().chain(&shapes).chain(&inputs).any(|(got, expected)| got != expected) {
            return Err(SynthesisError::Unsatisfiable("layernorm witness or inputs of the wrong shape".into()));
        }
        Ok(())
    }
}

fn field(x: i128) -> F {
    let magnitude = F::from_u128(x.unsigned_abs());
    if x < 0 {
        -magnitude
    } else {
        magnitude
    }
}

fn wrapped_bits(x: i128, width: u32) -> Vec<F> {
    bits_le(x.rem_euclid(1 << width) as u64, width)
}

/// LayerNorm of one row (module docs): the outputs `y_i`, negatives as `p - |y_i|`. The
/// caller answers for the ranges of `x`, `gamma` and `beta` (module docs).
pub fn layernorm<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &LayerNormSpec,
    x: &[LinearCombination<F>],
    gamma: &[LinearCombination<F>],
    beta: &[LinearCombination<F>],
    hint: &LayerNormHint,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    hint.check(spec, [x.len(), gamma.len(), beta.len()])?;
    let c = centre(cs, spec.d, x, hint.sum)?;
    let v = AllocatedNum::alloc(cs.namespace(|| "V"), || Ok(hint.v))?;
    let taps: Vec<_> = c.iter().map(|ci| (ci, ci)).collect();
    let v_lc = LinearCombination::zero() + v.get_variable();
    dot_product(&mut cs.namespace(|| "V = sum c^2"), &taps, &LinearCombination::zero(), &v_lc, &hint.squares)?;
    let rho = reciprocal(cs, spec, &v_lc, hint)?;
    let elements = c.iter().zip(gamma).zip(beta).zip(hint.u.iter().zip(&hint.outputs));
    elements
        .enumerate()
        .map(|(i, (((ci, g), b), (&u, out)))| {
            let mut cs = cs.namespace(|| format!("y{i}"));
            normalise(&mut cs, (spec.requant, spec.beta_shift), [ci, &rho, g, b], u, out)
        })
        .collect()
}

/// `S = Σ x_i` (allocated) and the linear combinations `c_i = d·x_i - S`.
fn centre<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    d: usize,
    x: &[LinearCombination<F>],
    sum: F,
) -> Result<Vec<LinearCombination<F>>, SynthesisError> {
    let s = AllocatedNum::alloc(cs.namespace(|| "S"), || Ok(sum))?;
    let total = x.iter().fold(LinearCombination::zero(), |acc, xi| acc + xi);
    cs.enforce(|| "S = sum x", |_| total, |lc| lc + CS::one(), |lc| lc + s.get_variable());
    let d = F::from(d as u64);
    Ok(x.iter().map(|xi| LinearCombination::zero() + (d, xi) - s.get_variable()).collect())
}

/// `q = floor(sqrt(d·V + E))` and `ρ = floor(2^M·d / q)` (module docs, steps 3 and 4);
/// returns `ρ`.
fn reciprocal<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &LayerNormSpec,
    v: &LinearCombination<F>,
    hint: &LayerNormHint,
) -> Result<LinearCombination<F>, SynthesisError> {
    let mut uint = |name: &'static str, bits: &[F]| alloc_uint(&mut cs.namespace(|| name), bits).map(|n| lc(&n));
    let (r, t) = (uint("R", &hint.r)?, uint("t", &hint.t)?);
    let (rem, slack, rho) = (uint("rem", &hint.rem)?, uint("slack", &hint.slack)?, uint("rho", &hint.rho)?);
    let q = slack + &rem + CS::one();
    let two_q = LinearCombination::zero() + (F::from(2), &q);
    cs.enforce(|| "R + t = 2q", |_| r.clone() + &t, |lc| lc + CS::one(), |_| two_q);
    let n = LinearCombination::zero() + (F::from(spec.d as u64), v) + (F::from(spec.eps), CS::one());
    cs.enforce(|| "q*q = dV + E - R", |_| q.clone(), |_| q.clone(), |_| n - &r);
    let two_m_d = F::from_u128(spec.two_m_d() as u128);
    cs.enforce(
        || "rho*q = 2^M d - rem",
        |_| rho.clone(),
        |_| q,
        |_| LinearCombination::zero() + (two_m_d, CS::one()) - &rem,
    );
    Ok(rho)
}

/// One output: `u = c·ρ`, `y` = the signed requantization of `acc = u·γ + β·2^k`.
fn normalise<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (p, k): (RequantSpec, u32),
    [c, rho, gamma, beta]: [&LinearCombination<F>; 4],
    u: F,
    out: &RequantHint,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let u = AllocatedNum::alloc(cs.namespace(|| "u"), || Ok(u))?;
    cs.enforce(|| "c*rho = u", |_| c.clone(), |_| rho.clone(), |lc| lc + u.get_variable());
    let (acc, y) = requantize_signed(&mut cs.namespace(|| "requant"), p, out)?;
    let scaled = LinearCombination::zero() + (F::from(1u64 << k), beta);
    cs.enforce(|| "u*gamma = acc - beta", |lc| lc + u.get_variable(), |_| gamma.clone(), |_| acc - &scaled);
    Ok(y)
}

#[cfg(test)]
mod tests;
