//! Transformer steps folded with Nova and verified: the signed stream hands over from
//! block to block through its commitments, the running model commitment absorbs every
//! block, a wrong starting state does not verify, and a whole small GPT (embedding, two
//! blocks, head: three step circuits, three folds) chains from committed tokens to
//! committed logits.

use ff::Field;
use fold_ml::nova::{E1, E2, S1, S2};
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::transformer::synthetic::{
    embed_spec, embed_weights, head_spec, head_weights, input, shape, spec, weights,
};
use fold_ml_circuits::transformer::{
    embed_native, head_native, logits_commitment_native, stream_commitment_native, tokens_commitment_native,
    BlockWitness, EmbedStep, EmbedWitness, HeadStep, HeadWitness, TransformerStep,
};
use fold_ml_circuits::F;
use nova_snark::nova::{PublicParams, RecursiveSNARK};
use nova_snark::traits::circuit::StepCircuit;
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

/// Folds `steps` (one circuit) from `z0`, verifies, and returns the final state.
fn fold<C: StepCircuit<F>>(steps: &[C], z0: [F; 3]) -> Vec<F> {
    let pp = PublicParams::<E1, E2, C>::setup(&steps[0], &*S1::ck_floor(), &*S2::ck_floor()).unwrap();
    let mut rs = RecursiveSNARK::new(&pp, &steps[0], &z0).unwrap();
    for step in steps {
        rs.prove_step(&pp, step).unwrap();
    }
    rs.verify(&pp, steps.len(), &z0).unwrap()
}

#[test]
fn a_small_gpt_folds_from_committed_tokens_to_committed_logits() {
    const VOCAB: usize = 23;
    let (salt, ids) = (F::from(11), [3u16, 22, 0, 3]);
    let blinds: Vec<F> = (0..5).map(|i| F::from(40 + i)).collect();
    let (e_spec, e_w) = (embed_spec(shape(), VOCAB).unwrap(), embed_weights(shape(), VOCAB, 1));
    let embed =
        EmbedWitness { ids: ids.to_vec(), weights: e_w.clone(), blind_in: blinds[0], blind_out: blinds[1], salt };
    let embed = EmbedStep::new(e_spec, embed).unwrap();
    let spec = spec(shape()).unwrap();
    let mut blocks: Vec<TransformerStep> = vec![];
    for b in 0..2 {
        let x = blocks.last().map_or(embed.output(), |s| s.output()).to_vec();
        let w = BlockWitness {
            input: x,
            weights: weights(shape(), 7 + b as u64),
            blind_in: blinds[b + 1],
            blind_out: blinds[b + 2],
            salt,
        };
        blocks.push(TransformerStep::new(spec, w).unwrap());
    }
    let (h_spec, h_w) = (head_spec(shape(), VOCAB).unwrap(), head_weights(shape(), VOCAB, 2));
    let x = blocks[1].output().to_vec();
    let head = HeadStep::new(
        h_spec,
        HeadWitness { input: x.clone(), weights: h_w.clone(), blind_in: blinds[3], blind_out: blinds[4], salt },
    )
    .unwrap();

    // three proofs, each from where the one before ended
    let z0 = [F::ZERO, model_start(), tokens_commitment_native(&ids, blinds[0])];
    let z1 = fold(&[embed], z0);
    let z3 = fold(&blocks, <[F; 3]>::try_from(z1.clone()).unwrap());
    let z4 = fold(&[head], <[F; 3]>::try_from(z3).unwrap());
    assert_eq!(
        z1[2],
        stream_commitment_native(&embed_native(&e_spec, &e_w, &ids.map(usize::from)).unwrap(), blinds[1])
    );
    assert_eq!(z4[0], F::from(4));
    let logits = head_native(&h_spec, &h_w, &x).unwrap();
    assert_eq!(z4[2], logits_commitment_native(&logits, h_spec.logit_bits(), blinds[4]));
}
