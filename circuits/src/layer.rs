//! The step circuit: one block (a quantized layer, or a residual block's layers) per Nova
//! IVC step.
//!
//! Per step (see [`crate::state`] for the state): the private input activations are
//! range-checked to 7 bits and must open `z_in.activations`; per layer, the private weights
//! are range-checked to int8 (biases to int32) and absorbed into the running model
//! commitment, the layer is computed with packed products ([`crate::gadgets::pack`]: up to
//! 7 outputs per product constraint; its shortcut terms read the block's input, which
//! never leaves the step) and requantized through a full bit
//! decomposition; the block's outputs are committed under a fresh private blind. Nothing the
//! prover supplies is left unconstrained.

use crate::commit::{
    activation_commitment, activation_commitment_native, model_update, model_update_native, LayerUpdate,
};
use crate::gadgets::bits::{add_constant, alloc_bits, alloc_uint, lc};
use crate::gadgets::linear::{linear_hints, linear_requant, linear_requant_native, LinearHints, LinearShape};
use crate::gadgets::pool::{pool_tensor_native, pool_window, PoolHint};
use crate::quant::{bits_le, QuantError, ACT_BITS, BIAS_BITS, BIAS_OFFSET, WEIGHT_BITS, WEIGHT_OFFSET};
use crate::state::{StepState, ARITY};
use crate::F;
use ff::{Field, PrimeField};
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use crate::spec::{check_chain, BlockSpec, LayerSpec, Links, MAX_STAGES, SPEC_ENCODING, SPEC_FIELDS};

/// Witness of one layer: the linear outputs' hints and the pooled outputs' hints.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerHints {
    /// The linear outputs' requantization and packed products.
    pub linear: LinearHints,
    /// One per pooled output (empty without pooling).
    pub pool: Vec<PoolHint>,
}

impl LayerHints {
    /// Honest pooling hints on top of the given linear hints.
    pub fn with_linear(spec: &LayerSpec, linear: LinearHints) -> Self {
        let ys = linear.ys();
        let pool = match spec.pool_windows() {
            Some((kind, windows)) => {
                windows.iter().map(|win| PoolHint::new(kind, &win.iter().map(|&i| ys[i]).collect::<Vec<_>>())).collect()
            }
            None => Vec::new(),
        };
        Self { linear, pool }
    }

    /// The layer's output activations.
    pub fn output(&self) -> Vec<u8> {
        if self.pool.is_empty() {
            self.linear.ys()
        } else {
            self.pool.iter().map(|h| h.y.to_repr().as_ref()[0]).collect()
        }
    }
}

/// Honest witness of layer `stage` of a block, given its input and the block's input;
/// fails where [`layer_native`] fails.
pub fn layer_hints(
    block: &BlockSpec,
    stage: usize,
    (input, block_input): (&[u8], &[u8]),
    layer_weights: &LayerWeights,
) -> Result<LayerHints, QuantError> {
    let spec = stage_of(block, stage)?;
    let linear = linear_hints(&block.linear(stage), input, block_input, &layer_weights.weights, &layer_weights.bias)?;
    Ok(LayerHints::with_linear(spec, linear))
}

/// Native reference of layer `stage` of a block, given its input and the block's input:
/// its output activations.
pub fn layer_native(
    block: &BlockSpec,
    stage: usize,
    (input, block_input): (&[u8], &[u8]),
    layer_weights: &LayerWeights,
) -> Result<Vec<u8>, QuantError> {
    let spec = stage_of(block, stage)?;
    let op = block.linear(stage);
    let ys = linear_requant_native(&op, input, block_input, &layer_weights.weights, &layer_weights.bias)?;
    Ok(match (spec.pool, spec.shape) {
        (Some(pool), LinearShape::Conv(c)) => pool_tensor_native(&pool, c.output_dims(), &ys),
        _ => ys,
    })
}

/// Native reference of a whole block: its output activations.
pub fn block_native(block: &BlockSpec, input: &[u8], layers: &[LayerWeights]) -> Result<Vec<u8>, QuantError> {
    if layers.len() != block.num_stages() {
        return Err(QuantError::WrongLength {
            what: "layers in a block",
            expected: block.num_stages(),
            got: layers.len(),
        });
    }
    crate::reference::run_native(block, input, layers)
}

