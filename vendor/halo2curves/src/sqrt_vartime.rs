//! fold-ml patch: a variable-time square root for hash-to-curve (see `PATCHED.md`).
//!
//! `p - 1 = 2^S * t` with `t` odd, and `g` (`ROOT_OF_UNITY`) generates the subgroup of order
//! `2^S`. For `a != 0`, `b = a^t` lies in that subgroup, so `b = g^d` for some `d < 2^S`,
//! and `a` is a square exactly when `d` is even; then `x = a^((t+1)/2)` has
//! `x^2 = a * g^d`, so `x * g^(-d/2)` is a root of `a`. The discrete log `d` is found
//! `W` bits at a time from tables of powers of `g` (Sarkar's method, as in `pasta_curves`'
//! `sqrt-table`), instead of the generic constant-time Tonelli-Shanks loop, whose cost
//! grows with `S^2` (`S = 32` on Pasta).
//!
//! Table lookups and branches depend on the input: use this only on public values. Here it
//! serves hash-to-curve, whose inputs in Nova are the public labels of its generators.

use core::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use ff::PrimeField;
use subtle::{Choice, CtOption};

/// Bits of the discrete log found per table lookup.
const W: u32 = 8;

struct Tables<F> {
    /// `(t - 1) / 2`, little-endian limbs.
    exp: Vec<u64>,
    /// `inv[k][j] = g^(-j * 2^(W k))` for `k < S / W`, `j < 2^W`.
    inv: Vec<Vec<F>>,
    /// Discrete logs of the `2^W` powers of `h = g^(2^(S - W))`, keyed by their encoding.
    dlog: HashMap<u128, u32>,
}

fn key<F: PrimeField>(f: &F) -> u128 {
    let repr = f.to_repr();
    let mut k = [0u8; 16];
    let bytes = repr.as_ref();
    let n = bytes.len().min(16);
    k[..n].copy_from_slice(&bytes[..n]);
    u128::from_le_bytes(k)
}

/// `p >> (S + 1)`, which is `(t - 1) / 2` since `p = 2^S t + 1`.
fn half_t<F: PrimeField>() -> Option<Vec<u64>> {
    let hex = F::MODULUS.strip_prefix("0x")?;
    let mut limbs = vec![0u64; hex.len().div_ceil(16)];
    for (i, c) in hex.bytes().rev().enumerate() {
        let digit = (c as char).to_digit(16)? as u64;
        limbs[i / 16] |= digit << (4 * (i % 16));
    }
    let shift = F::S + 1;
    let (words, bits) = ((shift / 64) as usize, shift % 64);
    let mut out = vec![0u64; limbs.len()];
    for i in 0..limbs.len().saturating_sub(words) {
        let lo = limbs[i + words] >> bits;
        let hi = match (bits, limbs.get(i + words + 1)) {
            (0, _) | (_, None) => 0,
            (_, Some(next)) => next << (64 - bits),
        };
        out[i] = lo | hi;
    }
    Some(out)
}

fn build<F: PrimeField>() -> Option<Tables<F>> {
    if F::S < W || F::S % W != 0 {
        return None;
    }
    let exp = half_t::<F>()?;
    let chunks = (F::S / W) as usize;
    let g_inv = F::ROOT_OF_UNITY_INV;
    let mut inv = Vec::with_capacity(chunks);
    let mut base = g_inv; // g^(-2^(W k))
    for _ in 0..chunks {
        let mut row = Vec::with_capacity(1 << W);
        let mut acc = F::ONE;
        for _ in 0..(1u32 << W) {
            row.push(acc);
            acc *= base;
        }
        inv.push(row);
        for _ in 0..W {
            base = base.square();
        }
    }
    // h = g^(2^(S - W)) has order 2^W; its powers must be told apart by their keys
    let mut h = F::ROOT_OF_UNITY;
    for _ in 0..(F::S - W) {
        h = h.square();
    }
    let mut dlog = HashMap::with_capacity(1 << W);
    let mut acc = F::ONE;
    for j in 0..(1u32 << W) {
        if dlog.insert(key(&acc), j).is_some() {
            return None;
        }
        acc *= h;
    }
    (acc == F::ONE).then_some(Tables { exp, inv, dlog })
}

