//! Pooling of a convolution's requantized outputs (channel-major `C×H×W`), as ONNX's
//! `MaxPool`/`AveragePool` (floor mode, dilation 1) and `GlobalAveragePool`: a `kh×kw`
//! window, strides `(sh, sw)` (overlapping when smaller than the window, as in ResNet's
//! 3×3 stride-2 max pool), and padding (top, left, bottom, right). Padding cells are not
//! part of a window: a max ignores them (ONNX pads a max with -∞) and an average divides by
//! the cells it covers (ONNX's `count_include_pad = 0`). Which cells a window covers is a
//! constant of the circuit.
//!
//! - **Max**: the output `m` is allocated; every `d_i = m - y_i` is decomposed into 7 bits
//!   (so `m ≥ y_i`), and `Π d_i = 0` (so `m` equals one of them). `8n + max(n - 1, 1)`
//!   constraints for an `n`-cell window.
//! - **Average**: `q = floor((Σ y_i + ⌊n/2⌋) / n)` (round half up): `q` is decomposed into
//!   7 bits and the remainder `r = Σ y_i + ⌊n/2⌋ - n·q` into `⌈log2 n⌉` bits, and, when `n`
//!   is not a power of two, `n - 1 - r` too (so `0 ≤ r < n`).
//!
//! The inputs must already be 7-bit values (they are: requantized outputs).

use super::bits::{alloc_uint, lc};
use crate::quant::{bits_le, ACT_BITS};
use crate::F;
use ff::Field;
use nova_snark::frontend::{
    num::{AllocatedNum, Num},
    ConstraintSystem, LinearCombination, SynthesisError,
};
use serde::{Deserialize, Serialize};

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// Maximum.
    Max,
    /// Mean, rounded half up.
    Average,
}

/// A pooling stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Reduction.
    pub kind: PoolKind,
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal strides.
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right (ONNX's `pads` order).
    pub pads: [usize; 4],
}

/// Bits needed to write every value below `n`.
fn bits_below(n: u64) -> u32 {
    u64::BITS - (n.saturating_sub(1)).leading_zeros()
}

/// Constraints of [`pool_window`] for a window of `n` cells.
pub fn window_constraints(kind: PoolKind, n: usize) -> usize {
    match kind {
        PoolKind::Max => n * (ACT_BITS as usize + 1) + (n.max(1) - 1).max(1),
        PoolKind::Average => {
            let rb = bits_below(n as u64) as usize;
            let twice = usize::from(!n.is_power_of_two());
            ACT_BITS as usize + rb + 1 + twice * (rb + 1)
        }
    }
}

impl Pool {
    /// Non-overlapping `size×size` windows with stride `size`, no padding.
    pub fn square(kind: PoolKind, size: usize) -> Self {
        Self { kind, kernel: [size, size], stride: [size, size], pads: [0; 4] }
    }

    /// One window over the whole image (`GlobalAveragePool` for an average).
    pub fn global(kind: PoolKind, (_, h, w): (usize, usize, usize)) -> Self {
        Self { kind, kernel: [h, w], stride: [1, 1], pads: [0; 4] }
    }

    /// Checks the stage against a `C×H×W` input: non-zero windows and strides, padding
    /// thinner than the window (every window covers a cell), windows that fit.
    pub fn check(&self, (c, h, w): (usize, usize, usize)) -> Result<(), String> {
        let ([kh, kw], [sh, sw], [top, left, bottom, right]) = (self.kernel, self.stride, self.pads);
        if [c, h, w, kh, kw, sh, sw].contains(&0) {
            return Err(format!("pooling needs non-zero sizes and strides: {self:?} over {c}×{h}×{w}"));
        }
        if top >= kh || bottom >= kh || left >= kw || right >= kw {
            return Err(format!("pooling padding {:?} is not thinner than the {kh}×{kw} window", self.pads));
        }
        if [c, h, w, kh, kw, sh, sw].into_iter().any(|v| v > super::conv::MAX_DIMENSION) {
            return Err(format!("a pooling dimension is larger than {}", super::conv::MAX_DIMENSION));
        }
        if h + top + bottom < kh || w + left + right < kw {
            return Err(format!("the {kh}×{kw} pooling window does not fit the {h}×{w} image"));
        }
        Ok(())
    }

