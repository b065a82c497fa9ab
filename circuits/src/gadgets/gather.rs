//! Gather of one row of a table (ONNX `Gather` on axis 0: the token embedding of a
//! transformer), `e = E[t]` for a token id `t` and a `V×d` table `E` of committed int8
//! weights, read soundly: the prover can neither pick another row nor alter the one read.
//!
//! **Selector** (`V + 2` constraints). `V` selector bits `s_v`, each boolean; `Σ s_v = 1`;
//! `Σ v·s_v = t`. Exactly one bit is set, and it is `s_t`: so `t ∈ [0, V)` with no range
//! check of its own (a token outside has no satisfying selector), whether `t` is a public
//! input or a private value.
//!
//! **Read** (`V·⌈d/31⌉ + 8d` constraints). Read directly, `e_j = Σ_v s_v·E[v][j]` is one
//! dot product per column, `V·d` products. Instead the columns are read 31 at a time,
//! packed base 256: with `R_v = Σ_{q<31} 256^q·(E[v][j₀+q] + 128)`, one dot product
//! `Σ_v s_v·R_v = Σ_q 256^q·u_q` reads a block of 31 columns at `V` constraints, where each
//! `u_q = e_{j₀+q} + 128` is allocated with an 8-bit range check ([`alloc_uint`], 8
//! constraints) and their recomposition is the dot product's accumulator (free). In all
//! [`gather_constraints`] `= V + 2 + V·⌈d/31⌉ + 8d`, against `V·d + V + 2` read directly:
//! fewer for every table of more than 16 rows and 2 columns (per row `⌈d/31⌉ ≤ d/2` products
//! instead of `d`, for `8d` more constraints), 14× fewer for a vocabulary of 1000 at `d = 64`
//! (4,514 instead of 65,002). The outputs come out range-checked, as int8.
//!
//! **Soundness.** With `s` one-hot at `t`, the dot product's sum is `R_t` in the field.
//! `R_t ∈ [0, 2^248)` because every `E[t][j] + 128 ∈ [0, 256)`: the caller's table entries
//! must be range-checked int8 (as the model commitment's packing already requires of every
//! weight). `Σ_q 256^q·u_q ∈ [0, 2^248)` by the range checks. Both lie below `p`, so they
//! are equal as integers, and base-256 digits are unique: `u_q = E[t][j₀+q] + 128`. Rows
//! other than `t` are multiplied by zero and never read.

use super::bits::{add_constant, alloc_bits, alloc_uint, lc};
use super::dot::{dot_product, DotHint};
use crate::quant::{bits_le, WEIGHT_OFFSET};
use crate::F;
use ff::Field;
use nova_snark::frontend::{num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use thiserror::Error;

/// Columns read by one dot product: 31 digits of 8 bits fill 248 bits of the field.
pub const GATHER_BLOCK: usize = 31;

/// Bits of a digit `e + 128`.
const DIGIT_BITS: u32 = 8;

/// Errors of a gather's shape or token.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GatherError {
    /// A table with no rows or no columns.
    #[error("a gather needs a table of at least one row and one column, got {vocab}×{dim}")]
    EmptyTable {
        /// Rows.
        vocab: usize,
        /// Columns.
        dim: usize,
    },
    /// A table slice that is not `vocab·dim` long.
    #[error("a {vocab}×{dim} table needs {} values, got {got}", vocab.saturating_mul(*dim))]
    WrongLength {
        /// Rows.
        vocab: usize,
        /// Columns.
        dim: usize,
        /// Length given.
        got: usize,
    },
    /// A token outside the table.
    #[error("token {token} is outside the table's {vocab} rows")]
    TokenOutOfRange {
        /// The token.
        token: usize,
        /// Rows of the table.
        vocab: usize,
    },
}

/// The shape of a gather: `vocab` rows of `dim` int8 values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherSpec {
    vocab: usize,
    dim: usize,
}

