//! Poseidon commitments (nova-snark's sponge, width 25) to vectors of small values.
//!
//! Small values are packed several to a field element before hashing: `⌊252 / bits⌋` of
//! them (36 activations of 7 bits, 31 weights of 8 bits), far cheaper than one Poseidon
//! absorption (~32 constraints) per value. Packing is only injective because every limb is
//! range-checked by its own bit decomposition before it is packed; callers must pass limbs
//! built with [`super::bits::alloc_uint`] (or outputs of the requantization gadget, which
//! are in `[0, 127]` by construction).
//!
//! Every hash starts with a domain tag that also encodes the number of values committed
//! (`tag + 2^64 · len`, or `tag + 2^64 · weights + 2^128 · biases` for a layer of the
//! model commitment), so an activation commitment can never be read as a model
//! commitment, nor a vector as a shorter or longer one (trailing zeros would otherwise
//! pack identically), nor a layer's weights and biases split differently. The tag is a
//! constant of the circuit: it costs no constraint.
//!
//! The running model commitment starts from the public constant [`model_start`] and
//! absorbs, per layer, the layer's spec digest (its whole public shape, a circuit
//! constant), the model's secret salt, the previous value, the weights and the biases.
//! The salt in every update makes every running value hiding: without it, nobody can
//! test candidate weights against a public value, not even between two consecutive
//! public values (the links between segments).

use crate::quant::{int_to_field, ACT_BITS, WEIGHT_BITS, WEIGHT_OFFSET};
use crate::F;
use ff::Field;
use generic_array::typenum::U24;
use nova_snark::frontend::gadgets::poseidon::{
    Elt, IOPattern, PoseidonConstants, Simplex, Sponge, SpongeAPI, SpongeCircuit, SpongeOp, SpongeTrait, Strength,
};
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, SynthesisError};
use std::sync::OnceLock;

/// Domain tag of activation commitments.
pub const TAG_ACTIVATIONS: u64 = 0xf01d_0001;
/// Domain tag of one step of the running model commitment.
pub const TAG_MODEL_LAYER: u64 = 0xf01d_0002;
/// Domain tag of the model commitment's public starting value.
pub const TAG_MODEL_START: u64 = 0xf01d_0004;
/// Domain tag of a layer spec's digest.
pub const TAG_LAYER_SPEC: u64 = 0xf01d_0005;
/// Bits of a field element used for packing (the Pallas scalar field has 254).
pub const PACK_BITS: u32 = 252;

fn constants() -> &'static PoseidonConstants<F, U24> {
    static C: OnceLock<PoseidonConstants<F, U24>> = OnceLock::new();
    C.get_or_init(|| Sponge::<F, U24>::api_constants(Strength::Standard))
}

fn pattern(n: usize) -> IOPattern {
    IOPattern(vec![SpongeOp::Absorb(n as u32), SpongeOp::Squeeze(1)])
}

/// Native Poseidon hash of a sequence of field elements.
pub fn hash_native(items: &[F]) -> F {
    let mut sponge = Sponge::new_with_constants(constants(), Simplex);
    let acc = &mut ();
    sponge.start(pattern(items.len()), None, acc);
    SpongeAPI::absorb(&mut sponge, items.len() as u32, items, acc);
    let out = SpongeAPI::squeeze(&mut sponge, 1, acc);
    // The pattern above is exactly what was absorbed and squeezed.
    sponge.finish(acc).expect("sponge pattern matches its use");
    out[0]
}

/// In-circuit twin of [`hash_native`].
pub fn hash<CS: ConstraintSystem<F>>(cs: &mut CS, items: &[Elt<F>]) -> Result<AllocatedNum<F>, SynthesisError> {
    let mut ns = cs.namespace(|| "poseidon");
    let out = {
        let acc = &mut ns;
        let mut sponge = SpongeCircuit::new_with_constants(constants(), Simplex);
        sponge.start(pattern(items.len()), None, acc);
        SpongeAPI::absorb(&mut sponge, items.len() as u32, items, acc);
        let out = SpongeAPI::squeeze(&mut sponge, 1, acc);
        sponge.finish(acc).map_err(|e| SynthesisError::Unsatisfiable(format!("sponge: {e:?}")))?;
        out
    };
    let digest = out[0].ensure_allocated(&mut ns.namespace(|| "digest"));
    digest
}

/// The domain tag of a hash over `len` values: `tag + 2^64 · len`.
pub fn domain_tag(tag: u64, len: usize) -> F {
    F::from(tag) + F::from(len as u64) * F::from(2).pow_vartime([64u64])
}

fn tag<CS: ConstraintSystem<F>>(t: u64, len: usize) -> Elt<F> {
    Elt::num_from_fr::<CS>(domain_tag(t, len))
}