    /// Output dimensions for a `C×H×W` input.
    pub fn output_dims(&self, (c, h, w): (usize, usize, usize)) -> (usize, usize, usize) {
        let ([kh, kw], [sh, sw], [top, left, bottom, right]) = (self.kernel, self.stride, self.pads);
        let span = |n: usize, a: usize, b: usize, k: usize, s: usize| (n + a + b).saturating_sub(k) / s.max(1) + 1;
        (c, span(h, top, bottom, kh, sh), span(w, left, right, kw, sw))
    }

    /// Input indices of every output's window (its cells inside the image), outputs in
    /// channel-major order.
    pub fn windows(&self, dims: (usize, usize, usize)) -> Vec<Vec<usize>> {
        let (c, h, w) = dims;
        let (_, ph, pw) = self.output_dims(dims);
        let ([kh, kw], [sh, sw], [top, left, ..]) = (self.kernel, self.stride, self.pads);
        // The image rows (or columns) a window starting at `start` (in padded coordinates) covers.
        let span = |start: usize, k: usize, pad: usize, n: usize| {
            (start..start + k).filter_map(move |i| i.checked_sub(pad).filter(|&i| i < n))
        };
        let mut out = Vec::with_capacity(c * ph * pw);
        for ch in 0..c {
            for py in 0..ph {
                for px in 0..pw {
                    let cells = span(py * sh, kh, top, h)
                        .flat_map(|y| span(px * sw, kw, left, w).map(move |x| (ch * h + y) * w + x));
                    out.push(cells.collect());
                }
            }
        }
        out
    }

    /// Constraints of pooling a `C×H×W` input.
    pub fn constraints(&self, dims: (usize, usize, usize)) -> usize {
        self.windows(dims).iter().map(|win| window_constraints(self.kind, win.len())).sum()
    }
}

/// Native pooling of one window.
pub fn pool_native(kind: PoolKind, cells: &[u8]) -> u8 {
    match kind {
        PoolKind::Max => cells.iter().copied().max().unwrap_or(0),
        PoolKind::Average => average_native(cells.iter().map(|&c| u64::from(c)).sum(), cells.len() as u64),
    }
}

/// The mean of `n` (at least one) 7-bit cells whose sum is `sum`, rounded half up.
pub fn average_native(sum: u64, n: u64) -> u8 {
    let n = n.max(1);
    ((sum + n / 2) / n) as u8
}

/// Native pooling of a whole `C×H×W` tensor.
pub fn pool_tensor_native(pool: &Pool, dims: (usize, usize, usize), input: &[u8]) -> Vec<u8> {
    let cells = |win: &Vec<usize>| win.iter().map(|&i| input[i]).collect::<Vec<_>>();
    pool.windows(dims).iter().map(|win| pool_native(pool.kind, &cells(win))).collect()
}

/// Witness of one pooled output: the output and the bits of its range checks.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolHint {
    /// The pooled value.
    pub y: F,
    /// Max: the bits of `y - cell_i` for every cell. Average: the bits of `q`, of the
    /// remainder, and (if needed) of `n - 1 - remainder`.
    pub bits: Vec<Vec<F>>,
}

impl PoolHint {
    /// Honest witness for one window.
    pub fn new(kind: PoolKind, cells: &[u8]) -> Self {
        let y = pool_native(kind, cells);
        let bits = match kind {
            PoolKind::Max => cells.iter().map(|&c| bits_le(u64::from(y - c), ACT_BITS)).collect(),
            PoolKind::Average => {
                return Self::average(cells.iter().map(|&c| u64::from(c)).sum(), cells.len() as u64);
            }
        };
        Self { y: F::from(u64::from(y)), bits }
    }

