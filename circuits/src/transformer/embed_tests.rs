//! The embedding step against its native twin, and forgeries.

use super::*;
use crate::gadgets::commit::model_start;
use crate::transformer::synthetic::{embed_spec, embed_weights, shape};
use crate::transformer::tests::run_step;

const VOCAB: usize = 37;

fn witness(ids: Vec<u16>, seed: u64) -> EmbedWitness {
    EmbedWitness {
        ids,
        weights: embed_weights(shape(), VOCAB, seed),
        blind_in: F::from(10 + seed),
        blind_out: F::from(20 + seed),
        salt: F::from(30 + seed),
    }
}

fn state_before(w: &EmbedWitness) -> [F; 3] {
    [F::ZERO, model_start(), tokens_commitment_native(&w.ids, w.blind_in)]
}

fn some(z: [F; 3]) -> Vec<Option<F>> {
    z.iter().map(|&v| Some(v)).collect()
}

#[test]
fn the_embedding_step_is_satisfied_and_matches_its_native_twin() {
    let spec = embed_spec(shape(), VOCAB).unwrap();
    // the first and last rows of the table, and a repeated token
    for (seed, ids) in [(0, vec![0, 36, 5, 5]), (1, vec![17, 2, 36, 0])] {
        let w = witness(ids.clone(), seed);
        let z = state_before(&w);
        let step = EmbedStep::new(spec, w.clone()).unwrap();
        let ids: Vec<usize> = ids.into_iter().map(usize::from).collect();
        let stream = embed_native(&spec, &w.weights, &ids).unwrap();
        assert_eq!(step.output(), stream);
        // not degenerate: rows differ and go beyond int8 (the add scales them into the stream)
        assert!(stream.iter().any(|&v| v.abs() > 127) && stream[..8] != stream[8..16]);
        let (unsat, out) = run_step(&step, z);
        assert_eq!(unsat, None);
        assert_eq!(out, some(step.next_state(z)));
        let model = embed_update_native(&spec, model_start(), w.salt, &w.weights).unwrap();
        assert_eq!(out[1], Some(model));
        assert_eq!(out[2], Some(crate::transformer::stream_commitment_native(&stream, w.blind_out)));
    }
}

#[test]
fn tokens_that_do_not_open_the_state_are_rejected() {
    let spec = embed_spec(shape(), VOCAB).unwrap();
    let w = witness(vec![1, 2, 3, 4], 0);
    let mut z = state_before(&w);
    z[2] = tokens_commitment_native(&[1, 2, 3, 5], w.blind_in);
    let step = EmbedStep::new(spec, w).unwrap();
    assert_eq!(run_step(&step, z).0.as_deref(), Some("tokens open z_in.tokens"));
}

/// The committed ids are the ids read: a witness that gathers another row for a committed
/// id (its selector moved to another token) is rejected by the gather.
#[test]
fn a_row_of_another_token_is_rejected() {
    let spec = embed_spec(shape(), VOCAB).unwrap();
    let w = witness(vec![1, 2, 3, 4], 0);
    let z = state_before(&w);
    let mut step = EmbedStep::new(spec, w.clone()).unwrap();
    let g = spec.gather().unwrap();
    step.gathers[2] = GatherHint::new(&g, &w.weights.tok, 9).unwrap();
    let unsat = run_step(&step, z).0.expect("a moved selector must be rejected");
    assert!(unsat.starts_with("gather2/"), "{unsat}");
}

#[test]
fn bad_tokens_and_tables_are_errors() {
    let spec = embed_spec(shape(), VOCAB).unwrap();
    assert!(EmbedStep::new(spec, witness(vec![1, 2, 3, 37], 0)).is_err());
    assert!(EmbedStep::new(spec, witness(vec![1, 2, 3], 0)).is_err());
    let mut short = witness(vec![1, 2, 3, 4], 0);
    short.weights.pos.pop();
    assert!(EmbedStep::new(spec, short).is_err());
    assert!(EmbedSpec { vocab: (1 << 16) + 1, ..spec }.check().is_err());
    let narrow = AddSpec::wide(16, 16, 0, spec.add.requant(), 8, 8);
    assert!(narrow.map_or(true, |add| EmbedSpec { add, ..spec }.check().is_err()));
}

/// One table entry changed, the tables swapped, another scale or another salt each give
/// another running commitment.
#[test]
fn the_model_commitment_binds_the_tables_and_the_scale() {
    let spec = embed_spec(shape(), VOCAB).unwrap();
    let (salt, start) = (F::from(7), model_start());
    let w = embed_weights(shape(), VOCAB, 0);
    let honest = embed_update_native(&spec, start, salt, &w).unwrap();
    let mut changed = w.clone();
    changed.pos[3] = changed.pos[3].wrapping_add(1);
    let mut rescaled = spec;
    rescaled.add = AddSpec::wide(15, 16, 0, spec.add.requant(), 8, 16).unwrap();
    let others = [
        embed_update_native(&spec, start, salt, &changed).unwrap(),
        embed_update_native(&rescaled, start, salt, &w).unwrap(),
        embed_update_native(&spec, start, salt + F::ONE, &w).unwrap(),
    ];
    for other in others {
        assert_ne!(other, honest);
    }
    // tables of one shape (context = vocabulary) swapped
    let square_shape = crate::transformer::BlockShape { tokens: VOCAB, ..shape() };
    let square = embed_spec(square_shape, VOCAB).unwrap();
    let w = embed_weights(square_shape, VOCAB, 0);
    let swapped = EmbedWeights { tok: w.pos.clone(), pos: w.tok.clone() };
    assert_ne!(
        embed_update_native(&square, start, salt, &swapped).unwrap(),
        embed_update_native(&square, start, salt, &w).unwrap()
    );
}

/// The tables' zero biases are constants of the circuit: against range-checked bias
/// witnesses the step saves exactly one 32-bit check per row, and the commitment is the
/// native one (the satisfied-step test above). A table that does carry a bias is refused,
/// never absorbed as if its bias were zero.
#[test]
fn the_tables_zero_biases_are_constants_and_a_biased_table_is_refused() {
    use crate::count_cs::CountCS;
    let spec = embed_spec(shape(), VOCAB).unwrap();
    let w = witness(vec![0, 1, 2, 3], 0);
    let tables = tables(&spec, &w.weights);
    let absorbed = |tables: &[LayerWeights], biases| {
        let mut cs = CountCS::new();
        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(w.salt)).unwrap();
        let model = AllocatedNum::alloc(cs.namespace(|| "model"), || Ok(model_start())).unwrap();
        absorb(&mut cs, &spec.updates(), biases, tables, &salt, &model).map(|_| cs.num_constraints())
    };
    let (checked, zero) = (absorbed(&tables, Biases::Checked).unwrap(), absorbed(&tables, Biases::Zero).unwrap());
    assert_eq!(checked - zero, (spec.vocab + spec.tokens) * 32);
    let mut biased = tables.clone();
    biased[1].bias[2] = 1;
    assert!(absorbed(&biased, Biases::Zero).is_err());
}
