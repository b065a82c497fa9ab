//! Pooling over non-overlapping `s×s` windows (stride `s`, no padding, trailing rows and
//! columns that do not fill a window are dropped, as ONNX's floor mode does), applied to a
//! convolution's requantized outputs (channel-major `C×H×W`).
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

/// A pooling stage: `size×size` windows with stride `size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Reduction.
    pub kind: PoolKind,
    /// Window side (and stride), at least 1.
    pub size: usize,
}

/// Bits needed to write every value below `n`.
fn bits_below(n: u64) -> u32 {
    u64::BITS - (n.saturating_sub(1)).leading_zeros()
}

impl Pool {
    /// Cells per window.
    pub fn window(&self) -> usize {
        self.size * self.size
    }

    /// Output dimensions for a `C×H×W` input.
    pub fn output_dims(&self, (c, h, w): (usize, usize, usize)) -> (usize, usize, usize) {
        (c, h / self.size.max(1), w / self.size.max(1))
    }

    /// Input indices of every output's window, outputs in channel-major order.
    pub fn windows(&self, dims: (usize, usize, usize)) -> Vec<Vec<usize>> {
        let (c, h, w) = dims;
        let (_, ph, pw) = self.output_dims(dims);
        let s = self.size;
        let mut out = Vec::with_capacity(c * ph * pw);
        for ch in 0..c {
            for py in 0..ph {
                for px in 0..pw {
                    let cells = (0..s).flat_map(|dy| (0..s).map(move |dx| (ch * h + py * s + dy) * w + px * s + dx));
                    out.push(cells.collect());
                }
            }
        }
        out
    }

    /// Constraints per output window.
    pub fn constraints_per_output(&self) -> usize {
        let n = self.window();
        match self.kind {
            PoolKind::Max => n * (ACT_BITS as usize + 1) + (n - 1).max(1),
            PoolKind::Average => {
                let rb = bits_below(n as u64) as usize;
                let twice = usize::from(!n.is_power_of_two());
                ACT_BITS as usize + rb + 1 + twice * (rb + 1)
            }
        }
    }
}

/// Native pooling of one window.
pub fn pool_native(kind: PoolKind, cells: &[u8]) -> u8 {
    match kind {
        PoolKind::Max => cells.iter().copied().max().unwrap_or(0),
        PoolKind::Average => {
            let n = cells.len().max(1) as u32;
            ((cells.iter().map(|&c| u32::from(c)).sum::<u32>() + n / 2) / n) as u8
        }
    }
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
                let n = cells.len() as u64;
                let rb = bits_below(n);
                let sum: u64 = cells.iter().map(|&c| u64::from(c)).sum();
                let r = sum + n / 2 - n * u64::from(y);
                let mut bits = vec![bits_le(u64::from(y), ACT_BITS), bits_le(r, rb)];
                if !n.is_power_of_two() {
                    bits.push(bits_le(n - 1 - r, rb));
                }
                bits
            }
        };
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
            let nn = n as u64;
            let expected = if nn.is_power_of_two() { 2 } else { 3 };
            if hint.bits.len() != expected || n == 0 {
                return Err(wrong());
            }
            let q = alloc_uint(&mut cs.namespace(|| "q"), &hint.bits[0])?;
            let sum = cells.iter().fold(LinearCombination::zero(), |acc, c| acc + c);
            let r = sum + (F::from(nn / 2), CS::one()) - &q.lc(F::from(nn));
            decompose(&mut cs.namespace(|| "r"), &hint.bits[1], r.clone())?;
            if expected == 3 {
                let rest = LinearCombination::zero() + (F::from(nn - 1), CS::one()) - &r;
                decompose(&mut cs.namespace(|| "n-1-r"), &hint.bits[2], rest)?;
            }
            Ok(q)
        }
    }
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
        fn matches_native(kind in kind(), size in 1usize..4, seed in proptest::collection::vec(0u8..=127, 9)) {
            let cells = &seed[..size * size];
            let hint = PoolHint::new(kind, cells);
            let (sat, y, n) = synth(kind, cells, &hint);
            prop_assert!(sat);
            prop_assert_eq!(y, Some(F::from(u64::from(pool_native(kind, cells)))));
            prop_assert_eq!(n, Pool { kind, size }.constraints_per_output());
        }

        #[test]
        fn wrong_output_rejected(kind in kind(), size in 1usize..4, seed in proptest::collection::vec(0u8..=127, 9), delta in 1u8..128) {
            let cells = &seed[..size * size];
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
        let pool = Pool { kind: PoolKind::Max, size: 2 };
        assert_eq!(pool.output_dims((2, 5, 3)), (2, 2, 1));
        let input: Vec<u8> = (0..30).collect();
        assert_eq!(pool_tensor_native(&pool, (2, 5, 3), &input), vec![4, 10, 19, 25]);
    }
}
