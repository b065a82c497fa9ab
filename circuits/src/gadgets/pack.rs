//! Packed products: several accumulators share one field element, so one constraint
//! computes a product for each of them at once.
//!
//! In a convolution every weight multiplies one input cell per output position, and every
//! input cell is multiplied by one weight per output channel; in a dense layer every input
//! is multiplied by one weight per output. A *pack* is a set of up to `s` outputs (its
//! *slots*) chosen so that their taps share factors: consecutive positions of one channel
//! share weights ([`Share::Weight`], depthwise convolutions), consecutive channels of one
//! group at one position share input cells ([`Share::Input`], ordinary convolutions and
//! dense layers). Each shared factor `f` (a *group*) costs one constraint
//!
//! `f · Σ_slot 2^(k·slot) · g_slot = p`
//!
//! where `g_slot` is the other factor of that slot's tap (0 if the slot has no tap there).
//! The sum of a pack's products then equals `Σ_slot 2^(k·slot) · (acc_slot - c_slot)`,
//! with `c_slot` the slot's constant part (bias, residual term), and each `acc_slot` is the
//! recomposition of the `B` requantization bits the output allocates anyway. So a pack of
//! `s` outputs with fan-in `n` costs `n` product constraints instead of `s·n`, and the
//! slots need no extra decomposition.
//!
//! **No carry between slots.** The caller range-checks every factor: weights to int8,
//! stored activations to 7 bits (so `|a - zero_point| ≤ 255`), biases to int32. The true
//! accumulator of a slot is therefore bounded: `|t| ≤ W = fan_in·128·255 + 2^31 +
//! skip·255` (fan-in counting projection taps). The slot width is
//! `k = max(B, bits(W)) + 2`, and `k·s ≤` [`PACK_BITS`] `= 252`. The prover's slot values
//! are `d = Σ b_i 2^i ∈ [0, 2^B)` (booleanity of every bit), the true ones
//! `t + 2^(B-1)`; their difference per slot is below `2^B + 2^(B-1) + W < 2^k` in magnitude.
//! The pack's equation says `Σ 2^(k·slot) · (d_slot - t_slot - 2^(B-1)) ≡ 0 (mod p)`; the left
//! side is below `2^(k·s+1) ≤ 2^253 < p` in magnitude, so it is 0 as an integer, and reading
//! it modulo `2^k`, slot by slot from the lowest, every difference is 0: each slot's bits are
//! exactly its true accumulator. A slot whose true accumulator does not fit `B` bits has no
//! satisfying bits at all, as without packing. A prover cannot move a carry from one slot
//! into the next: a carry of `2^k` cannot be written with `B < k` boolean bits
//! (`a_carry_between_slots_is_rejected`).
//!
//! **Shared sums.** The other factor of a group, `Σ_slot 2^(k·slot) · g_slot`, is a sum of
//! `s` weights or activations, each itself a combination of its range-check bits: written
//! into every product constraint it would make each one ~9·s entries long, and the prover's
//! memory and folding time grow with those entries, not with the constraints. The same sum
//! recurs across the layer — an input-sharing pack's weight sums at every output position,
//! a weight-sharing pack's activation sums for every output channel of its channel group —
//! so where it can recur ([`Packing::reuses_sums`]) each distinct sum is allocated once,
//! bound by one linear constraint `sum · 1 = Σ_slot 2^(k·slot) · g_slot`, and the products
//! read the variable. This substitutes a variable for a linear combination it is
//! constrained to equal, so the argument above is unchanged.

use super::linear::{Linear, LinearShape, Tap};
use crate::quant::{ACT_BITS, BIAS_BITS};
use std::collections::HashSet;

/// Field bits a pack may use (the Pallas scalar field has `p > 2^254`; one bit of sign and
/// one of sum are kept free).
pub const PACK_BITS: u32 = 252;

/// The fewest uses of a sum that pay for allocating it: a sum of `s` one-variable
/// factors costs a constraint, a variable and `s + 2` matrix entries, and saves `s - 1`
/// entries in each product that reads it (`s ≈ 7`: three uses barely break even on
/// entries, and the default 2-channel layer, whose sums recur twice, would only grow).
pub const MIN_SUM_REUSE: usize = 4;

/// Which factor the products of a pack share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// Slots are positions of one output channel; a group is one weight.
    Weight,
    /// Slots are output channels at one position; a group is one input cell.
    Input,
}

/// The taps of a pack that share one factor: `(slot, weight index, input)` each.
pub type Group = Vec<(usize, usize, Tap)>;