/// The checked block's layer `stage`.
fn stage_of(block: &BlockSpec, stage: usize) -> Result<&LayerSpec, QuantError> {
    block.check()?;
    block.stages.get(stage).ok_or_else(|| QuantError::BadSpec(format!("the block has no layer {stage}")))
}

/// One layer's private parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerWeights {
    /// int8 weights, in the shape's layout.
    pub weights: Vec<i8>,
    /// int32 biases, one per output channel.
    pub bias: Vec<i32>,
}

/// Everything private a one-layer step consumes.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWitness {
    /// Input activations (the previous step's outputs).
    pub input: Vec<u8>,
    /// The layer's weights and biases.
    pub layer_weights: LayerWeights,
    /// Blind of the input commitment (must match the previous step's output blind).
    pub blind_in: F,
    /// Blind of the output commitment.
    pub blind_out: F,
    /// The model commitment's secret salt.
    pub salt: F,
}

/// Everything private a step of several layers consumes.
#[derive(Clone, Debug, PartialEq)]
pub struct StepWitness {
    /// Input activations of the first layer.
    pub input: Vec<u8>,
    /// The layers applied by this step, in order (at most `layers_per_step`; the remaining
    /// slots of the step are disabled and pass the activations through).
    pub layers: Vec<LayerWeights>,
    /// Blind of the input commitment.
    pub blind_in: F,
    /// Blind of the output commitment.
    pub blind_out: F,
    /// The model commitment's secret salt.
    pub salt: F,
}

#[derive(Debug)]
struct Slot {
    stage: usize,
    layer_weights: LayerWeights,
    hints: LayerHints,
    enabled: bool,
}

#[derive(Debug)]
struct Inner {
    block: BlockSpec,
    updates: Vec<LayerUpdate>,
    salt: F,
    layers_per_step: usize,
    input: Vec<u8>,
    blind_in: F,
    blind_out: F,
    slots: Vec<Slot>,
    output: Vec<u8>,
}

/// A step circuit applying one block of several layers, or `layers_per_step` one-layer
/// blocks of one spec (cheap to clone).
///
/// A multi-layer block applies all its layers every step. With one layer per step every
/// step applies exactly one layer. With `k > 1` one-layer blocks per step, the first slot is always applied and each further slot carries an enable bit: an enabled slot applies its layer (its weights
/// enter the model commitment, the counter advances), a disabled one passes activations and
/// model commitment through unchanged, at one constraint per activation. Disabled slots pad
/// the last step when the depth is not a multiple of `k`. No ordering of enabled slots is
/// needed for soundness: the running model commitment fixes exactly which layers were
/// applied, in which order, and the counter how many.
#[derive(Clone, Debug)]
pub struct LayerStep(Arc<Inner>);

/// All-zero weights and biases of a layer (blank steps for parameter setup, inactive parts).
pub(crate) fn zero_weights(spec: &LayerSpec) -> LayerWeights {
    LayerWeights { weights: vec![0; spec.num_weights()], bias: vec![0; spec.shape.num_biases()] }
}

impl LayerStep {
    /// A one-layer step: validates the witness against the spec and computes it natively.
    pub fn new(spec: LayerSpec, w: LayerWitness) -> Result<Self, QuantError> {
        let step = StepWitness {
            input: w.input,
            layers: vec![w.layer_weights],
            blind_in: w.blind_in,
            blind_out: w.blind_out,
            salt: w.salt,
        };
        Self::multi(BlockSpec::layer(spec), 1, step)
    }

    /// A step of `layers_per_step` slots applying `w.layers`. A multi-layer block fills
    /// all its slots (`layers_per_step` is its size); one-layer blocks fill 1 to
    /// `layers_per_step` slots, the rest disabled. Validates and computes natively.
    pub fn multi(block: BlockSpec, layers_per_step: usize, w: StepWitness) -> Result<Self, QuantError> {
        check_chain([(&block, block.num_stages().max(layers_per_step), layers_per_step)])?;
        let stages = block.num_stages();
        let needed = if stages > 1 { stages..=stages } else { 1..=layers_per_step };
        if !needed.contains(&w.layers.len()) {
            return Err(QuantError::WrongLength {
                what: "layers in a step",
                expected: layers_per_step,
                got: w.layers.len(),
            });
        }
        let mut current = w.input.clone();
        let mut slots = Vec::with_capacity(layers_per_step);
        let mut layers = w.layers.into_iter();
        for j in 0..layers_per_step {
            let stage = j % stages;
            let (layer_weights, enabled) = match layers.next() {
                Some(p) => (p, true),
                None => (zero_weights(&block.stages[stage]), false),
            };
            let block_input = if stages > 1 { &w.input } else { &current };
            let hints = layer_hints(&block, stage, (&current, block_input), &layer_weights)?;
            if enabled {
                current = hints.output();
            }
            slots.push(Slot { stage, layer_weights, hints, enabled });
        }
        Ok(Self::assemble(block, layers_per_step, (w.input, w.blind_in, w.blind_out, w.salt), slots, current))
    }

