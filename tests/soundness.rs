//! Soundness regressions: a malicious prover that alters one activation, one weight, the
//! padding, or the layer order cannot produce a proof that verifies against the honest
//! statement — the fold or the verification fails.

use ff::Field;
use fold_ml::nova::{PublicParams, RecursiveSnark, S1, S2};
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::conv::conv_accumulators_with_padding;
use fold_ml_circuits::gadgets::linear::{linear_hints, LinearShape};
use fold_ml_circuits::gadgets::requant::RequantHint;
use fold_ml_circuits::layer::{LayerStep, LayerWeights, LayerWitness};
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::Step;
use fold_ml_circuits::synthetic::SyntheticModel;
use fold_ml_circuits::F;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::sync::OnceLock;

const LAYERS: usize = 3;

fn model() -> SyntheticModel {
    SyntheticModel::conv(1, 5, 3, LAYERS, 4).unwrap()
}

fn pp() -> &'static PublicParams {
    static PP: OnceLock<PublicParams> = OnceLock::new();
    PP.get_or_init(|| {
        PublicParams::setup(
            &Step::Layer(LayerStep::blank(fold_ml_circuits::layer::BlockSpec::layer(model().spec()), 1)),
            &*S1::ck_floor(),
            &*S2::ck_floor(),
        )
        .unwrap()
    })
}

fn z0() -> StepState {
    let m = model();
    let layout = fold_ml_circuits::commit::Layout::whole(m.spec().input_dims());
    StepState::initial(activation_commitment_native(&m.default_input(), layout, F::ZERO))
}

/// Folds the given steps; returns Nova's verdict on the recursive proof, and the final
/// state it proves when it verifies.
fn fold(steps: &[LayerStep]) -> Result<Vec<F>, String> {
    let pp = pp();
    let steps: Vec<Step> = steps.iter().cloned().map(Step::Layer).collect();
    let mut rs = RecursiveSnark::new(pp, &steps[0], &z0().to_vec()).map_err(|e| e.to_string())?;
    for s in &steps {
        rs.prove_step(pp, s).map_err(|e| e.to_string())?;
    }
    rs.verify(pp, steps.len(), &z0().to_vec()).map_err(|e| e.to_string())
}

/// The honest steps and the final state an honest statement claims.
fn honest() -> (Vec<LayerStep>, StepState) {
    let m = model();
    let (mut acts, mut z, mut steps) = (m.default_input(), z0(), Vec::new());
    for i in 0..LAYERS {
        let w = LayerWitness {
            input: acts,
            layer_weights: m.layer(i),
            blind_in: F::ZERO,
            blind_out: F::ZERO,
            salt: model().salt(),
        };
        let step = LayerStep::new(m.spec(), w).unwrap();
        z = step.next_state(&z);
        acts = step.output().to_vec();
        steps.push(step);
    }
    (steps, z)
}

/// Rebuilds the chain from layer `from` on with `layers`, starting from `acts`.
fn chain_from(mut steps: Vec<LayerStep>, from: usize, mut acts: Vec<u8>, layers: &[LayerWeights]) -> Vec<LayerStep> {
    let m = model();
    steps.truncate(from);
    for p in layers {
        let w = LayerWitness {
            input: acts,
            layer_weights: p.clone(),
            blind_in: F::ZERO,
            blind_out: F::ZERO,
            salt: model().salt(),
        };
        let step = LayerStep::new(m.spec(), w).unwrap();
        acts = step.output().to_vec();
        steps.push(step);
    }
    steps
}

fn rejected(steps: &[LayerStep], honest_zn: &StepState) -> bool {
    match fold(steps) {
        Err(_) => true,
        Ok(zn) => zn != honest_zn.to_vec(),
    }
}

#[test]
fn honest_chain_verifies() {
    let (steps, zn) = honest();
    assert_eq!(fold(&steps).unwrap(), zn.to_vec());
}

#[test]
fn altered_activation_is_caught() {
    let (steps, zn) = honest();
    let m = model();
    // layer 1 reads activations that differ in one cell from layer 0's output
    let mut acts = steps[0].output().to_vec();
    acts[7] = (acts[7] + 1) % 128;
    let forged = chain_from(steps, 1, acts, &[m.layer(1), m.layer(2)]);
    assert!(rejected(&forged, &zn));
}

#[test]
fn altered_weight_is_caught() {
    let (steps, zn) = honest();
    let m = model();
    let mut p = m.layer(1);
    p.weights[4] = p.weights[4].wrapping_add(1);
    let acts = steps[0].output().to_vec();
    let forged = chain_from(steps, 1, acts, &[p, m.layer(2)]);
    assert!(rejected(&forged, &zn));
}

#[test]
fn non_zero_padding_is_caught() {
    let (steps, zn) = honest();
    let m = model();
    let spec = m.spec();
    let LinearShape::Conv(conv) = spec.shape else { unreachable!() };
    let (acts, p) = (steps[0].output().to_vec(), m.layer(1));
    let padded = conv_accumulators_with_padding(&conv, 0, &acts, &p.weights, &p.bias, 100);
    let mut hints = linear_hints(&spec.linear(0), &acts, &acts, &p.weights, &p.bias).unwrap();
    let mut changed = 0;
    for (h, &a) in hints.outputs.iter_mut().zip(&padded) {
        let forged = RequantHint::new(a, spec.requant).unwrap();
        if forged.y != h.y {
            changed += 1;
        }
        *h = forged;
    }
    assert!(changed > 0, "the padding value must matter for this test");
    let w = LayerWitness { input: acts, layer_weights: p, blind_in: F::ZERO, blind_out: F::ZERO, salt: model().salt() };
    let forged_step = LayerStep::new_unchecked(spec, w, hints);
    let next = forged_step.output().to_vec();
    let mut forged = steps;
    forged.truncate(1);
    forged.push(forged_step);
    let forged = {
        let tail = chain_from(Vec::new(), 0, next, &[m.layer(2)]);
        forged.into_iter().chain(tail).collect::<Vec<_>>()
    };
    assert!(rejected(&forged, &zn));
}

#[test]
fn swapped_layer_order_is_caught() {
    let (steps, zn) = honest();
    let m = model();
    let acts = steps[0].output().to_vec();
    let forged = chain_from(steps, 1, acts, &[m.layer(2), m.layer(1)]);
    assert!(rejected(&forged, &zn));
}