type Cache = RwLock<HashMap<(TypeId, Vec<u8>), Arc<dyn Any + Send + Sync>>>;

/// Computes `build()` once per type `K` and `extra` key bytes, then returns a shared copy.
pub(crate) fn memo<K: 'static, V: Any + Send + Sync>(extra: &[u8], build: impl FnOnce() -> V) -> Option<Arc<V>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = (TypeId::of::<K>(), extra.to_vec());
    let found = cache.read().ok()?.get(&id).cloned();
    let entry = match found {
        Some(entry) => entry,
        None => {
            let built = Arc::new(build()) as Arc<dyn Any + Send + Sync>;
            cache.write().ok()?.entry(id).or_insert(built).clone()
        }
    };
    entry.downcast::<V>().ok()
}

/// `a^e` for little-endian limbs `e`, with a fixed 4-bit window.
fn pow<F: PrimeField>(a: &F, e: &[u64]) -> F {
    let mut small = [F::ONE; 16];
    for i in 1..16 {
        small[i] = small[i - 1] * a;
    }
    let mut acc = F::ONE;
    let mut started = false;
    for limb in e.iter().rev() {
        for nibble in (0..16).rev() {
            if started {
                for _ in 0..4 {
                    acc = acc.square();
                }
            }
            let n = ((limb >> (4 * nibble)) & 15) as usize;
            if n != 0 {
                acc *= small[n];
                started = true;
            }
        }
    }
    acc
}

/// A square root of `a` when it has one, in variable time; falls back to the field's own
/// `sqrt` for fields whose 2-adicity is not a multiple of the table window.
pub fn sqrt<F: PrimeField>(a: &F) -> CtOption<F> {
    let tables = memo::<F, Option<Tables<F>>>(&[], build::<F>);
    match tables.as_deref() {
        Some(Some(t)) => match sqrt_with(a, t) {
            Some(root) => CtOption::new(root, Choice::from(1)),
            None => CtOption::new(F::ZERO, Choice::from(0)),
        },
        _ => a.sqrt(),
    }
}

fn sqrt_with<F: PrimeField>(a: &F, t: &Tables<F>) -> Option<F> {
    if bool::from(a.is_zero()) {
        return Some(F::ZERO);
    }
    let w = pow(a, &t.exp);
    let x = w * a; // a^((t+1)/2)
    let b = x * w; // a^t = g^d
    let chunks = t.inv.len();
    // powers[k] = b^(2^(W k))
    let mut powers = Vec::with_capacity(chunks);
    let mut c = b;
    for _ in 0..chunks {
        powers.push(c);
        for _ in 0..W {
            c = c.square();
        }
    }
    // digit i of d: (b * g^(-(d mod 2^(W i))))^(2^(S - W(i+1))) = h^(d_i)
    let mut digits = Vec::with_capacity(chunks);
    for i in 0..chunks {
        let mut v = powers[chunks - 1 - i];
        for (l, &d) in digits.iter().enumerate() {
            v *= t.inv[chunks - 1 - i + l][d as usize];
        }
        digits.push(*t.dlog.get(&key(&v))?);
    }
    if digits[0] & 1 == 1 {
        return None; // d odd: a is not a square
    }
    // e = d / 2, in W-bit digits; the root is x * g^(-e)
    let mut root = x;
    for l in 0..chunks {
        let low = digits[l] >> 1;
        let high = digits.get(l + 1).map_or(0, |&d| (d & 1) << (W - 1));
        root *= t.inv[l][(low | high) as usize];
    }
    (root.square() == *a).then_some(root)
}