impl GatherSpec {
    /// Fails on an empty table.
    pub fn new(vocab: usize, dim: usize) -> Result<Self, GatherError> {
        if vocab == 0 || dim == 0 {
            return Err(GatherError::EmptyTable { vocab, dim });
        }
        Ok(Self { vocab, dim })
    }

    /// `(vocab, dim)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.vocab, self.dim)
    }

    /// The columns of every block.
    fn blocks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..self.dim).step_by(GATHER_BLOCK).map(|j| j..(j + GATHER_BLOCK).min(self.dim))
    }

    fn check(&self, len: usize) -> Result<(), GatherError> {
        match len == self.vocab * self.dim {
            true => Ok(()),
            false => Err(GatherError::WrongLength { vocab: self.vocab, dim: self.dim, got: len }),
        }
    }
}

/// Constraints of [`gather`] (module docs).
pub fn gather_constraints(spec: &GatherSpec) -> usize {
    let (v, d) = spec.shape();
    v + 2 + v * d.div_ceil(GATHER_BLOCK) + DIGIT_BITS as usize * d
}

/// Native twin of [`gather`]: row `token` of the row-major table.
pub fn gather_native(spec: &GatherSpec, table: &[i8], token: usize) -> Result<Vec<i8>, GatherError> {
    spec.check(table.len())?;
    if token >= spec.vocab {
        return Err(GatherError::TokenOutOfRange { token, vocab: spec.vocab });
    }
    Ok(table[token * spec.dim..][..spec.dim].to_vec())
}

/// Witness of a gather.
#[derive(Clone, Debug, PartialEq)]
pub struct GatherHint {
    /// The selector bits `s_v`.
    pub selectors: Vec<F>,
    /// The dot product of every block.
    pub dots: Vec<DotHint>,
    /// The 8 bits of every output's digit `e_j + 128`.
    pub digits: Vec<Vec<F>>,
}

/// `Σ_q 256^q·x_q` over a block.
fn packed(values: impl Iterator<Item = F>) -> F {
    values.fold((F::ZERO, F::ONE), |(sum, w), x| (sum + w * x, w * F::from(1 << DIGIT_BITS))).0
}

impl GatherHint {
    /// Honest witness; fails where [`gather_native`] fails.
    pub fn new(spec: &GatherSpec, table: &[i8], token: usize) -> Result<Self, GatherError> {
        let row = gather_native(spec, table, token)?;
        let selectors = (0..spec.vocab).map(|v| if v == token { F::ONE } else { F::ZERO }).collect();
        Ok(Self::with_selectors(spec, table, selectors, &row))
    }

    /// The witness of `selectors` (any field values) claiming `row`: products of the
    /// selectors with the table, and the digits of `row` (for wrong-witness tests too).
    fn with_selectors(spec: &GatherSpec, table: &[i8], selectors: Vec<F>, row: &[i8]) -> Self {
        let digit = |x: i8| F::from((i64::from(x) + WEIGHT_OFFSET) as u64);
        let dots = spec
            .blocks()
            .map(|cols| {
                let read = |v: usize| packed(cols.clone().map(|j| digit(table[v * spec.dim + j])));
                DotHint::new(selectors.iter().enumerate().map(|(v, &s)| (s, read(v))))
            })
            .collect();
        let digits = row.iter().map(|&e| bits_le((i64::from(e) + WEIGHT_OFFSET) as u64, DIGIT_BITS)).collect();
        Self { selectors, dots, digits }
    }
}