    fn assemble(
        block: BlockSpec,
        layers_per_step: usize,
        (input, blind_in, blind_out, salt): (Vec<u8>, F, F, F),
        slots: Vec<Slot>,
        output: Vec<u8>,
    ) -> Self {
        let updates = block.updates();
        Self(Arc::new(Inner { block, updates, salt, layers_per_step, input, blind_in, blind_out, slots, output }))
    }

    /// A one-layer step from explicit linear output hints (pooling hints follow them
    /// honestly), unchecked (wrong-witness tests).
    pub fn new_unchecked(spec: LayerSpec, w: LayerWitness, hints: LinearHints) -> Self {
        let hints = LayerHints::with_linear(&spec, hints);
        let output = hints.output();
        let slots = vec![Slot { stage: 0, layer_weights: w.layer_weights, hints, enabled: true }];
        Self::assemble(BlockSpec::layer(spec), 1, (w.input, w.blind_in, w.blind_out, w.salt), slots, output)
    }

    /// A step of one block from explicit per-layer linear hints (pooling hints follow
    /// them honestly), unchecked (wrong-witness tests).
    pub fn block_unchecked(block: BlockSpec, w: StepWitness, hints: Vec<LinearHints>) -> Self {
        let slots: Vec<Slot> = w
            .layers
            .into_iter()
            .zip(hints)
            .enumerate()
            .map(|(stage, (layer_weights, h))| Slot {
                stage,
                layer_weights,
                hints: LayerHints::with_linear(&block.stages[stage], h),
                enabled: true,
            })
            .collect();
        let output = slots.last().map(|s| s.hints.output()).unwrap_or_default();
        let n = slots.len();
        Self::assemble(block, n, (w.input, w.blind_in, w.blind_out, w.salt), slots, output)
    }

    /// A step of the given shape with all-zero values, for parameter setup.
    pub fn blank(block: BlockSpec, layers_per_step: usize) -> Self {
        let w = StepWitness {
            input: vec![0; block.num_inputs()],
            layers: block.stages.iter().map(zero_weights).collect(),
            blind_in: F::ZERO,
            blind_out: F::ZERO,
            salt: F::ZERO,
        };
        // All-zero tensors of the right lengths always requantize.
        Self::multi(block, layers_per_step.max(1), w).expect("a zero block is valid for every valid spec")
    }

    /// The block spec.
    pub fn block_spec(&self) -> &BlockSpec {
        &self.0.block
    }

    /// Slots per step.
    pub fn layers_per_step(&self) -> usize {
        self.0.layers_per_step
    }

    /// Layers this step applies.
    pub fn layers_applied(&self) -> usize {
        self.0.slots.iter().filter(|s| s.enabled).count()
    }

    /// The step's output activations (computed natively).
    pub fn output(&self) -> &[u8] {
        &self.0.output
    }

    /// The state after this step, computed natively from the state before it.
    pub fn next_state(&self, z: &StepState) -> StepState {
        let model = self.0.slots.iter().filter(|s| s.enabled).fold(z.model, |acc, s| {
            let w = &s.layer_weights;
            model_update_native(acc, &self.0.updates[s.stage], self.0.salt, &w.weights, &w.bias)
        });
        StepState {
            layer: z.layer + self.layers_applied() as u64,
            model,
            activations: activation_commitment_native(&self.0.output, self.0.block.output_layout(), self.0.blind_out),
        }
    }
}

/// A layer's weights in the circuit: the range-checked `w + 128` limbs and the biases.
pub(crate) type AllocatedWeights = (Vec<Num<F>>, Vec<Num<F>>);