/// How a linear layer's outputs are packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Bits per slot, `k`.
    pub slot_bits: u32,
    /// Outputs per pack, `s` (1: one product per multiply-accumulate, no packing).
    pub slots: usize,
    /// What the products of a pack share.
    pub share: Share,
}

impl Packing {
    /// As many slots as the field holds (see the module docs).
    pub fn of(op: &Linear) -> Self {
        Self::with_max_slots(op, usize::MAX)
    }

    /// At most `max_slots` outputs per pack (1 gives the unpacked circuit).
    pub fn with_max_slots(op: &Linear, max_slots: usize) -> Self {
        let slot_bits = slot_bits(op);
        let slots = ((PACK_BITS / slot_bits) as usize).min(max_slots).max(1);
        let count = |share| pack_count(&op.shape, share, slots);
        let share = if count(Share::Weight) <= count(Share::Input) { Share::Weight } else { Share::Input };
        Self { slot_bits, slots, share }
    }

    /// The outputs of every pack, in synthesis order; slot `j` of a pack is its `j`-th.
    pub fn packs(&self, op: &Linear) -> Vec<Vec<usize>> {
        let (channels, groups, positions) = layout(&op.shape);
        let s = self.slots;
        match self.share {
            Share::Weight => (0..channels)
                .flat_map(|c| {
                    (0..positions)
                        .step_by(s)
                        .map(move |p| (p..(p + s).min(positions)).map(|q| c * positions + q).collect())
                })
                .collect(),
            Share::Input => {
                let per_group = channels / groups;
                (0..positions)
                    .flat_map(|p| {
                        (0..groups).flat_map(move |g| {
                            (0..per_group).step_by(s).map(move |c| {
                                (c..(c + s).min(per_group)).map(|j| (g * per_group + j) * positions + p).collect()
                            })
                        })
                    })
                    .collect()
            }
        }
    }

    /// The groups of one pack (sorted by their shared factor: the same order for every
    /// witness, as a circuit needs).
    pub fn groups(&self, op: &Linear, outputs: &[usize]) -> Vec<Group> {
        let key = |wi: usize, t: Tap| match self.share {
            Share::Weight => wi,
            Share::Input => tap_index(t),
        };
        let mut terms: Vec<(usize, usize, usize, Tap)> = outputs
            .iter()
            .enumerate()
            .flat_map(|(slot, &o)| op.taps(o).into_iter().map(move |(wi, t)| (key(wi, t), slot, wi, t)))
            .collect();
        terms.sort_unstable_by_key(|&(k, slot, ..)| (k, slot));
        terms.chunk_by(|a, b| a.0 == b.0).map(|g| g.iter().map(|&(_, slot, wi, t)| (slot, wi, t)).collect()).collect()
    }

    /// Product constraints of the whole layer (one per group; one per pack without taps),
    /// and one per distinct shared sum.
    pub fn product_constraints(&self, op: &Linear) -> usize {
        let reuse = self.reuses_sums(op);
        let mut sums: HashSet<Vec<(usize, usize)>> = HashSet::new();
        let mut products = 0;
        for p in self.packs(op) {
            let groups = self.groups(op, &p);
            products += groups.len().max(1);
            if reuse {
                sums.extend(groups.iter().map(|g| self.sum_key(g)));
            }
        }
        products + sums.len()
    }

    /// An upper bound of [`Self::product_constraints`] without listing the groups (every
    /// weight or input in a sum of its own).
    pub fn product_constraints_bound(&self, op: &Linear) -> usize {
        let sums = match (self.reuses_sums(op), self.share) {
            (false, _) => 0,
            (true, Share::Input) => op.num_weights(),
            (true, Share::Weight) => op.shape.num_inputs() + op.projection.map_or(0, |p| p.num_inputs()),
        };
        pack_count(&op.shape, self.share, self.slots) * fan_in(op).max(1) + sums
    }

    /// True when each distinct sum of a group's other factors is allocated once (see the
    /// module docs): a pack has several slots (one slot's "sum" is a single factor) and
    /// each sum recurs at least [`MIN_SUM_REUSE`] times — once per output position
    /// (input-sharing packs) or per output channel of a channel group (weight-sharing).
    pub fn reuses_sums(&self, op: &Linear) -> bool {
        let (channels, groups, positions) = layout(&op.shape);
        let reuse = match self.share {
            Share::Input => positions,
            Share::Weight => channels / groups,
        };
        self.slots > 1 && reuse >= MIN_SUM_REUSE
    }

