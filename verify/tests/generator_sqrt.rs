//! Nova derives its commitment generators by hash-to-curve, and both the prover's parameter
//! setup and the verifier's first-use key derivation spend most of their time there, in one
//! square root per mapped point. The vendored halo2curves computes that root with a
//! table-based variable-time method (`vendor/halo2curves/PATCHED.md`); these tests hold it
//! to the field's own constant-time `sqrt` and pin the generators it yields, so a patch that
//! changed a single generator (and so every key and proof) cannot pass.

use ff::PrimeField;
use halo2curves::pasta::{Fp, Fq};
use halo2curves::sqrt_vartime::sqrt;
use nova_snark::provider::{PallasEngine, VestaEngine};
use nova_snark::traits::commitment::CommitmentEngineTrait;
use nova_snark::traits::Engine;
use proptest::prelude::*;

/// The table-based root agrees with the field's: same existence, and a root it returns
/// squares back (the two may pick opposite signs; hash-to-curve fixes the sign afterwards).
fn agrees<F: PrimeField>(a: F) {
    let ours = Option::<F>::from(sqrt(&a));
    let theirs = Option::<F>::from(a.sqrt());
    assert_eq!(ours.is_some(), theirs.is_some(), "square or not disagrees for {a:?}");
    if let (Some(r), Some(s)) = (ours, theirs) {
        assert_eq!(r.square(), a);
        assert!(r == s || r == -s);
    }
}

fn field_from<F: PrimeField>(limbs: [u64; 4]) -> F {
    limbs.iter().fold(F::ZERO, |acc, &l| acc * F::from(1u64 << 32).square() + F::from(l))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn roots_agree_on_pallas_base(limbs in any::<[u64; 4]>()) {
        let a: Fp = field_from(limbs);
        agrees(a);
        agrees(a.square());
    }

    #[test]
    fn roots_agree_on_vesta_base(limbs in any::<[u64; 4]>()) {
        let a: Fq = field_from(limbs);
        agrees(a);
        agrees(a.square());
    }
}

/// The edge cases a digit table can get wrong: zero, one, -1, the 2-power roots of unity
/// (every discrete-log digit at its extremes) and a non-residue.
#[test]
fn roots_agree_on_edge_cases() {
    fn edges<F: PrimeField>() {
        let mut g = F::ROOT_OF_UNITY;
        let mut cases = vec![F::ZERO, F::ONE, -F::ONE, F::MULTIPLICATIVE_GENERATOR, F::DELTA];
        for _ in 0..F::S {
            cases.push(g);
            cases.push(g * F::MULTIPLICATIVE_GENERATOR);
            cases.push(g.invert().unwrap());
            g = g.square();
        }
        cases.into_iter().for_each(agrees);
        assert!(bool::from(sqrt(&F::MULTIPLICATIVE_GENERATOR).is_none()), "a non-residue got a root");
    }
    edges::<Fp>();
    edges::<Fq>();
}

/// FNV-1a over the encoded generators: a fingerprint, not a security hash.
fn fingerprint<E: Engine>(n: usize) -> u64 {
    let key = <E::CE as CommitmentEngineTrait<E>>::setup(b"generator pin", n).expect("generators");
    let bytes = bincode::serde::encode_to_vec(&key, bincode::config::standard()).expect("encodes");
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Recorded with the field's constant-time root (halo2curves as published): the patched
/// root must yield the very same generators.
#[test]
fn generators_are_those_of_the_constant_time_root() {
    assert_eq!(fingerprint::<PallasEngine>(2048), PALLAS_PIN, "Pallas generators changed");
    assert_eq!(fingerprint::<VestaEngine>(2048), VESTA_PIN, "Vesta generators changed");
}

const PALLAS_PIN: u64 = 18297847134451376695;
const VESTA_PIN: u64 = 9091098572647448602;