/// A layer's weights in the circuit: each `w + 128` range-checked to 8 bits (what the model
/// commitment packs), and each bias range-checked to int32 (`b + 2^31` in 32 bits: the
/// packed products' no-carry argument needs every factor and constant bounded).
pub(crate) fn alloc_layer_weights<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    w: &LayerWeights,
) -> Result<AllocatedWeights, SynthesisError> {
    let unsigned = alloc_weights(cs, &w.weights)?;
    let bias = w
        .bias
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            alloc_bias(
                &mut cs.namespace(|| format!("bias{i}")),
                &bits_le((i64::from(b) + BIAS_OFFSET) as u64, BIAS_BITS),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok((unsigned, bias))
}

/// Weights as the range-checked `w + 128` limbs (8 bits each) the model commitment packs.
pub(crate) fn alloc_weights<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    weights: &[i8],
) -> Result<Vec<Num<F>>, SynthesisError> {
    (weights.iter().enumerate())
        .map(|(i, &v)| {
            let u = (i64::from(v) + WEIGHT_OFFSET) as u64;
            alloc_uint(&mut cs.namespace(|| format!("w{i}")), &bits_le(u, WEIGHT_BITS))
        })
        .collect()
}

/// A bias from the bits of `b + 2^31` (range-checked: 32 booleans) as `b`.
fn alloc_bias<CS: ConstraintSystem<F>>(cs: &mut CS, bits: &[F]) -> Result<Num<F>, SynthesisError> {
    Ok(add_constant::<CS>(alloc_uint(cs, bits)?, -F::from(BIAS_OFFSET as u64)))
}

/// The signed weights (`w + 128 - 128`) and biases as the linear combinations
/// [`linear_requant`] takes.
pub(crate) fn weight_terms<CS: ConstraintSystem<F>>(
    unsigned: Vec<Num<F>>,
    bias: &[Num<F>],
) -> (Vec<LinearCombination<F>>, Vec<LinearCombination<F>>) {
    let offset = -F::from(WEIGHT_OFFSET as u64);
    let weights = unsigned.into_iter().map(|u| lc(&add_constant::<CS>(u, offset))).collect();
    (weights, bias.iter().map(lc).collect())
}

/// Pools the requantized outputs when the spec asks for it.
pub(crate) fn pool_outputs<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    spec: &LayerSpec,
    linear: Vec<AllocatedNum<F>>,
    hints: &[PoolHint],
) -> Result<Vec<Num<F>>, SynthesisError> {
    let Some((kind, windows)) = spec.pool_windows() else {
        return Ok(linear.into_iter().map(Num::from).collect());
    };
    if hints.len() != windows.len() {
        return Err(SynthesisError::Unsatisfiable("pooling witness has the wrong length".into()));
    }
    let cells: Vec<_> = linear.iter().map(|y| LinearCombination::zero() + y.get_variable()).collect();
    windows
        .iter()
        .zip(hints)
        .enumerate()
        .map(|(o, (win, hint))| {
            let win: Vec<_> = win.iter().map(|&i| cells[i].clone()).collect();
            pool_window(&mut cs.namespace(|| format!("pool{o}")), kind, &win, hint)
        })
        .collect()
}

/// `old + en·(new - old)`, allocated, in one constraint.
fn select<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    en: &AllocatedNum<F>,
    new: &LinearCombination<F>,
    new_value: F,
    old: &LinearCombination<F>,
    old_value: F,
    enabled: bool,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let out = AllocatedNum::alloc(cs.namespace(|| "selected"), || Ok(if enabled { new_value } else { old_value }))?;
    cs.enforce(
        || "select",
        |lc| lc + en.get_variable(),
        |_| new.clone() - old,
        |_| LinearCombination::zero() + out.get_variable() - old,
    );
    Ok(out)
}

