//! A chain of transformer block steps folded with Nova and verified: the signed stream
//! hands over from block to block through its commitments, the running model commitment
//! absorbs every block, and a wrong starting state does not verify.

use ff::Field;
use fold_ml::nova::{E1, E2, S1, S2};
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::transformer::synthetic::{input, shape, spec, weights};
use fold_ml_circuits::transformer::{stream_commitment_native, BlockWitness, TransformerStep};
use fold_ml_circuits::F;
use nova_snark::nova::{PublicParams, RecursiveSNARK};
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;

#[test]
fn two_blocks_fold_hand_over_their_stream_and_verify() {
    let spec = spec(shape()).unwrap();
    let salt = F::from(11);
    let x = input(shape(), 5);
    let blinds = [F::from(21), F::from(22), F::from(23)];
    let first = TransformerStep::new(
        spec,
        BlockWitness {
            input: x.clone(),
            weights: weights(shape(), 1),
            blind_in: blinds[0],
            blind_out: blinds[1],
            salt,
        },
    )
    .unwrap();
    let second = TransformerStep::new(
        spec,
        BlockWitness {
            input: first.output().to_vec(),
            weights: weights(shape(), 2),
            blind_in: blinds[1],
            blind_out: blinds[2],
            salt,
        },
    )
    .unwrap();
    let z0 = [F::ZERO, model_start(), stream_commitment_native(&x, blinds[0])];
    let z2 = second.next_state(first.next_state(z0));

    let pp = PublicParams::<E1, E2, TransformerStep>::setup(&first, &*S1::ck_floor(), &*S2::ck_floor()).unwrap();
    let mut rs = RecursiveSNARK::new(&pp, &first, &z0).unwrap();
    rs.prove_step(&pp, &first).unwrap();
    rs.prove_step(&pp, &second).unwrap();
    assert_eq!(rs.verify(&pp, 2, &z0).unwrap(), z2.to_vec());
    assert_eq!(z2[0], F::from(2));
    assert_eq!(z2[2], stream_commitment_native(second.output(), blinds[2]));
    // another starting stream (the same input under another blind) does not verify
    let mut other = z0;
    other[2] = stream_commitment_native(&x, blinds[0] + F::ONE);
    assert!(rs.verify(&pp, 2, &other).is_err());
}