    /// Honest witness for the mean of `n` 7-bit cells whose sum is `sum` ([`average_of_sum`]).
    pub fn average(sum: u64, n: u64) -> Self {
        let y = average_native(sum, n);
        let rb = bits_below(n);
        let r = sum + n / 2 - n * u64::from(y);
        let mut bits = vec![bits_le(u64::from(y), ACT_BITS), bits_le(r, rb)];
        if !n.is_power_of_two() {
            bits.push(bits_le(n - 1 - r, rb));
        }
        Self { y: F::from(u64::from(y)), bits }
    }
}

/// Enforces that `bits` (range-checked here) weigh exactly `value`.
fn decompose<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    bits: &[F],
    value: LinearCombination<F>,
) -> Result<Num<F>, SynthesisError> {
    let n = alloc_uint(&mut cs.namespace(|| "bits"), bits)?;
    cs.enforce(|| "bits weigh the value", |_| lc(&n), |lc| lc + CS::one(), |_| value);
    Ok(n)
}

/// Pools one window of 7-bit cells (see the module docs for the constraints).
pub fn pool_window<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    kind: PoolKind,
    cells: &[LinearCombination<F>],
    hint: &PoolHint,
) -> Result<Num<F>, SynthesisError> {
    let n = cells.len();
    let wrong = || SynthesisError::Unsatisfiable("pooling witness has the wrong shape".into());
    match kind {
        PoolKind::Max => {
            if hint.bits.len() != n || n == 0 {
                return Err(wrong());
            }
            let m = AllocatedNum::alloc(cs.namespace(|| "max"), || Ok(hint.y))?;
            let mut diffs = Vec::with_capacity(n);
            for (i, (cell, bits)) in cells.iter().zip(&hint.bits).enumerate() {
                let d = LinearCombination::zero() + m.get_variable() - cell;
                diffs.push(decompose(&mut cs.namespace(|| format!("d{i}")), bits, d)?);
            }
            // Π d_i = 0: a running product, the last factor closing against zero.
            let mut prod = diffs[0].clone();
            for (i, d) in diffs.iter().enumerate().skip(1) {
                if i + 1 == n {
                    cs.enforce(|| "some cell is the max", |_| lc(&prod), |_| lc(d), |lc| lc);
                    return Ok(Num::from(m));
                }
                let v = prod.get_value().zip(d.get_value()).map(|(a, b)| a * b);
                let p = AllocatedNum::alloc(cs.namespace(|| format!("prod{i}")), || Ok(v.unwrap_or(F::ZERO)))?;
                cs.enforce(|| format!("prod{i} product"), |_| lc(&prod), |_| lc(d), |lc| lc + p.get_variable());
                prod = Num::from(p);
            }
            // A one-cell window: the max is the cell.
            cs.enforce(|| "single cell is the max", |_| lc(&prod), |lc| lc + CS::one(), |lc| lc);
            Ok(Num::from(m))
        }
        PoolKind::Average => {
            let sum = cells.iter().fold(LinearCombination::zero(), |acc, c| acc + c);
            average_of_sum(cs, sum, n as u64, hint)
        }
    }
}

