//! A shared pair averaged globally (ResNet's last block): the second pass keeps the running
//! per-channel sums of the block's output in one commitment instead of chaining its rows
//! (see [`super`], "A pair averaged globally").

use super::pair::Shared;
use super::terms::{equal_if, product, select, Term};
use crate::commit::{chain_link, chain_link_native, domain_tag, hash, hash_native, pack, pack_native};
use crate::gadgets::pool::{average_of_sum, PoolHint};
use crate::F;
use ff::Field;
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, SynthesisError};

/// Domain tag of a pooled pair's running per-channel sums (packed).
pub const TAG_PAIR_SUMS: u64 = 0xf01d_000d;

impl Shared {
    /// `[C, H, W]` of the block's output before the pooling.
    fn pooled_dims(&self) -> [usize; 3] {
        self.pair.pass_b().output_dims()
    }

    /// Bits per packed running sum: `2^bits ≥ 128·H·W + 127·W`, the bound the argument in
    /// [`super`] needs (a sum is below `128·H·W`, a tile adds at most `127·W`).
    fn sum_bits(&self) -> u32 {
        let [_, h, w] = self.pooled_dims();
        let bound = (128 * h * w + 127 * w) as u64;
        u64::BITS - bound.leading_zeros()
    }

    fn sums_tag(&self) -> F {
        domain_tag(TAG_PAIR_SUMS, self.pooled_dims()[0])
    }

    /// The commitment to running sums: `H(tag, pack(sums))`.
    fn commit_native(&self, sums: &[u64]) -> F {
        let items: Vec<F> = std::iter::once(self.sums_tag()).chain(pack_native(sums, self.sum_bits())).collect();
        hash_native(&items)
    }

    /// The running sums after this tile: the ones before it plus, in the second pass, its
    /// group's row (`output`, channel-major) summed per channel.
    fn sums_after(&self, output: &[u8], group: usize) -> Vec<u64> {
        let mut sums = self.sums_before.clone();
        if self.second {
            let g = self.pair.channels;
            let w = output.len() / g.max(1);
            for (j, row) in output.chunks(w.max(1)).enumerate() {
                sums[group * g + j] += row.iter().map(|&v| u64::from(v)).sum::<u64>();
            }
        }
        sums
    }

    /// The averaging witness of each channel's sum.
    fn hints(&self, sums: &[u64]) -> Vec<PoolHint> {
        let [_, h, w] = self.pooled_dims();
        sums.iter().map(|&s| PoolHint::average(s, (h * w) as u64)).collect()
    }

    /// Natively, `(output commitment, commitment to the sums after this tile)`: the means
    /// chained as the block's one output row under `blind_out`, and the running sums.
    pub(super) fn pool_native(&self, output: &[u8], group: usize, blind_out: F) -> (F, F) {
        let sums = self.sums_after(output, group);
        // the value of each quotient's bits, as the circuit reads it (a sum past the bound
        // fails its range checks; its mean still has the circuit's value)
        let weigh = |bits: &[F]| bits.iter().rev().fold(0u8, |acc, b| (acc << 1) | u8::from(*b == F::ONE));
        let means: Vec<u8> = self.hints(&sums).iter().map(|h| weigh(&h.bits[0])).collect();
        let tag = self.pair.block().output_layout().tag();
        (chain_link_native(tag, blind_out, &means), self.commit_native(&sums))
    }

    /// The running sums in the circuit: the sums before the tile (allocated) open the
    /// previous tile's commitment `carried`, or, in the pass's first tile, the commitment to
    /// zeros — checked in the second pass (`bit`) only; each channel adds its group's row
    /// times its gated group flag (`flags`: one product per channel); every tile averages
    /// the sums after it (which bounds them, see [`super`]) and chains the means under
    /// `blind_out`. Returns `(output commitment, commitment to the sums after)`; only the
    /// second pass uses them.
    pub(super) fn pool<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        (outputs, own): (&[Num<F>], &[u8]),
        flags: &[Term],
        (t_first, bit): (&Term, &Term),
        carried: &AllocatedNum<F>,
        blind_out: &AllocatedNum<F>,
    ) -> Result<(AllocatedNum<F>, AllocatedNum<F>), SynthesisError> {
        let [ch, h, w] = self.pooled_dims();
        let g = self.pair.channels;
        if outputs.len() != g * w || self.sums_before.len() != ch || flags.len() * g != ch {
            return Err(SynthesisError::Unsatisfiable("pooling witness has the wrong length".into()));
        }
        // the group the tile index selects (a tile run at another index adds its row there)
        let group = flags.iter().position(|f| f.1 == Some(F::ONE)).unwrap_or(0);
        let after_native = self.sums_after(own, group);
        let hints = self.hints(&after_native);
        let locals: Vec<Term> = outputs
            .chunks(w)
            .map(|row| Term(row.iter().fold(Num::zero(), |acc, v| acc.add(v)).lc(F::ONE), Self::value(row)))
            .collect();
        let (mut before, mut after, mut means) = (Vec::new(), Vec::new(), Vec::new());
        for c in 0..ch {
            let mut cs = cs.namespace(|| format!("channel {c}"));
            let prev = AllocatedNum::alloc(cs.namespace(|| "sum before"), || Ok(F::from(self.sums_before[c])))?;
            let add = product(&mut cs.namespace(|| "add"), &flags[c / g], &locals[c % g])?;
            let next = Num::from(prev.clone()).add(&Num::from(add));
            means.push(average_of_sum(&mut cs.namespace(|| "mean"), next.lc(F::ONE), (h * w) as u64, &hints[c])?);
            before.push(Num::from(prev));
            after.push(next);
        }
        let bits = self.sum_bits();
        let commit = |cs: &mut CS, name: &str, sums: &[Num<F>]| {
            let tag = Elt::num_from_fr::<CS>(self.sums_tag());
            let items: Vec<Elt<F>> = std::iter::once(tag).chain(pack(sums, bits).into_iter().map(Elt::Num)).collect();
            hash(&mut cs.namespace(|| name.to_string()), &items)
        };
        let opened = commit(cs, "open sums", &before)?;
        let zeros = Term::constant::<CS>(self.commit_native(&vec![0; ch]));
        let expected = select(&mut cs.namespace(|| "sums before"), t_first, &zeros, &Term::var(carried))?;
        equal_if(&mut cs.namespace(|| "sums open"), bit, &Term::var(&opened), &Term::var(&expected));
        let carry = commit(cs, "commit sums", &after)?;
        let tag = Elt::num_from_fr::<CS>(self.pair.block().output_layout().tag());
        let out = chain_link(&mut cs.namespace(|| "means"), tag, Elt::Allocated(blind_out.clone()), &means)?;
        Ok((out, carry))
    }

    fn value(row: &[Num<F>]) -> Option<F> {
        row.iter().try_fold(F::ZERO, |acc, v| v.get_value().map(|x| acc + x))
    }
}