impl StepCircuit<F> for LayerStep {
    fn arity(&self) -> usize {
        ARITY
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [layer, model, acts] = z else {
            return Err(SynthesisError::Unsatisfiable(format!("state arity {} != 3", z.len())));
        };
        let inner = &*self.0;
        let block = &inner.block;
        // enable bits: only several one-layer blocks per step
        let multi = block.num_stages() == 1 && inner.layers_per_step > 1;

        // input activations: 7-bit range checks, then they must open z_in.activations
        let input: Vec<Num<F>> = inner
            .input
            .iter()
            .enumerate()
            .map(|(i, &a)| alloc_uint(&mut cs.namespace(|| format!("in{i}")), &bits_le(a.into(), ACT_BITS)))
            .collect::<Result<_, _>>()?;
        let blind_in = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(inner.blind_in))?;
        let opened =
            activation_commitment(&mut cs.namespace(|| "open input"), &input, block.input_layout(), &blind_in)?;
        cs.enforce(
            || "input opens z_in.activations",
            |lc| lc + opened.get_variable(),
            |lc| lc + CS::one(),
            |lc| lc + acts.get_variable(),
        );

        // The model's salt: any field element (it only has to be the same one the model
        // holder committed with, which the running commitment enforces).
        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(inner.salt))?;

        let block_input: Vec<LinearCombination<F>> = input.iter().map(lc).collect();
        let mut current: Vec<Num<F>> = input;
        let mut model_acc = model.clone();
        let mut counter = LinearCombination::zero() + layer.get_variable();
        let mut counter_value = layer.get_value();
        for (j, slot) in inner.slots.iter().enumerate() {
            let mut cs = cs.namespace(|| format!("layer{j}"));
            let spec = &block.stages[slot.stage];
            let (weights_unsigned, bias) = alloc_layer_weights(&mut cs, &slot.layer_weights)?;
            let next_model = model_update(
                &mut cs.namespace(|| "model commitment"),
                &inner.updates[slot.stage],
                &salt,
                &model_acc,
                &weights_unsigned,
                &bias,
            )?;

            // the layer itself
            let (weights_lc, bias_lc) = weight_terms::<CS>(weights_unsigned, &bias);
            let input_lc: Vec<_> = current.iter().map(lc).collect();
            let xb = if block.num_stages() > 1 { &block_input } else { &input_lc };
            let linear = linear_requant(
                &mut cs.namespace(|| "compute"),
                &block.linear(slot.stage),
                (&input_lc, xb),
                &weights_lc,
                &bias_lc,
                &slot.hints.linear,
            )?;
            let outputs = pool_outputs(&mut cs.namespace(|| "pool"), spec, linear, &slot.hints.pool)?;

            // Slot 0 is always enabled (a step applies at least one layer): no selection.
            if !multi || j == 0 {
                current = outputs;
                model_acc = next_model;
                counter = counter + CS::one();
                counter_value = counter_value.map(|v| v + F::ONE);
                continue;
            }
            // enable bit: apply the layer, or pass everything through
            let en_value = if slot.enabled { F::ONE } else { F::ZERO };
            let en = alloc_bits(&mut cs.namespace(|| "enabled"), &[en_value])?.remove(0);
            let mut passed = Vec::with_capacity(current.len());
            for (i, (y, a)) in outputs.iter().zip(&current).enumerate() {
                let y_lc = lc(y);
                let (yv, av) = (y.get_value().unwrap_or_default(), a.get_value().unwrap_or_default());
                let s = select(&mut cs.namespace(|| format!("act{i}")), &en, &y_lc, yv, &lc(a), av, slot.enabled)?;
                passed.push(Num::from(s));
            }
            current = passed;
            let (new_v, old_v) =
                (next_model.get_value().unwrap_or_default(), model_acc.get_value().unwrap_or_default());
            let next_lc = LinearCombination::zero() + next_model.get_variable();
            let old_lc = LinearCombination::zero() + model_acc.get_variable();
            model_acc = select(&mut cs.namespace(|| "model"), &en, &next_lc, new_v, &old_lc, old_v, slot.enabled)?;
            counter = counter + en.get_variable();
            counter_value = counter_value.map(|v| v + en_value);
        }

        // layer counter
        let next_layer = AllocatedNum::alloc(cs.namespace(|| "layer counter"), || {
            counter_value.ok_or(SynthesisError::AssignmentMissing)
        })?;
        cs.enforce(|| "layer counter advances", |_| counter, |lc| lc + CS::one(), |lc| lc + next_layer.get_variable());

        // commit to the outputs under a fresh blind
        let blind_out = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(inner.blind_out))?;
        let next_acts =
            activation_commitment(&mut cs.namespace(|| "commit output"), &current, block.output_layout(), &blind_out)?;

        Ok(vec![next_layer, model_acc, next_acts])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::dense::DenseShape;
    use crate::gadgets::linear::Linear;
    use crate::gadgets::pack::Packing;
    use crate::quant::RequantSpec;
    use nova_snark::frontend::test_cs::TestConstraintSystem;

    /// Why every bias is range-checked: a dense 1→2 layer packs both accumulators into one
    /// field element (`acc0 + 2^k·acc1`, `k` the slot width). Raising bias 0 by `2^k` and
    /// lowering bias 1 by one leaves that packed sum unchanged, so the honest outputs'
    /// requantization bits still close it: a different model (those biases) would be
    /// proven to give the honest model's outputs. Written through the bias's 32 range-check
    /// bits (bit 31 carrying the extra `2^k`), the forgery is rejected by exactly that
    /// bit's booleanity, and by nothing else.
    #[test]
    fn a_bias_beyond_int32_is_rejected_by_its_range_check() {
        let shape = LinearShape::Dense(DenseShape { inputs: 1, outputs: 2 });
        let requant = RequantSpec::new(2, 20).unwrap();
        let op = Linear { shape, requant, skip: 0, projection: None, zero_point: 0, block_zero_point: 0 };
        let packing = Packing::of(&op);
        let pack = packing.packs(&op)[0].clone();
        assert_eq!(pack.len(), 2, "both outputs share one packed product");
        let (o0, o1, k) = (pack[0], pack[1], packing.slot_bits);
        let w = LayerWeights { weights: vec![3, -2], bias: vec![100, 7] };
        let input = [9u8];
        let hints = linear_hints(&op, &input, &input, &w.weights, &w.bias).unwrap();
        // forge: 0 honest, 1 through the range-check bits, 2 unchecked (no range check)
        let synth = |forge: u8| {
            let mut cs = TestConstraintSystem::<F>::new();
            let a = AllocatedNum::alloc(cs.namespace(|| "a"), || Ok(F::from(9))).unwrap();
            let x = [LinearCombination::zero() + a.get_variable()];
            let weights: Vec<Num<F>> = w
                .weights
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let u = (i64::from(v) + WEIGHT_OFFSET) as u64;
                    alloc_uint(&mut cs.namespace(|| format!("w{i}")), &bits_le(u, WEIGHT_BITS)).unwrap()
                })
                .collect();
            let mut bits: Vec<Vec<F>> =
                w.bias.iter().map(|&b| bits_le((i64::from(b) + BIAS_OFFSET) as u64, BIAS_BITS)).collect();
            let carry = F::from(2).pow_vartime([u64::from(k)]);
            if forge > 0 {
                bits[o0][31] += carry * F::from(2).pow_vartime([31]).invert().unwrap();
                bits[o1] = bits_le((i64::from(w.bias[o1]) - 1 + BIAS_OFFSET) as u64, BIAS_BITS);
            }
            let bias: Vec<Num<F>> = bits
                .iter()
                .enumerate()
                .map(|(i, b)| match forge {
                    2 => {
                        let v = crate::quant::int_to_field(i64::from(w.bias[i]))
                            + if i == o0 {
                                carry
                            } else if i == o1 {
                                -F::ONE
                            } else {
                                F::ZERO
                            };
                        Num::from(AllocatedNum::alloc(cs.namespace(|| format!("bias{i}")), || Ok(v)).unwrap())
                    }
                    _ => alloc_bias(&mut cs.namespace(|| format!("bias{i}")), b).unwrap(),
                })
                .collect();
            let (wl, bl) = weight_terms::<TestConstraintSystem<F>>(weights, &bias);
            let ys = linear_requant(&mut cs, &op, (&x, &x), &wl, &bl, &hints).unwrap();
            let ys: Vec<F> = ys.iter().map(|y| y.get_value().unwrap()).collect();
            (cs.which_is_unsatisfied().map(String::from), ys)
        };
        let (honest, outputs) = synth(0);
        assert_eq!(honest, None);
        let (forged, forged_outputs) = synth(1);
        assert_eq!(forged_outputs, outputs, "the forger claims the honest outputs");
        assert_eq!(forged.as_deref(), Some(format!("bias{o0}/top bit is boolean").as_str()));
        // without the range check the same biases are accepted: the check is load-bearing
        assert_eq!(synth(2), (None, outputs));
    }
}