    /// What identifies the sum of a group's other factors: its `(slot, weight)` pairs, or
    /// `(slot, tap)` pairs with the block input's taps odd.
    pub fn sum_key(&self, group: &[(usize, usize, Tap)]) -> Vec<(usize, usize)> {
        group
            .iter()
            .map(|&(slot, wi, t)| match self.share {
                Share::Input => (slot, wi),
                Share::Weight => (slot, tap_index(t)),
            })
            .collect()
    }
}

/// A tap's input as one index: the layer input's even, the block input's odd.
fn tap_index(t: Tap) -> usize {
    match t {
        Tap::Input(i) => 2 * i,
        Tap::Block(i) => 2 * i + 1,
    }
}

/// `(output channels, channel groups, positions per channel)` of a layer's outputs.
fn layout(shape: &LinearShape) -> (usize, usize, usize) {
    match shape {
        LinearShape::Conv(c) => {
            let (co, h, w) = c.output_dims();
            (co, c.groups, h * w)
        }
        LinearShape::Dense(d) => (d.outputs, 1, 1),
    }
}

/// How many packs of at most `slots` outputs [`Packing::packs`] makes under `share`.
fn pack_count(shape: &LinearShape, share: Share, slots: usize) -> usize {
    let (channels, groups, positions) = layout(shape);
    match share {
        Share::Weight => channels * positions.div_ceil(slots),
        Share::Input => positions * groups * (channels / groups).div_ceil(slots),
    }
}

/// Largest number of taps of one output, projection included.
fn fan_in(op: &Linear) -> usize {
    op.shape.max_fan_in() + op.projection.map_or(0, |p| p.fan_in())
}