/// The mean, rounded half up, of `n` 7-bit cells whose sum is `sum` (a window's sum, or a
/// global pooling's sum accumulated over tiles): `q = floor((sum + ⌊n/2⌋) / n)` with `q`
/// in 7 bits and the remainder in `[0, n)` (see the module docs). The caller answers for
/// `sum` being a sum of `n` 7-bit values: then `q` is the mean and nothing wraps.
pub fn average_of_sum<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    sum: LinearCombination<F>,
    n: u64,
    hint: &PoolHint,
) -> Result<Num<F>, SynthesisError> {
    let expected = if n.is_power_of_two() { 2 } else { 3 };
    if hint.bits.len() != expected || n == 0 {
        return Err(SynthesisError::Unsatisfiable("pooling witness has the wrong shape".into()));
    }
    let q = alloc_uint(&mut cs.namespace(|| "q"), &hint.bits[0])?;
    let r = sum + (F::from(n / 2), CS::one()) - &q.lc(F::from(n));
    decompose(&mut cs.namespace(|| "r"), &hint.bits[1], r.clone())?;
    if expected == 3 {
        let rest = LinearCombination::zero() + (F::from(n - 1), CS::one()) - &r;
        decompose(&mut cs.namespace(|| "n-1-r"), &hint.bits[2], rest)?;
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    fn synth(kind: PoolKind, cells: &[u8], hint: &PoolHint) -> (bool, Option<F>, usize) {
        let mut cs = TestConstraintSystem::<F>::new();
        let lcs: Vec<_> = cells
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let v = AllocatedNum::alloc(cs.namespace(|| format!("c{i}")), || Ok(F::from(u64::from(c)))).unwrap();
                LinearCombination::zero() + v.get_variable()
            })
            .collect();
        let y = pool_window(&mut cs, kind, &lcs, hint).unwrap();
        (cs.is_satisfied(), y.get_value(), cs.num_constraints())
    }

    fn kind() -> impl Strategy<Value = PoolKind> {
        prop_oneof![Just(PoolKind::Max), Just(PoolKind::Average)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]
        #[test]
        fn matches_native(kind in kind(), n in 1usize..10, seed in proptest::collection::vec(0u8..=127, 9)) {
            let cells = &seed[..n];
            let hint = PoolHint::new(kind, cells);
            let (sat, y, n) = synth(kind, cells, &hint);
            prop_assert!(sat);
            prop_assert_eq!(y, Some(F::from(u64::from(pool_native(kind, cells)))));
            prop_assert_eq!(n, window_constraints(kind, cells.len()));
        }

        #[test]
        fn wrong_output_rejected(kind in kind(), n in 1usize..10, seed in proptest::collection::vec(0u8..=127, 9), delta in 1u8..128) {
            let cells = &seed[..n];
            let honest = pool_native(kind, cells);
            // Any other 7-bit value with the most plausible witness for it.
            let claimed = ((u16::from(honest) + u16::from(delta)) % 128) as u8;
            let n = cells.len() as u64;
            let bits = match kind {
                PoolKind::Max => cells.iter().map(|&c| bits_le(u64::from(claimed.wrapping_sub(c) & 127), ACT_BITS)).collect(),
                PoolKind::Average => {
                    let sum: u64 = cells.iter().map(|&c| u64::from(c)).sum();
                    let r = (sum + n / 2).wrapping_sub(n * u64::from(claimed));
                    let rb = bits_below(n);
                    let mut b = vec![bits_le(u64::from(claimed), ACT_BITS), bits_le(r, rb)];
                    if !n.is_power_of_two() { b.push(bits_le((n - 1).wrapping_sub(r), rb)); }
                    b
                }
            };
            let hint = PoolHint { y: F::from(u64::from(claimed)), bits };
            prop_assert!(!synth(kind, cells, &hint).0);
        }
    }

    #[test]
    fn max_below_a_cell_rejected() {
        // Claim max = 5 for cells {5, 9}: d = 5 - 9 = -4 has no 7-bit decomposition.
        let hint = PoolHint { y: F::from(5), bits: vec![bits_le(0, ACT_BITS), bits_le(124, ACT_BITS)] };
        assert!(!synth(PoolKind::Max, &[5, 9], &hint).0);
    }

    #[test]
    fn average_rounds_half_up_and_drops_ragged_edges() {
        assert_eq!(pool_native(PoolKind::Average, &[1, 2, 2, 2]), 2); // 7/4 = 1.75
        assert_eq!(pool_native(PoolKind::Average, &[1, 1, 2, 2]), 2); // 1.5 rounds up
        assert_eq!(pool_native(PoolKind::Average, &[0, 0, 0, 1, 1, 1, 1, 1, 1]), 1); // 6/9
        let pool = Pool::square(PoolKind::Max, 2);
        assert_eq!(pool.output_dims((2, 5, 3)), (2, 2, 1));
        let input: Vec<u8> = (0..30).collect();
        assert_eq!(pool_tensor_native(&pool, (2, 5, 3), &input), vec![4, 10, 19, 25]);
    }

    /// An independent reference: the window of `(ch, py, px)` by scanning the padded image.
    fn window_by_scan(p: &Pool, (_, h, w): (usize, usize, usize), (ch, py, px): (usize, usize, usize)) -> Vec<usize> {
        let mut cells = vec![];
        for y in 0..h {
            for x in 0..w {
                let (yy, xx) = (y + p.pads[0], x + p.pads[1]);
                let inside = |v: usize, start: usize, k: usize| v >= start && v < start + k;
                if inside(yy, py * p.stride[0], p.kernel[0]) && inside(xx, px * p.stride[1], p.kernel[1]) {
                    cells.push((ch * h + y) * w + x);
                }
            }
        }
        cells
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(12), ..ProptestConfig::default() })]
        #[test]
        fn windows_match_a_scan_of_the_padded_image(
            (c, h, w) in (1usize..3, 1usize..8, 1usize..8),
            (kh, kw, sh, sw) in (1usize..4, 1usize..4, 1usize..4, 1usize..4),
            pads in proptest::array::uniform4(0usize..3),
        ) {
            let pool = Pool { kind: PoolKind::Max, kernel: [kh, kw], stride: [sh, sw], pads: [pads[0] % kh, pads[1] % kw, pads[2] % kh, pads[3] % kw] };
            prop_assume!(pool.check((c, h, w)).is_ok());
            let (_, ph, pw) = pool.output_dims((c, h, w));
            let windows = pool.windows((c, h, w));
            prop_assert_eq!(windows.len(), c * ph * pw);
            for (o, win) in windows.iter().enumerate() {
                let at = (o / (ph * pw), (o / pw) % ph, o % pw);
                prop_assert!(!win.is_empty());
                prop_assert_eq!(win, &window_by_scan(&pool, (c, h, w), at));
            }
        }
    }

    #[test]
    fn overlapping_padded_and_global_pools() {
        // ResNet's stem pool: 3×3, stride 2, padding 1 on 112×112 → 56×56.
        let stem = Pool { kind: PoolKind::Max, kernel: [3, 3], stride: [2, 2], pads: [1; 4] };
        assert_eq!(stem.output_dims((64, 112, 112)), (64, 56, 56));
        // Its corner window covers 2×2 cells of the image; its average divides by 4.
        let avg = Pool { kind: PoolKind::Average, ..stem };
        let input: Vec<u8> = (0..16).collect(); // 1×4×4
        assert_eq!(avg.windows((1, 4, 4))[0], vec![0, 1, 4, 5]);
        assert_eq!(pool_tensor_native(&avg, (1, 4, 4), &input)[0], 3); // (0+1+4+5)/4 = 2.5 → 3
        let global = Pool::global(PoolKind::Average, (2, 4, 4));
        let two: Vec<u8> = (0..32).collect();
        assert_eq!(global.output_dims((2, 4, 4)), (2, 1, 1));
        assert_eq!(pool_tensor_native(&global, (2, 4, 4), &two), vec![8, 24]); // 7.5 → 8, 23.5 → 24
        assert!(Pool { pads: [3, 0, 0, 0], ..stem }.check((1, 8, 8)).is_err());
        assert!(Pool::square(PoolKind::Max, 5).check((1, 4, 4)).is_err());
    }
}