/// Packs unsigned values of `bits` bits, `⌊252/bits⌋` per field element, little-endian.
pub fn pack_native(values: &[u64], bits: u32) -> Vec<F> {
    let shift = F::from(2).pow_vartime([u64::from(bits)]);
    values
        .chunks((PACK_BITS / bits) as usize)
        .map(|chunk| chunk.iter().rev().fold(F::ZERO, |acc, &v| acc * shift + F::from(v)))
        .collect()
}

/// In-circuit packing (no constraints): the limbs must already be range-checked.
pub fn pack(values: &[Num<F>], bits: u32) -> Vec<Num<F>> {
    let shift = F::from(2).pow_vartime([u64::from(bits)]);
    values
        .chunks((PACK_BITS / bits) as usize)
        .map(|chunk| {
            let mut coeff = F::ONE;
            let mut acc = Num::zero();
            for v in chunk {
                acc = acc.add(&v.clone().scale(coeff));
                coeff *= shift;
            }
            acc
        })
        .collect()
}

/// Commitment to an activation tensor under a blinding factor:
/// `H(TAG_ACTIVATIONS, blind, pack7(acts))`. With `blind = 0` it is a plain (public) digest.
pub fn activation_commitment_native(acts: &[u8], blind: F) -> F {
    let values: Vec<u64> = acts.iter().map(|&a| u64::from(a)).collect();
    let mut items = vec![domain_tag(TAG_ACTIVATIONS, acts.len()), blind];
    items.extend(pack_native(&values, ACT_BITS));
    hash_native(&items)
}

/// In-circuit twin of [`activation_commitment_native`]; `acts` must be range-checked.
pub fn activation_commitment<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    acts: &[Num<F>],
    blind: &AllocatedNum<F>,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let mut items = vec![tag::<CS>(TAG_ACTIVATIONS, acts.len()), Elt::Allocated(blind.clone())];
    items.extend(pack(acts, ACT_BITS).into_iter().map(Elt::Num));
    hash(cs, &items)
}

/// The public value every model commitment chain starts from (the IVC state's model slot
/// before the first layer). A constant, so no proof of a suffix of a model can start
/// from the running commitment of its prefix.
pub fn model_start() -> F {
    domain_tag(TAG_MODEL_START, 0)
}

/// The domain tag of one layer's update: `TAG_MODEL_LAYER + 2^64·weights + 2^128·biases`
/// (injective: both counts are below 2^64).
pub fn layer_tag(weights: usize, biases: usize) -> F {
    let two64 = F::from(2).pow_vartime([64u64]);
    F::from(TAG_MODEL_LAYER) + F::from(weights as u64) * two64 + F::from(biases as u64) * two64 * two64
}

/// One step of the running model commitment:
/// `H(layer_tag, spec_digest, salt, acc, pack8(w + 128), bias_0, …)`.
pub fn model_update_native(acc: F, spec_digest: F, salt: F, weights: &[i8], bias: &[i32]) -> F {
    let w: Vec<u64> = weights.iter().map(|&w| (i64::from(w) + WEIGHT_OFFSET) as u64).collect();
    let mut items = vec![layer_tag(weights.len(), bias.len()), spec_digest, salt, acc];
    items.extend(pack_native(&w, WEIGHT_BITS));
    items.extend(bias.iter().map(|&b| int_to_field(b.into())));
    hash_native(&items)
}