/// Slot width `k = max(B, bits(W)) + 2` (see the module docs).
pub fn slot_bits(op: &Linear) -> u32 {
    let x_max = (1u128 << (ACT_BITS + 1)) - 1; // |a - zero_point| ≤ 255
    let w_max = 128u128;
    let worst = fan_in(op) as u128 * w_max * x_max + (1u128 << (BIAS_BITS - 1)) + u128::from(op.skip) * x_max;
    let bits = 128 - worst.leading_zeros();
    op.requant.acc_bits().max(bits) + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::conv::ConvShape;
    use crate::gadgets::dense::DenseShape;
    use crate::gadgets::linear::linear_accumulators;
    use crate::gadgets::linear::tests::{case, conv_shape, dense_shape, synth_with, Case};
    use crate::gadgets::requant::RequantHint;
    use crate::quant::RequantSpec;
    use crate::F;
    use ff::Field;
    use proptest::prelude::*;

    fn op(shape: LinearShape, acc_bits: u32) -> Linear {
        let requant = RequantSpec::new(0, acc_bits).unwrap();
        Linear { shape, requant, skip: 0, projection: None, zero_point: 0, block_zero_point: 0 }
    }

    #[test]
    fn each_layer_kind_shares_what_it_reuses() {
        let conv = op(LinearShape::Conv(ConvShape::same(16, 16, 8, 8, 3)), 24);
        let p = Packing::of(&conv);
        // worst |acc| = 144·128·255 + 2^31 < 2^32: 34-bit slots, 7 per field element
        // 16 channels × ⌈64/7⌉ position packs (160) beat 64 positions × ⌈16/7⌉ channel packs
        assert_eq!((p.slot_bits, p.slots, p.share), (34, 7, Share::Weight));
        // (and at most one shared sum per input: the 7 positions of a pack at one tap)
        assert_eq!(p.product_constraints_bound(&conv), 160 * 144 + 16 * 8 * 8);
        assert!(p.product_constraints(&conv) * 5 < conv.macs());
        let seven = op(LinearShape::Conv(ConvShape::same(16, 7, 8, 8, 3)), 24);
        let p = Packing::of(&seven);
        assert_eq!(p.share, Share::Input);
        // one pack per position; the 7 weights of each of the 16·9 input taps summed once
        assert_eq!(p.product_constraints(&seven), seven.macs() / 7 + 16 * 9);
        let depthwise = op(LinearShape::Conv(ConvShape { groups: 8, ..ConvShape::same(8, 8, 8, 8, 3) }), 24);
        assert_eq!(Packing::of(&depthwise).share, Share::Weight);
        let dense = op(LinearShape::Dense(DenseShape { inputs: 10, outputs: 20 }), 24);
        let p = Packing::of(&dense);
        assert_eq!(p.share, Share::Input);
        assert_eq!(p.product_constraints(&dense), 10 * 3);
        // a wide accumulator narrows the slots
        assert_eq!(Packing::of(&op(dense.shape, 62)).slots, 3);
        assert_eq!(Packing::with_max_slots(&conv, 1).product_constraints(&conv), conv.macs());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(6), ..ProptestConfig::default() })]
        #[test]
        fn packs_cover_every_output_once(c in prop_oneof![conv_shape(), dense_shape()].prop_flat_map(case), max in 1usize..9) {
            let packing = Packing::with_max_slots(&c.op, max);
            let mut seen: Vec<usize> = packing.packs(&c.op).concat();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..c.op.shape.num_outputs()).collect::<Vec<_>>());
            for outs in packing.packs(&c.op) {
                prop_assert!(outs.len() <= packing.slots);
                let groups = packing.groups(&c.op, &outs);
                // every tap once, and each group shares its factor
                prop_assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), outs.iter().map(|&o| c.op.taps(o).len()).sum::<usize>());
                for g in &groups {
                    let shared = |t: &(usize, usize, Tap)| match packing.share {
                        Share::Weight => t.1 == g[0].1,
                        Share::Input => t.2 == g[0].2,
                    };
                    prop_assert!(g.iter().all(shared));
                }
            }
        }

        #[test]
        fn a_carry_between_slots_is_rejected(c in prop_oneof![conv_shape(), dense_shape()].prop_flat_map(case)) {
            // Slot 1 claims one less and slot 0 a carry of 2^k through its sign bit: the packed
            // sum is unchanged, so only the booleanity of that bit can catch it.
            let packing = Packing::of(&c.op);
            let packs = packing.packs(&c.op);
            let pack = packs.iter().find(|p| p.len() >= 2);
            prop_assume!(pack.is_some());
            let (o0, o1) = (pack.unwrap()[0], pack.unwrap()[1]);
            let p = c.op.requant;
            let acc = linear_accumulators(&c.op, &c.input, &c.block, &c.weights, &c.bias);
            let lower = RequantHint::new(acc[o1] - 1, p);
            prop_assume!(lower.is_ok());
            let mut hints = c.hints(packing).unwrap();
            hints.outputs[o1] = lower.unwrap();
            let b = p.acc_bits() as usize;
            hints.outputs[o0].bits[b - 1] += F::from(2).pow_vartime([u64::from(packing.slot_bits) - b as u64 + 1]);
            let ((sat, ..), which) = synth_with(&c, packing, &hints);
            prop_assert!(!sat);
            let which = which.unwrap();
            prop_assert!(which.contains(&format!("out{o0}/bits/b{} is boolean", b - 1)), "{}", which);
        }

        #[test]
        fn an_accumulator_out_of_range_is_rejected(c in conv_shape().prop_flat_map(case)) {
            // With 8-bit accumulators most sums overflow; a prover claims them wrapped into
            // range (each slot's bits valid, the products honest).
            let narrow = Linear { requant: RequantSpec::new(0, 8).unwrap(), ..c.op };
            let packing = Packing::of(&narrow);
            let acc = linear_accumulators(&narrow, &c.input, &c.block, &c.weights, &c.bias);
            prop_assume!(acc.iter().any(|&a| !(-128..128).contains(&a)));
            let wrapped = |a: i64| (a + 128).rem_euclid(256) - 128;
            let wide = Case { op: Linear { requant: RequantSpec::new(0, 30).unwrap(), ..c.op }, ..c };
            let mut hints = wide.hints(packing).unwrap();
            hints.outputs = acc.iter().map(|&a| RequantHint::new(wrapped(a), narrow.requant).unwrap()).collect();
            let c = Case { op: narrow, ..wide };
            prop_assert!(!synth_with(&c, packing, &hints).0 .0);
        }
    }

    #[test]
    fn slots_only_as_wide_as_the_accumulator_would_let_a_wrap_through() {
        // Why the slot is wider than B: two outputs (accumulators 130 and 5) packed in 8-bit
        // slots accept slot 0 wrapped to -126 with slot 1 raised to 6 (130 + 256·5 =
        // -126 + 256·6); the real slot width rejects the same claim.
        let c = Case {
            op: op(LinearShape::Dense(DenseShape { inputs: 1, outputs: 2 }), 8),
            input: vec![0],
            block: vec![0],
            weights: vec![3, -2],
            bias: vec![130, 5],
        };
        let forged = |packing: Packing| {
            let wide = Case { op: Linear { requant: RequantSpec::new(0, 30).unwrap(), ..c.op }, ..c.clone() };
            let mut hints = wide.hints(packing).unwrap();
            hints.outputs = [-126, 6].iter().map(|&a| RequantHint::new(a, c.op.requant).unwrap()).collect();
            synth_with(&c, packing, &hints).0 .0
        };
        assert!(forged(Packing { slot_bits: 8, slots: 2, share: Share::Input }));
        assert!(!forged(Packing::of(&c.op)));
    }
}