/// Reads row `token` of the row-major table of range-checked int8 linear combinations
/// (module docs); returns the `dim` outputs, range-checked int8.
pub fn gather<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &GatherSpec,
    table: &[LinearCombination<F>],
    token: &LinearCombination<F>,
    hint: &GatherHint,
) -> Result<Vec<Num<F>>, SynthesisError> {
    spec.check(table.len()).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
    let (vocab, dim) = spec.shape();
    let blocks = dim.div_ceil(GATHER_BLOCK);
    let digits_ok = hint.digits.len() == dim && hint.digits.iter().all(|d| d.len() == DIGIT_BITS as usize);
    if hint.selectors.len() != vocab || hint.dots.len() != blocks || !digits_ok {
        return Err(SynthesisError::Unsatisfiable("gather witness has the wrong shape".into()));
    }
    let selectors = alloc_bits(&mut cs.namespace(|| "selector"), &hint.selectors)?;
    let ones = selectors.iter().fold(LinearCombination::zero(), |lc, s| lc + s.get_variable());
    cs.enforce(|| "one selector is set", |_| ones, |lc| lc + CS::one(), |lc| lc + CS::one());
    let index = selectors
        .iter()
        .enumerate()
        .fold(LinearCombination::zero(), |lc, (v, s)| lc + (F::from(v as u64), s.get_variable()));
    cs.enforce(|| "the selector is the token's", |_| index, |lc| lc + CS::one(), |_| token.clone());
    let selectors: Vec<_> = selectors.iter().map(|s| LinearCombination::zero() + s.get_variable()).collect();
    let radix = F::from(1 << DIGIT_BITS);
    let offset = F::from(WEIGHT_OFFSET as u64);
    let mut out = Vec::with_capacity(dim);
    for (b, cols) in spec.blocks().enumerate() {
        let mut read = LinearCombination::zero();
        let mut weight = F::ONE;
        let mut rows = vec![LinearCombination::zero(); vocab];
        for j in cols {
            let u = alloc_uint(&mut cs.namespace(|| format!("e{j}")), &hint.digits[j])?;
            read = read + (weight, &lc(&u));
            for (v, row) in rows.iter_mut().enumerate() {
                *row = std::mem::take(row) + (weight, &table[v * dim + j]) + (weight * offset, CS::one());
            }
            out.push(add_constant::<CS>(u, -offset));
            weight *= radix;
        }
        let taps: Vec<_> = selectors.iter().zip(&rows).collect();
        dot_product(
            &mut cs.namespace(|| format!("block{b}")),
            &taps,
            &LinearCombination::zero(),
            &read,
            &hint.dots[b],
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::int_to_field;
    use nova_snark::frontend::{num::AllocatedNum, test_cs::TestConstraintSystem};
    use proptest::prelude::*;

    /// Synthesizes a gather of `table` at `token` (a public input or a private value).
    fn synth(
        spec: &GatherSpec,
        table: &[i8],
        token: i64,
        public: bool,
        hint: &GatherHint,
    ) -> (TestConstraintSystem<F>, Vec<F>) {
        let mut cs = TestConstraintSystem::<F>::new();
        let lcs: Vec<_> = table
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let x = AllocatedNum::alloc(cs.namespace(|| format!("E{i}")), || Ok(int_to_field(v.into()))).unwrap();
                LinearCombination::zero() + x.get_variable()
            })
            .collect();
        let t = match public {
            true => AllocatedNum::alloc_input(cs.namespace(|| "t"), || Ok(int_to_field(token))),
            false => AllocatedNum::alloc(cs.namespace(|| "t"), || Ok(int_to_field(token))),
        }
        .unwrap();
        let out = gather(&mut cs.namespace(|| "g"), spec, &lcs, &(LinearCombination::zero() + t.get_variable()), hint)
            .unwrap();
        let values = out.iter().map(|e| e.get_value().unwrap()).collect();
        (cs, values)
    }

    fn fields(row: &[i8]) -> Vec<F> {
        row.iter().map(|&e| int_to_field(e.into())).collect()
    }

    fn case() -> impl Strategy<Value = (GatherSpec, Vec<i8>, usize, bool)> {
        (1usize..24, 1usize..70).prop_flat_map(|(v, d)| {
            let entry = prop_oneof![Just(-128i8), Just(127i8), any::<i8>()];
            (Just(GatherSpec::new(v, d).unwrap()), proptest::collection::vec(entry, v * d), 0..v, any::<bool>())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(61), ..ProptestConfig::default() })]
        #[test]
        fn matches_native((spec, table, token, public) in case()) {
            let row = gather_native(&spec, &table, token).unwrap();
            let (_, d) = spec.shape();
            prop_assert_eq!(&row[..], &table[token * d..(token + 1) * d]);
            let (cs, out) = synth(&spec, &table, token as i64, public, &GatherHint::new(&spec, &table, token).unwrap());
            prop_assert!(cs.is_satisfied());
            prop_assert_eq!(out, fields(&row));
            prop_assert_eq!(cs.num_constraints(), gather_constraints(&spec));
        }

        /// Any other claimed row (the row of another token, or one output off by one),
        /// with a consistent digit witness, is rejected.
        #[test]
        fn a_wrong_row_is_rejected((spec, table, token, public) in case(), other in any::<prop::sample::Index>(), j in any::<prop::sample::Index>(), up in any::<bool>()) {
            let (v, d) = spec.shape();
            let hint = GatherHint::new(&spec, &table, token).unwrap();
            let mut row = gather_native(&spec, &table, token).unwrap();
            let j = j.index(d);
            row[j] = if up { row[j].wrapping_add(1) } else { row[j].wrapping_sub(1) };
            let off = GatherHint { digits: GatherHint::with_selectors(&spec, &table, hint.selectors.clone(), &row).digits, ..hint };
            prop_assert!(!synth(&spec, &table, token as i64, public, &off).0.is_satisfied());
            let other = other.index(v);
            let theirs = gather_native(&spec, &table, other).unwrap();
            if theirs != gather_native(&spec, &table, token).unwrap() {
                let hint = GatherHint { selectors: GatherHint::new(&spec, &table, token).unwrap().selectors, ..GatherHint::new(&spec, &table, other).unwrap() };
                prop_assert!(!synth(&spec, &table, token as i64, public, &hint).0.is_satisfied());
            }
        }
    }

    /// A 6×40 table (two blocks) of small entries, so that a combination of two rows is
    /// still a row of int8 values: only the constraint under test can catch a forgery.
    fn small_table() -> (GatherSpec, Vec<i8>) {
        let table = (0..240).map(|i| ((i * 37 % 81) as i8) - 40).collect();
        (GatherSpec::new(6, 40).unwrap(), table)
    }

    /// The system of `selectors` claiming `row` for token `t`, and its first failure.
    fn forged(selectors: &[i64], row: &[i8], t: i64) -> Option<String> {
        let (spec, table) = small_table();
        let selectors = selectors.iter().map(|&s| int_to_field(s)).collect();
        let hint = GatherHint::with_selectors(&spec, &table, selectors, row);
        synth(&spec, &table, t, false, &hint).0.which_is_unsatisfied().map(str::to_string)
    }

    fn row(rows: &[(i64, usize)]) -> Vec<i8> {
        let (spec, table) = small_table();
        let at = |v| gather_native(&spec, &table, v).unwrap();
        (0..40).map(|j| rows.iter().map(|&(c, v)| c * i64::from(at(v)[j])).sum::<i64>() as i8).collect()
    }

    #[test]
    fn forged_selectors_are_rejected() {
        assert_eq!(forged(&[0, 0, 1, 0, 0, 0], &row(&[(1, 2)]), 2), None, "the honest witness");
        // two hot bits (here 1 and 3, whose indices sum to 4 = t: only the count catches it)
        assert_eq!(forged(&[0, 1, 0, 1, 0, 0], &row(&[(1, 1), (1, 3)]), 4).as_deref(), Some("g/one selector is set"));
        // one hot bit at the wrong index
        assert_eq!(forged(&[0, 0, 0, 1, 0, 0], &row(&[(1, 3)]), 2).as_deref(), Some("g/the selector is the token's"));
        // non-boolean selectors with the right sums: 2·s_1 - s_0 sums to 1 and indexes 2
        let blend = row(&[(2, 1), (-1, 0)]);
        assert_eq!(forged(&[-1, 2, 0, 0, 0, 0], &blend, 2).as_deref(), Some("g/selector/b0 is boolean"));
    }

    #[test]
    fn a_token_outside_the_table_has_no_witness() {
        let (spec, table) = small_table();
        assert_eq!(gather_native(&spec, &table, 6), Err(GatherError::TokenOutOfRange { token: 6, vocab: 6 }));
        assert!(GatherHint::new(&spec, &table, 6).is_err());
        // t = 6: the last row, no row, and 2·s_5 - s_4 (indexes 6, sums to 1)
        assert_eq!(forged(&[0, 0, 0, 0, 0, 1], &row(&[(1, 5)]), 6).as_deref(), Some("g/the selector is the token's"));
        assert_eq!(forged(&[0; 6], &[0; 40], 6).as_deref(), Some("g/one selector is set"));
        assert_eq!(
            forged(&[0, 0, 0, 0, -1, 2], &row(&[(2, 5), (-1, 4)]), 6).as_deref(),
            Some("g/selector/b4 is boolean")
        );
        assert_eq!(forged(&[0, 0, 0, 0, 0, 1], &row(&[(1, 5)]), -1).as_deref(), Some("g/the selector is the token's"));
    }

    /// Moving 256 from one digit into the next leaves the block's sum unchanged; only the
    /// range check of the digit that grew catches it.
    #[test]
    fn a_carry_between_digits_is_rejected() {
        let (spec, table) = small_table();
        let mut hint = GatherHint::new(&spec, &table, 2).unwrap();
        let (j, honest) = (7, gather_native(&spec, &table, 2).unwrap());
        assert!(honest[j + 1] > -128);
        hint.digits[j][7] += F::from(2); // the digit + 256
        hint.digits[j + 1] = bits_le((i64::from(honest[j + 1]) + WEIGHT_OFFSET - 1) as u64, DIGIT_BITS);
        let cs = synth(&spec, &table, 2, true, &hint).0;
        assert_eq!(cs.which_is_unsatisfied(), Some("g/e7/top bit is boolean"));
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        assert_eq!(GatherSpec::new(0, 4), Err(GatherError::EmptyTable { vocab: 0, dim: 4 }));
        let spec = GatherSpec::new(3, 4).unwrap();
        assert_eq!(gather_native(&spec, &[0; 11], 0), Err(GatherError::WrongLength { vocab: 3, dim: 4, got: 11 }));
        let hint = GatherHint::new(&spec, &[0; 12], 1).unwrap();
        let mut cs = TestConstraintSystem::<F>::new();
        let lcs = vec![LinearCombination::zero(); 11];
        assert!(gather(&mut cs, &spec, &lcs, &LinearCombination::zero(), &hint).is_err());
        let lcs = vec![LinearCombination::zero(); 12];
        let short = GatherHint { digits: vec![], ..hint.clone() };
        assert!(gather(&mut cs, &spec, &lcs, &LinearCombination::zero(), &short).is_err());
        let mut narrow = hint;
        narrow.digits[3].pop();
        assert!(gather(&mut cs, &spec, &lcs, &LinearCombination::zero(), &narrow).is_err());
    }

    #[test]
    fn counts_at_embedding_sizes() {
        let count = |v, d| gather_constraints(&GatherSpec::new(v, d).unwrap());
        assert_eq!(count(1000, 64), 1000 + 2 + 1000 * 3 + 8 * 64);
        assert_eq!(count(1000, 64), 4_514);
        assert_eq!(count(50_257, 768), 1_312_828);
        // against the direct read V·d + V + 2: packing pays from 17 rows at the narrowest
        // table it can pay for (2 columns), from 9 rows at a full block
        let direct = |v: usize, d: usize| v * d + v + 2;
        assert!(count(17, 2) < direct(17, 2) && count(16, 2) == direct(16, 2));
        assert!(count(9, 31) < direct(9, 31) && count(8, 31) > direct(8, 31));
    }
}