/// In-circuit twin of [`model_update_native`]. `spec_digest` is a constant of the circuit;
/// `weights_unsigned` are the range-checked `w + 128` limbs; biases enter as whole field
/// elements (no packing, so no range check is needed for the commitment to be binding).
pub fn model_update<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec_digest: F,
    salt: &AllocatedNum<F>,
    acc: &AllocatedNum<F>,
    weights_unsigned: &[Num<F>],
    bias: &[AllocatedNum<F>],
) -> Result<AllocatedNum<F>, SynthesisError> {
    let mut items = vec![
        Elt::num_from_fr::<CS>(layer_tag(weights_unsigned.len(), bias.len())),
        Elt::num_from_fr::<CS>(spec_digest),
        Elt::Allocated(salt.clone()),
        Elt::Allocated(acc.clone()),
    ];
    items.extend(pack(weights_unsigned, WEIGHT_BITS).into_iter().map(Elt::Num));
    items.extend(bias.iter().cloned().map(Elt::Allocated));
    hash(cs, &items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::bits::{alloc_uint, uint_native};
    use crate::quant::bits_le;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    fn alloc_acts(cs: &mut TestConstraintSystem<F>, bit_values: &[Vec<F>]) -> Vec<Num<F>> {
        bit_values
            .iter()
            .enumerate()
            .map(|(i, b)| alloc_uint(&mut cs.namespace(|| format!("a{i}")), b).unwrap())
            .collect()
    }

    fn commit_in_circuit(bit_values: &[Vec<F>], blind: F) -> (bool, F) {
        let mut cs = TestConstraintSystem::<F>::new();
        let acts = alloc_acts(&mut cs, bit_values);
        let blind = AllocatedNum::alloc(cs.namespace(|| "blind"), || Ok(blind)).unwrap();
        let c = activation_commitment(&mut cs, &acts, &blind).unwrap();
        (cs.is_satisfied(), c.get_value().unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]
        #[test]
        fn activation_commitment_matches_native(acts in proptest::collection::vec(0u8..=127, 0..100), blind in any::<u64>()) {
            let bits: Vec<_> = acts.iter().map(|&a| uint_native(a.into(), ACT_BITS).unwrap()).collect();
            let (sat, c) = commit_in_circuit(&bits, F::from(blind));
            prop_assert!(sat);
            prop_assert_eq!(c, activation_commitment_native(&acts, F::from(blind)));
        }

        #[test]
        fn model_update_matches_native(w in proptest::collection::vec(any::<i8>(), 1..80), b in proptest::collection::vec(any::<i32>(), 1..4)) {
            let mut cs = TestConstraintSystem::<F>::new();
            let acc = AllocatedNum::alloc(cs.namespace(|| "acc"), || Ok(F::from(99))).unwrap();
            let wu: Vec<_> = w.iter().enumerate().map(|(i, &x)| {
                alloc_uint(&mut cs.namespace(|| format!("w{i}")), &bits_le((i64::from(x) + 128) as u64, 8)).unwrap()
            }).collect();
            let bias: Vec<_> = b.iter().enumerate().map(|(i, &x)| {
                AllocatedNum::alloc(cs.namespace(|| format!("b{i}")), || Ok(int_to_field(x.into()))).unwrap()
            }).collect();
            let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(F::from(7))).unwrap();
            let spec = F::from(12345);
            let c = model_update(&mut cs, spec, &salt, &acc, &wu, &bias).unwrap();
            prop_assert!(cs.is_satisfied());
            prop_assert_eq!(c.get_value().unwrap(), model_update_native(F::from(99), spec, F::from(7), &w, &b));
        }
    }

    #[test]
    fn distinct_inputs_and_blinds_give_distinct_commitments() {
        let a = activation_commitment_native(&[1, 2, 3], F::ZERO);
        assert_ne!(a, activation_commitment_native(&[1, 2, 4], F::ZERO));
        assert_ne!(a, activation_commitment_native(&[1, 2, 3], F::ONE));
        assert_ne!(a, activation_commitment_native(&[1, 2, 3, 0], F::ZERO));
    }

    #[test]
    fn model_updates_separate_specs_salts_and_splits() {
        let (acc, spec, salt) = (model_start(), F::from(3), F::from(5));
        let base = model_update_native(acc, spec, salt, &[1, 2], &[3]);
        assert_ne!(base, model_update_native(acc, F::from(4), salt, &[1, 2], &[3]), "spec");
        assert_ne!(base, model_update_native(acc, spec, F::from(6), &[1, 2], &[3]), "salt");
        assert_ne!(base, model_update_native(F::ONE, spec, salt, &[1, 2], &[3]), "previous value");
        // The same field elements split differently between weights and biases: the old
        // `tag + 2^64·(weights + biases)` tag could not tell these apart.
        assert_ne!(layer_tag(2, 1), layer_tag(1, 2));
        assert_ne!(layer_tag(2, 1), layer_tag(3, 0));
    }

    #[test]
    fn colliding_packing_needs_an_out_of_range_limb() {
        // [1, 0] and [1 + 128, -1 (as 127 borrowed)] … simplest collision: limbs (129, 0)
        // vs (1, 1) pack to the same element; 129 is not a 7-bit value, so its "bits" must
        // include a non-boolean, and the range check rejects the witness.
        let honest = vec![uint_native(1, 7).unwrap(), uint_native(1, 7).unwrap()];
        let mut forged = vec![uint_native(1, 7).unwrap(), uint_native(0, 7).unwrap()];
        forged[0][0] += F::from(128); // limb 0 = 129
        let (sat_h, c_h) = commit_in_circuit(&honest, F::ZERO);
        let (sat_f, c_f) = commit_in_circuit(&forged, F::ZERO);
        assert!(sat_h);
        assert_eq!(c_h, c_f, "the packed values collide");
        assert!(!sat_f, "but the forged limb is not range-checked");
    }
}
