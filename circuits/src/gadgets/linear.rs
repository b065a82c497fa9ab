//! A linear layer (convolution or dense) followed by requantize+ReLU+clamp: the compute
//! part of a layer step, and its bit-exact native reference.

use super::conv::{ConvShape, MAX_DIMENSION};
use super::dense::DenseShape;
use super::dot::{dot_native, dot_product, DotHint};
use super::pack::{Packing, Share};
use super::requant::{requant_constraints, requantize_relu_either, RequantHint};
use crate::quant::{check_activations, int_to_field, requantize_native, QuantError, RequantSpec};
use crate::F;
use ff::{Field, PrimeField};
use nova_snark::frontend::{
    num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError, Variable,
};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::{Entry, HashMap};

/// The geometry of a linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
// Externally tagged (`{"conv": {...}}`): readable in JSON and decodable by bincode.
#[serde(rename_all = "snake_case")]
pub enum LinearShape {
    /// 2-D convolution (any stride, padding and groups).
    Conv(ConvShape),
    /// Dense matrix-vector product.
    Dense(DenseShape),
}

impl LinearShape {
    /// Checks what the types cannot: a valid convolution geometry, or a dense layer with
    /// non-zero sizes below [`MAX_DIMENSION`].
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::Conv(c) => c.check(),
            Self::Dense(d) if (1..=MAX_DIMENSION).contains(&d.inputs) && (1..=MAX_DIMENSION).contains(&d.outputs) => {
                Ok(())
            }
            Self::Dense(d) => Err(format!("a dense layer's sizes must be in 1..={MAX_DIMENSION}: {d:?}")),
        }
    }

    /// Number of input activations.
    pub fn num_inputs(&self) -> usize {
        match self {
            Self::Conv(c) => c.num_inputs(),
            Self::Dense(d) => d.inputs,
        }
    }
    /// Number of output activations.
    pub fn num_outputs(&self) -> usize {
        match self {
            Self::Conv(c) => c.num_outputs(),
            Self::Dense(d) => d.outputs,
        }
    }
    /// Number of weights.
    pub fn num_weights(&self) -> usize {
        match self {
            Self::Conv(c) => c.num_weights(),
            Self::Dense(d) => d.num_weights(),
        }
    }
    /// Number of biases (one per output channel).
    pub fn num_biases(&self) -> usize {
        match self {
            Self::Conv(c) => c.channels_out,
            Self::Dense(d) => d.outputs,
        }
    }
    /// Which bias output `o` adds.
    pub fn bias_of(&self, o: usize) -> usize {
        match self {
            Self::Conv(c) => c.bias_of(o),
            Self::Dense(_) => o,
        }
    }
    /// The taps of output `o` as `(weight index, input index)`; padding taps are absent.
    pub fn taps(&self, o: usize) -> Vec<(usize, usize)> {
        match self {
            Self::Conv(c) => c.taps(o),
            Self::Dense(d) => d.taps(o),
        }
    }
    /// Multiply-accumulates actually computed (padding taps excluded).
    pub fn macs(&self) -> usize {
        (0..self.num_outputs()).map(|o| self.taps(o).len()).sum()
    }
    /// Largest fan-in of any output.
    pub fn max_fan_in(&self) -> usize {
        match self {
            Self::Conv(c) => c.fan_in(),
            Self::Dense(d) => d.inputs,
        }
    }
    /// Checks the lengths of one layer's tensors against the shape.
    pub fn check_lengths(&self, input: usize, weights: usize, bias: usize) -> Result<(), QuantError> {
        for (what, expected, got) in [
            ("input activations", self.num_inputs(), input),
            ("weights", self.num_weights(), weights),
            ("biases", self.num_biases(), bias),
        ] {
            if expected != got {
                return Err(QuantError::WrongLength { what, expected, got });
            }
        }
        Ok(())
    }
}

/// A linear map with its requantization: what a layer computes before pooling.
///
/// The *shortcut* terms (the residual `skip` and the `projection`) read the input of the
/// layer's block, which is the layer's own input in a one-layer block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Geometry.
    pub shape: LinearShape,
    /// Requantization.
    pub requant: RequantSpec,
    /// Residual multiplier: output `o` adds `skip · xb[o]` (the block input) to its
    /// accumulator (0: none).
    pub skip: u32,
    /// Projection shortcut: a convolution of the block input whose products join the
    /// accumulators (ResNet's 1×1 strided shortcut). Its weights follow the layer's own.
    pub projection: Option<ConvShape>,
    /// Zero point of the input: a stored activation `a` stands for `x = a - zero_point`
    /// (0 after a ReLU; a model input's calibrated zero point lets it be signed). Padding
    /// is `x = 0`, as in ONNX.
    pub zero_point: u8,
    /// Zero point of the block input (what the shortcut terms read).
    pub block_zero_point: u8,
}

/// Which tensor a tap reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    /// The layer's input, at this index.
    Input(usize),
    /// The block's input (a projection shortcut), at this index.
    Block(usize),
}

impl Linear {
    /// The same map on another geometry (a tile's band of the layer's input).
    pub fn with_shape(self, shape: LinearShape) -> Self {
        Self { shape, ..self }
    }

    /// All weights: the layer's own, then the projection's.
    pub fn num_weights(&self) -> usize {
        self.shape.num_weights() + self.projection.map_or(0, |p| p.num_weights())
    }

    /// The taps of output `o`, projection included, as `(weight index, input)`; padding
    /// taps are absent.
    pub fn taps(&self, o: usize) -> Vec<(usize, Tap)> {
        let mut taps: Vec<_> = self.shape.taps(o).into_iter().map(|(wi, ii)| (wi, Tap::Input(ii))).collect();
        if let Some(p) = self.projection {
            let n = self.shape.num_weights();
            taps.extend(p.taps(o).into_iter().map(|(wi, ii)| (n + wi, Tap::Block(ii))));
        }
        taps
    }

    /// Multiply-accumulates, projection included (padding taps excluded).
    pub fn macs(&self) -> usize {
        (0..self.shape.num_outputs()).map(|o| self.taps(o).len()).sum()
    }

    /// Constraints of [`linear_requant_with`] under `packing`: the packed products (one
    /// per shared factor of a pack) plus the requantization of every output.
    pub fn constraints(&self, packing: Packing) -> usize {
        packing.product_constraints(self) + self.shape.num_outputs() * requant_constraints(self.requant)
    }

    /// Checks the shortcut terms against the shape and the block input's length.
    pub fn check_shortcut(&self, block_inputs: usize) -> Result<(), QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        if self.skip != 0 && block_inputs != self.shape.num_outputs() {
            return bad(format!(
                "a residual connection needs as many block inputs as outputs ({block_inputs} != {})",
                self.shape.num_outputs()
            ));
        }
        if let Some(p) = self.projection {
            p.check().or_else(|e| bad(format!("projection: {e}")))?;
            let LinearShape::Conv(c) = self.shape else {
                return bad("only a convolution can have a projection shortcut".into());
            };
            if p.num_inputs() != block_inputs || p.output_dims() != c.output_dims() {
                return bad(format!(
                    "the projection maps {} block inputs to {:?}; the block has {block_inputs} inputs and the \
                     layer outputs {:?}",
                    p.num_inputs(),
                    p.output_dims(),
                    c.output_dims()
                ));
            }
        }
        Ok(())
    }

    /// Checks the shape, the shortcut and the lengths of one layer's tensors.
    fn check(&self, input: &[u8], block_input: &[u8], weights: &[i8], bias: &[i32]) -> Result<(), QuantError> {
        for (what, expected, got) in [
            ("input activations", self.shape.num_inputs(), input.len()),
            ("weights", self.num_weights(), weights.len()),
            ("biases", self.shape.num_biases(), bias.len()),
        ] {
            if expected != got {
                return Err(QuantError::WrongLength { what, expected, got });
            }
        }
        self.check_shortcut(block_input.len())?;
        check_activations(input)?;
        check_activations(block_input)
    }

    /// The values `x = a - zero_point` of the input and of the block input.
    fn centred(&self, input: &[u8], block_input: &[u8]) -> (Vec<i64>, Vec<i64>) {
        let c = |v: &[u8], zp: u8| v.iter().map(|&a| i64::from(a) - i64::from(zp)).collect();
        (c(input, self.zero_point), c(block_input, self.block_zero_point))
    }

    /// The constant part of output `o`'s accumulator: its bias plus, with a residual,
    /// `skip · xb[o]`.
    fn offset(&self, xb: &[i64], bias: &[i32], o: usize) -> i64 {
        let residual = if self.skip == 0 { 0 } else { i64::from(self.skip) * xb[o] };
        i64::from(bias[self.shape.bias_of(o)]) + residual
    }

    /// Each tap of output `o` as `(weight, x)`.
    fn tap_values<'a>(&self, o: usize, x: &'a [i64], xb: &'a [i64], weights: &'a [i8]) -> Vec<(i64, i64)> {
        let value = |t: Tap| match t {
            Tap::Input(i) => x[i],
            Tap::Block(i) => xb[i],
        };
        self.taps(o).into_iter().map(|(wi, t)| (i64::from(weights[wi]), value(t))).collect()
    }
}

/// Native accumulators `bias + skip·xb[o] + Σ w·x (+ Σ w_p·xb)` of every output
/// (`x = a - zero_point`, `xb` the centred block input).
pub fn linear_accumulators(op: &Linear, input: &[u8], block_input: &[u8], weights: &[i8], bias: &[i32]) -> Vec<i64> {
    let (x, xb) = op.centred(input, block_input);
    (0..op.shape.num_outputs())
        .map(|o| dot_native(op.tap_values(o, &x, &xb, weights).into_iter(), op.offset(&xb, bias, o)))
        .collect()
}

/// Native reference of [`linear_requant`]: the layer's output activations.
pub fn linear_requant_native(
    op: &Linear,
    input: &[u8],
    block_input: &[u8],
    weights: &[i8],
    bias: &[i32],
) -> Result<Vec<u8>, QuantError> {
    op.check(input, block_input, weights, bias)?;
    linear_accumulators(op, input, block_input, weights, bias)
        .into_iter()
        .map(|acc| requantize_native(acc, op.requant))
        .collect()
}

/// Witness of a linear layer: every output's requantization and every pack's products.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearHints {
    /// Requantization bits and flags, per output.
    pub outputs: Vec<RequantHint>,
    /// Products of every pack, in [`Packing::packs`] order.
    pub packs: Vec<DotHint>,
    /// The factors as field elements, from which the shared sums' values are computed.
    pub factors: Factors,
}

/// The factors of a layer's products as field elements: weights, and the centred inputs
/// `a - zero_point` of the layer and of its block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Factors {
    /// Signed weights.
    pub weights: Vec<F>,
    /// Centred layer inputs.
    pub input: Vec<F>,
    /// Centred block inputs.
    pub block: Vec<F>,
}

impl Factors {
    /// The value of a tap's input.
    fn value(&self, t: Tap) -> F {
        match t {
            Tap::Input(i) => self.input[i],
            Tap::Block(i) => self.block[i],
        }
    }
}

impl LinearHints {
    /// The output activations the witness claims.
    pub fn ys(&self) -> Vec<u8> {
        self.outputs.iter().map(|h| h.y.to_repr().as_ref()[0]).collect()
    }
}

/// `2^(k·slot)` for every slot of a packing.
fn slot_powers(packing: &Packing) -> Vec<F> {
    let base = F::from(2).pow_vartime([u64::from(packing.slot_bits)]);
    std::iter::successors(Some(F::ONE), |p| Some(*p * base)).take(packing.slots).collect()
}

/// Honest witness of every output and pack (packed by [`Packing::of`]); fails where the
/// native reference fails.
pub fn linear_hints(
    op: &Linear,
    input: &[u8],
    block_input: &[u8],
    weights: &[i8],
    bias: &[i32],
) -> Result<LinearHints, QuantError> {
    linear_hints_with(op, Packing::of(op), (input, block_input), weights, bias)
}

/// [`linear_hints`] with an explicit packing.
pub fn linear_hints_with(
    op: &Linear,
    packing: Packing,
    (input, block_input): (&[u8], &[u8]),
    weights: &[i8],
    bias: &[i32],
) -> Result<LinearHints, QuantError> {
    op.check(input, block_input, weights, bias)?;
    let (x, xb) = op.centred(input, block_input);
    let outputs = (0..op.shape.num_outputs())
        .map(|o| {
            let acc = dot_native(op.tap_values(o, &x, &xb, weights).into_iter(), op.offset(&xb, bias, o));
            RequantHint::new(acc, op.requant)
        })
        .collect::<Result<_, _>>()?;
    let pows = slot_powers(&packing);
    let field = |v: &[i64]| v.iter().map(|&v| int_to_field(v)).collect();
    let factors = Factors {
        weights: weights.iter().map(|&v| int_to_field(v.into())).collect(),
        input: field(&x),
        block: field(&xb),
    };
    let packs = packing
        .packs(op)
        .iter()
        .map(|outs| DotHint::new(packing.groups(op, outs).iter().map(|g| factor_values(&packing, &pows, &factors, g))))
        .collect();
    Ok(LinearHints { outputs, packs, factors })
}

/// The values of a group's two factors: its shared factor and the sum of its others.
fn factor_values(packing: &Packing, pows: &[F], f: &Factors, g: &[(usize, usize, Tap)]) -> (F, F) {
    match packing.share {
        Share::Weight => (f.weights[g[0].1], g.iter().map(|&(slot, _, t)| pows[slot] * f.value(t)).sum()),
        Share::Input => (f.value(g[0].2), g.iter().map(|&(slot, wi, _)| pows[slot] * f.weights[wi]).sum()),
    }
}

/// Synthesizes the layer: every output's requantize+ReLU+clamp, and for every pack of
/// outputs its packed products (one constraint per shared factor, see
/// [`super::pack`]) bound to the slots' requantization bits. Returns the outputs, each
/// constrained to `[0, 127]`. The inputs (stored activations `a` of the layer and of its
/// block), weights and biases are linear combinations the caller has already bound to
/// commitments and range-checked: activations to 7 bits, weights to int8, biases to
/// int32 (the packing's no-carry argument needs all three). The zero points and a residual
/// `skip` multiplier are public constants: `x = a - zero_point` and the term
/// `skip · xb[o]` are linear, so neither costs a constraint.
pub fn linear_requant<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    op: &Linear,
    inputs: (&[LinearCombination<F>], &[LinearCombination<F>]),
    weights: &[LinearCombination<F>],
    bias: &[LinearCombination<F>],
    hints: &LinearHints,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    linear_requant_with(cs, op, Packing::of(op), inputs, (weights, bias), hints)
}

/// [`linear_requant`] with an explicit packing (which the hints must have been made with).
pub fn linear_requant_with<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    op: &Linear,
    packing: Packing,
    inputs: (&[LinearCombination<F>], &[LinearCombination<F>]),
    weights: (&[LinearCombination<F>], &[LinearCombination<F>]),
    hints: &LinearHints,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    synthesize(cs, (op, None), packing, inputs, weights, hints)
}

/// The shared packing of [`linear_requant_either`]'s two maps (the second's: it bounds
/// both) and the check that they can share one circuit: the same geometry and
/// accumulator width, no projection, no shortcut in the first.
pub fn either_packing(first: &Linear, second: &Linear) -> Result<Packing, QuantError> {
    let same = first.shape == second.shape && first.requant.acc_bits() == second.requant.acc_bits();
    if !same || first.projection.is_some() || second.projection.is_some() || first.skip != 0 {
        return Err(QuantError::BadSpec(
            "two maps share a circuit with one geometry and accumulator width, no projection, and a shortcut in \
             the second only"
                .into(),
        ));
    }
    Ok(Packing::of(second))
}

/// One circuit for two linear maps (the two convolutions of a residual block, proven by
/// the same tile): `bit` (boolean, the caller's) selects the first (0) or the second (1).
/// What differs is linear in the bit or selected per output: the input's zero point
/// (`a - zp₀ - bit·(zp₁ - zp₀)`), the requantization shift
/// ([`super::requant::requantize_relu_either`]: two constraints per output when the shifts
/// differ) and the residual, which only the second adds: the caller passes the block input
/// already multiplied by the bit, and its zero point is taken as `bit·zp_b`, so with
/// `bit = 0` the shortcut term is 0. With a boolean bit this is exactly the selected map's
/// circuit under [`either_packing`], whose slots hold the larger of the two accumulators.
/// The hints are the selected map's, made with that packing.
pub fn linear_requant_either<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (first, second): (&Linear, &Linear),
    bit: &Num<F>,
    inputs: (&[LinearCombination<F>], &[LinearCombination<F>]),
    weights: (&[LinearCombination<F>], &[LinearCombination<F>]),
    hints: &LinearHints,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    let packing = either_packing(first, second).map_err(|e| SynthesisError::Unsatisfiable(e.to_string()))?;
    synthesize(cs, (second, Some((first, bit))), packing, inputs, weights, hints)
}

/// [`linear_requant_with`] of `op`, or (with a first map and a bit) of whichever of the
/// two the bit selects ([`linear_requant_either`]).
fn synthesize<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    (op, either): (&Linear, Option<(&Linear, &Num<F>)>),
    packing: Packing,
    (input, block_input): (&[LinearCombination<F>], &[LinearCombination<F>]),
    (weights, bias): (&[LinearCombination<F>], &[LinearCombination<F>]),
    hints: &LinearHints,
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    let shape = &op.shape;
    let packs = packing.packs(op);
    if shape.num_inputs() != input.len()
        || shape.num_biases() != bias.len()
        || op.num_weights() != weights.len()
        || op.check_shortcut(block_input.len()).is_err()
        || hints.outputs.len() != shape.num_outputs()
        || hints.packs.len() != packs.len()
        || hints.factors.weights.len() != weights.len()
        || (hints.factors.input.len(), hints.factors.block.len()) != (input.len(), block_input.len())
    {
        return Err(SynthesisError::Unsatisfiable("witness has the wrong length".into()));
    }
    let constant = |zp: u8| LinearCombination::zero() + (F::from(u64::from(zp)), CS::one());
    // the zero points and requantizations (selected by the bit when two maps share the circuit)
    let (zp, block_zp, specs, bit) = match either {
        None => (constant(op.zero_point), constant(op.block_zero_point), (op.requant, op.requant), None),
        Some((first, bit)) => {
            let delta = F::from(u64::from(op.zero_point)) - F::from(u64::from(first.zero_point));
            let zp = constant(first.zero_point) + &bit.lc(delta);
            (zp, bit.lc(F::from(u64::from(op.block_zero_point))), (first.requant, op.requant), Some(bit))
        }
    };
    let centre = |v: &[LinearCombination<F>], zp: &LinearCombination<F>| -> Vec<LinearCombination<F>> {
        v.iter().map(|a| a.clone() - zp).collect()
    };
    let (x, xb) = (centre(input, &zp), centre(block_input, &block_zp));
    let value = |t: Tap| match t {
        Tap::Input(i) => &x[i],
        Tap::Block(i) => &xb[i],
    };
    let pows = slot_powers(&packing);
    let skip = F::from(u64::from(op.skip));
    let mut ys = vec![None; shape.num_outputs()];
    let reuse = packing.reuses_sums(op);
    let mut sums: HashMap<Vec<(usize, usize)>, Variable> = HashMap::new();
    for (i, (outs, hint)) in packs.iter().zip(&hints.packs).enumerate() {
        let mut cs = cs.namespace(|| format!("pack{i}"));
        let (mut acc, mut constant) = (LinearCombination::zero(), LinearCombination::zero());
        for (slot, &o) in outs.iter().enumerate() {
            let (acc_o, y) =
                requantize_relu_either(&mut cs.namespace(|| format!("out{o}")), specs, bit, &hints.outputs[o])?;
            acc = acc + (pows[slot], &acc_o);
            constant = constant + (pows[slot], &bias[shape.bias_of(o)]);
            if op.skip != 0 {
                constant = constant + (pows[slot] * skip, &xb[o]);
            }
            ys[o] = Some(y);
        }
        let mut factors = Vec::new();
        for g in packing.groups(op, outs) {
            let sum = || match packing.share {
                Share::Weight => {
                    g.iter().fold(LinearCombination::zero(), |lc, &(slot, _, t)| lc + (pows[slot], value(t)))
                }
                Share::Input => {
                    g.iter().fold(LinearCombination::zero(), |lc, &(slot, wi, _)| lc + (pows[slot], &weights[wi]))
                }
            };
            let shared = match packing.share {
                Share::Weight => weights[g[0].1].clone(),
                Share::Input => value(g[0].2).clone(),
            };
            let other = if reuse {
                let next = sums.len();
                let var = match sums.entry(packing.sum_key(&g)) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        let mut cs = cs.namespace(|| format!("sum{next}"));
                        let v = factor_values(&packing, &pows, &hints.factors, &g).1;
                        let s = AllocatedNum::alloc(cs.namespace(|| "value"), || Ok(v))?;
                        cs.enforce(|| "bound", |_| sum(), |lc| lc + CS::one(), |lc| lc + s.get_variable());
                        *e.insert(s.get_variable())
                    }
                };
                LinearCombination::zero() + var
            } else {
                sum()
            };
            factors.push((shared, other));
        }
        let taps: Vec<_> = factors.iter().map(|(a, b)| (a, b)).collect();
        dot_product(&mut cs, &taps, &constant, &acc, hint)?;
    }
    ys.into_iter().collect::<Option<Vec<_>>>().ok_or(SynthesisError::Unsatisfiable("an output is in no pack".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gadgets::conv::conv_accumulators_with_padding;
    use crate::quant::int_to_field;
    use ff::Field;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    pub(crate) struct Case {
        pub(crate) op: Linear,
        pub(crate) input: Vec<u8>,
        /// The block input (the layer's own input unless the case has a projection).
        pub(crate) block: Vec<u8>,
        pub(crate) weights: Vec<i8>,
        pub(crate) bias: Vec<i32>,
    }

    impl Case {
        /// The honest witness under `packing`.
        pub(crate) fn hints(&self, packing: Packing) -> Result<LinearHints, QuantError> {
            linear_hints_with(&self.op, packing, (&self.input, &self.block), &self.weights, &self.bias)
        }
    }

    pub(crate) fn synth(c: &Case, hints: &LinearHints) -> (bool, Vec<F>, usize) {
        synth_with(c, Packing::of(&c.op), hints).0
    }

    /// Synthesizes under `packing`; also returns the first unsatisfied constraint's name.
    pub(crate) fn synth_with(
        c: &Case,
        packing: Packing,
        hints: &LinearHints,
    ) -> ((bool, Vec<F>, usize), Option<String>) {
        let mut cs = TestConstraintSystem::<F>::new();
        let mut alloc = |name: String, v: i64| {
            let x = AllocatedNum::alloc(cs.namespace(|| name), || Ok(int_to_field(v))).unwrap();
            LinearCombination::zero() + x.get_variable()
        };
        let input: Vec<_> = c.input.iter().enumerate().map(|(i, &v)| alloc(format!("a{i}"), v.into())).collect();
        let block = if c.op.projection.is_some() {
            c.block.iter().enumerate().map(|(i, &v)| alloc(format!("xb{i}"), v.into())).collect()
        } else {
            input.clone()
        };
        let weights: Vec<_> = c.weights.iter().enumerate().map(|(i, &v)| alloc(format!("w{i}"), v.into())).collect();
        let bias: Vec<_> = c.bias.iter().enumerate().map(|(i, &v)| alloc(format!("b{i}"), v.into())).collect();
        let ys = linear_requant_with(&mut cs, &c.op, packing, (&input, &block), (&weights, &bias), hints).unwrap();
        let unsatisfied = cs.which_is_unsatisfied().map(String::from);
        ((cs.is_satisfied(), ys.iter().map(|y| y.get_value().unwrap()).collect(), cs.num_constraints()), unsatisfied)
    }

    pub(crate) fn case(shape: LinearShape) -> impl Strategy<Value = Case> {
        let n_in = shape.num_inputs();
        let n_w = shape.num_weights();
        let n_b = shape.num_biases();
        (
            proptest::collection::vec(0u8..=127, n_in),
            proptest::collection::vec(-20i8..=20, n_w),
            proptest::collection::vec(-600i32..600, n_b),
            0u32..6,
            prop_oneof![Just(0u32), 1u32..70],
            prop_oneof![Just(0u8), 0u8..=127],
        )
            .prop_map(move |(input, weights, bias, shift, skip, zero_point)| Case {
                op: Linear {
                    shape,
                    requant: RequantSpec::new(shift, 20).unwrap(),
                    // A skip connection only where the shape allows one.
                    skip: if shape.num_inputs() == shape.num_outputs() { skip } else { 0 },
                    projection: None,
                    zero_point,
                    block_zero_point: zero_point,
                },
                block: input.clone(),
                input,
                weights,
                bias,
            })
    }

    /// Convolutions of every kind the geometry allows: strides, asymmetric and no padding,
    /// rectangular kernels and images, groups (depthwise included).
    pub(crate) fn conv_shape() -> impl Strategy<Value = LinearShape> {
        (
            (1usize..3, 1usize..3, 1usize..3),
            (1usize..7, 1usize..7),
            (1usize..4, 1usize..4, 1usize..3, 1usize..3),
            proptest::array::uniform4(0usize..3),
        )
            .prop_filter_map("a valid geometry", |((groups, cig, cog), (h, w), (kh, kw, sh, sw), p)| {
                let c = ConvShape {
                    channels_in: groups * cig,
                    channels_out: groups * cog,
                    height: h,
                    width: w,
                    kernel: [kh, kw],
                    stride: [sh, sw],
                    pads: [p[0] % kh, p[1] % kw, p[2] % kh, p[3] % kw],
                    groups,
                };
                c.check().is_ok().then_some(LinearShape::Conv(c))
            })
    }

    /// A layer with a projection shortcut from a block input of another shape (ResNet's
    /// downsampling block): the projection is any convolution the geometry allows, the
    /// layer a 3×3 same convolution producing the projection's output dimensions.
    pub(crate) fn projection_case() -> impl Strategy<Value = Case> {
        (conv_shape(), 1usize..3).prop_flat_map(|(p, ci)| {
            let LinearShape::Conv(p) = p else { unreachable!() };
            let (co, oh, ow) = p.output_dims();
            let shape = LinearShape::Conv(ConvShape::same(ci, co, oh, ow, 3));
            let n_w = shape.num_weights() + p.num_weights();
            (
                proptest::collection::vec(0u8..=127, shape.num_inputs()),
                proptest::collection::vec(0u8..=127, p.num_inputs()),
                proptest::collection::vec(-20i8..=20, n_w),
                proptest::collection::vec(-600i32..600, co),
                (0u32..6, prop_oneof![Just(0u8), 0u8..=127]),
            )
                .prop_map(move |(input, block, weights, bias, (shift, block_zero_point))| Case {
                    op: Linear {
                        shape,
                        requant: RequantSpec::new(shift, 20).unwrap(),
                        skip: 0,
                        projection: Some(p),
                        zero_point: 0,
                        block_zero_point,
                    },
                    input,
                    block,
                    weights,
                    bias,
                })
        })
    }

    pub(crate) fn dense_shape() -> impl Strategy<Value = LinearShape> {
        (1usize..12, 1usize..12).prop_map(|(i, o)| LinearShape::Dense(DenseShape { inputs: i, outputs: o }))
    }

    pub(crate) fn to_field(v: &[u8]) -> Vec<F> {
        v.iter().map(|&x| F::from(u64::from(x))).collect()
    }

    /// Satisfied, equal to the native reference, and of the predicted size.
    fn matches_native(c: &Case) -> Result<(), proptest::test_runner::TestCaseError> {
        let hints = linear_hints(&c.op, &c.input, &c.block, &c.weights, &c.bias).unwrap();
        let (sat, ys, n) = synth(c, &hints);
        prop_assert!(sat);
        let native = linear_requant_native(&c.op, &c.input, &c.block, &c.weights, &c.bias).unwrap();
        prop_assert_eq!(ys, to_field(&native));
        prop_assert_eq!(n, c.op.constraints(Packing::of(&c.op)));
        // unpacked: the same outputs at one product per multiply-accumulate
        let one = Packing::with_max_slots(&c.op, 1);
        let ((sat, ys1, n1), _) = synth_with(c, one, &c.hints(one).unwrap());
        prop_assert!(sat);
        prop_assert_eq!(ys1, to_field(&native));
        let outputs = c.op.shape.num_outputs();
        prop_assert_eq!(
            n1,
            (0..outputs).map(|o| c.op.taps(o).len().max(1)).sum::<usize>()
                + outputs * requant_constraints(c.op.requant)
        );
        Ok(())
    }

    /// An honest witness except for the outputs whose `claimed` accumulator (plus the
    /// skip term) requantizes differently: those claim it. `None` when nothing differs.
    fn claim(c: &Case, claimed: &[i64]) -> Option<LinearHints> {
        let (op, p) = (&c.op, c.op.requant);
        let honest = linear_accumulators(op, &c.input, &c.block, &c.weights, &c.bias);
        let mut hints = linear_hints(op, &c.input, &c.block, &c.weights, &c.bias).unwrap();
        let mut changed = false;
        for (o, (&a, &h)) in claimed.iter().zip(&honest).enumerate() {
            let skip = |x: u8| i64::from(op.skip) * (i64::from(x) - i64::from(op.block_zero_point));
            let a = a + if op.skip == 0 { 0 } else { skip(c.block[o]) };
            if requantize_native(a, p).unwrap() != requantize_native(h, p).unwrap() {
                hints.outputs[o] = RequantHint::new(a, p).unwrap();
                changed = true;
            }
        }
        changed.then_some(hints)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(4), ..ProptestConfig::default() })]
        #[test]
        fn conv_matches_native(c in conv_shape().prop_flat_map(case)) {
            matches_native(&c)?;
        }

        #[test]
        fn dense_matches_native(c in dense_shape().prop_flat_map(case)) {
            matches_native(&c)?;
        }

        #[test]
        fn output_plus_one_rejected(c in conv_shape().prop_flat_map(case), pick in any::<prop::sample::Index>()) {
            let mut hints = linear_hints(&c.op, &c.input, &c.block, &c.weights, &c.bias).unwrap();
            let o = pick.index(hints.outputs.len());
            hints.outputs[o].y += F::ONE;
            prop_assert!(!synth(&c, &hints).0);
        }

        #[test]
        fn dropped_skip_connection_rejected(c in conv_shape().prop_flat_map(case)) {
            // A prover that leaves the residual term out of a skip layer.
            prop_assume!(c.op.skip != 0);
            let no_skip = Linear { skip: 0, ..c.op };
            let honest = linear_requant_native(&c.op, &c.input, &c.block, &c.weights, &c.bias).unwrap();
            let without = linear_requant_native(&no_skip, &c.input, &c.block, &c.weights, &c.bias).unwrap();
            prop_assume!(honest != without);
            let hints = linear_hints(&no_skip, &c.input, &c.block, &c.weights, &c.bias).unwrap();
            prop_assert!(!synth(&c, &hints).0);
        }

        #[test]
        fn projection_matches_native(c in projection_case()) {
            matches_native(&c)?;
            // The projection's taps against an independent scan of the padded block input.
            let (op, p) = (c.op, c.op.projection.unwrap());
            let n = op.shape.num_weights();
            let zero = vec![0; op.shape.num_biases()];
            let own = linear_accumulators(&Linear { projection: None, ..op }, &c.input, &c.block, &c.weights[..n], &c.bias);
            let proj = conv_accumulators_with_padding(&p, op.block_zero_point, &c.block, &c.weights[n..], &zero, 0);
            let sum: Vec<i64> = own.iter().zip(&proj).map(|(a, b)| a + b).collect();
            prop_assert_eq!(linear_accumulators(&op, &c.input, &c.block, &c.weights, &c.bias), sum);
        }

        #[test]
        fn a_shortcut_at_the_wrong_scale_is_rejected(c in projection_case(), k in 2i8..4) {
            // A prover that scales the projection's contribution (its weights times k).
            let n = c.op.shape.num_weights();
            let mut scaled = c.weights.clone();
            scaled[n..].iter_mut().for_each(|w| *w = w.saturating_mul(k));
            let claimed = linear_accumulators(&c.op, &c.input, &c.block, &scaled, &c.bias);
            let hints = claim(&c, &claimed);
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }

        #[test]
        fn a_shortcut_that_reads_the_layer_input_is_rejected(c in projection_case()) {
            // A prover that feeds the projection the layer's input (where sizes allow).
            prop_assume!(c.input.len() == c.block.len() && c.input != c.block);
            let claimed = linear_accumulators(&c.op, &c.input, &c.input, &c.weights, &c.bias);
            let hints = claim(&c, &claimed);
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }

        #[test]
        fn a_dropped_projection_is_rejected(c in projection_case()) {
            let n = c.op.shape.num_weights();
            let without = Linear { projection: None, ..c.op };
            let claimed = linear_accumulators(&without, &c.input, &c.block, &c.weights[..n], &c.bias);
            let hints = claim(&c, &claimed);
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }

        #[test]
        fn non_zero_padding_rejected(c in conv_shape().prop_flat_map(case), pad in 1i64..128) {
            // What a prover who filled the padding with `pad` would claim for each output.
            let LinearShape::Conv(conv) = c.op.shape else { unreachable!() };
            let hints = claim(&c, &conv_accumulators_with_padding(&conv, c.op.zero_point, &c.input, &c.weights, &c.bias, pad));
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]
        #[test]
        fn taps_match_a_scan_of_the_padded_image(c in conv_shape().prop_flat_map(case)) {
            // The circuit's tap lists against an independent loop over the zero-padded image.
            let LinearShape::Conv(conv) = c.op.shape else { unreachable!() };
            prop_assert_eq!(
                linear_accumulators(&Linear { skip: 0, ..c.op }, &c.input, &c.block, &c.weights, &c.bias),
                conv_accumulators_with_padding(&conv, c.op.zero_point, &c.input, &c.weights, &c.bias, 0)
            );
        }

        #[test]
        fn a_shifted_window_is_rejected(c in conv_shape().prop_flat_map(case)) {
            // A prover whose windows sit elsewhere (padding moved from the start to the end
            // of each axis: same output size, taps reading the wrong cells).
            let LinearShape::Conv(conv) = c.op.shape else { unreachable!() };
            let [t, l, b, r] = conv.pads;
            let moved = ConvShape { pads: [b, r, t, l], ..conv };
            prop_assume!(moved.check().is_ok());
            let claimed = conv_accumulators_with_padding(&moved, c.op.zero_point, &c.input, &c.weights, &c.bias, 0);
            let hints = claim(&c, &claimed);
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }

        #[test]
        fn a_wrong_stride_is_rejected(c in conv_shape().prop_flat_map(case)) {
            // Outputs computed with stride 1 where the circuit has a larger stride: the first
            // outputs coincide, later ones read other cells.
            let LinearShape::Conv(conv) = c.op.shape else { unreachable!() };
            prop_assume!(conv.stride != [1, 1]);
            let unit = ConvShape { stride: [1, 1], ..conv };
            let all = conv_accumulators_with_padding(&unit, c.op.zero_point, &c.input, &c.weights, &c.bias, 0);
            let ((co, oh, ow), (_, uh, uw)) = (conv.output_dims(), unit.output_dims());
            let claimed: Vec<i64> = (0..co * oh * ow).map(|o| all[((o / (oh * ow)) * uh + (o / ow) % oh) * uw + o % ow]).collect();
            let hints = claim(&c, &claimed);
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }

        #[test]
        fn an_ignored_zero_point_is_rejected(c in conv_shape().prop_flat_map(case)) {
            // A prover that treats stored activations as the values themselves.
            prop_assume!(c.op.zero_point != 0);
            let LinearShape::Conv(conv) = c.op.shape else { unreachable!() };
            let hints = claim(&c, &conv_accumulators_with_padding(&conv, 0, &c.input, &c.weights, &c.bias, 0));
            prop_assume!(hints.is_some());
            prop_assert!(!synth(&c, &hints.unwrap()).0);
        }

        #[test]
        fn a_wrong_shared_sum_is_rejected(c in conv_shape().prop_flat_map(case), at in any::<proptest::sample::Index>()) {
            // A shared sum is a fresh variable the products read: one whose value is not the
            // sum of its factors is caught by its binding constraint, before any product.
            let mut p = Packing::of(&c.op);
            p.share = if at.index(2) == 0 { Share::Input } else { Share::Weight };
            p.slots = p.slots.min(2);
            prop_assume!(p.reuses_sums(&c.op));
            let mut hints = c.hints(p).unwrap();
            let groups: Vec<_> = p.packs(&c.op).iter().flat_map(|outs| p.groups(&c.op, outs)).collect();
            prop_assume!(!groups.is_empty());
            let (_, wi, t) = groups[at.index(groups.len())][0];
            match (p.share, t) {
                (Share::Input, _) => hints.factors.weights[wi] += F::ONE,
                (Share::Weight, Tap::Input(i)) => hints.factors.input[i] += F::ONE,
                (Share::Weight, Tap::Block(i)) => hints.factors.block[i] += F::ONE,
            }
            let ((sat, _, _), first) = synth_with(&c, p, &hints);
            prop_assert!(!sat);
            prop_assert!(first.as_deref().is_some_and(|n| n.ends_with("/bound")), "{:?}", first);
            // and the honest witness of the same packing is accepted
            prop_assert!(synth_with(&c, p, &c.hints(p).unwrap()).0 .0);
        }
    }

    /// Two maps of one "same" convolution sharing a circuit: the first plain, the second
    /// with a residual; their own shifts and zero points; the case's input and weights.
    fn either_case() -> impl Strategy<Value = (Case, Linear, Linear)> {
        let shapes =
            (1usize..3, 1usize..4, 1usize..4).prop_map(|(c, h, w)| LinearShape::Conv(ConvShape::same(c, c, h, w, 3)));
        (shapes.prop_flat_map(case), (0u32..6, 0u32..6), (1u32..70, 0u8..=127, 0u8..=127)).prop_map(
            |(c, (sa, sb), (skip, zb, bzp))| {
                let rq = |s| RequantSpec::new(s, 20).unwrap();
                let a = Linear { requant: rq(sa), skip: 0, block_zero_point: 0, ..c.op };
                let b = Linear { requant: rq(sb), skip, zero_point: zb, block_zero_point: bzp, ..c.op };
                (c, a, b)
            },
        )
    }

    /// Synthesizes the shared circuit at `bit` with `hints`, the block input (the case's
    /// input) multiplied by the bit as the caller passes it; (satisfied, outputs, size).
    fn synth_either(c: &Case, (a, b): (&Linear, &Linear), bit: bool, hints: &LinearHints) -> (bool, Vec<F>, usize) {
        let mut cs = TestConstraintSystem::<F>::new();
        let p = crate::gadgets::bits::alloc_uint(&mut cs.namespace(|| "bit"), &[F::from(u64::from(bit))]).unwrap();
        let mut alloc = |name: String, v: i64| {
            let x = AllocatedNum::alloc(cs.namespace(|| name), || Ok(int_to_field(v))).unwrap();
            LinearCombination::zero() + x.get_variable()
        };
        let input: Vec<_> = c.input.iter().enumerate().map(|(i, &v)| alloc(format!("a{i}"), v.into())).collect();
        let gated = c.input.iter().enumerate().map(|(i, &v)| alloc(format!("xb{i}"), if bit { v.into() } else { 0 }));
        let block: Vec<_> = gated.collect();
        let weights: Vec<_> = c.weights.iter().enumerate().map(|(i, &v)| alloc(format!("w{i}"), v.into())).collect();
        let bias: Vec<_> = c.bias.iter().enumerate().map(|(i, &v)| alloc(format!("b{i}"), v.into())).collect();
        let ys = linear_requant_either(&mut cs, (a, b), &p, (&input, &block), (&weights, &bias), hints).unwrap();
        (cs.is_satisfied(), ys.iter().map(|y| y.get_value().unwrap()).collect(), cs.num_constraints())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]

        /// With its bit, the shared circuit computes the selected map exactly (the first
        /// without the residual, the second with it), at the size of the second's packed
        /// products plus the selecting requantization; with the other map's witness it is
        /// rejected wherever the two maps differ.
        #[test]
        fn a_shared_circuit_computes_the_map_its_bit_selects((c, a, b) in either_case(), bit in any::<bool>()) {
            let packing = either_packing(&a, &b).unwrap();
            let zeros = vec![0; c.input.len()];
            let hints_of = |op: &Linear, block: &[u8]| linear_hints_with(op, packing, (&c.input, block), &c.weights, &c.bias).unwrap();
            let (ha, hb) = (hints_of(&a, &zeros), hints_of(&b, &c.input));
            let (op, hints, other) = if bit { (&b, &hb, &ha) } else { (&a, &ha, &hb) };
            let (sat, ys, n) = synth_either(&c, (&a, &b), bit, hints);
            prop_assert!(sat);
            let native = linear_requant_native(op, &c.input, &c.input, &c.weights, &c.bias).unwrap();
            prop_assert_eq!(ys, to_field(&native));
            let outputs = c.op.shape.num_outputs();
            let requant = crate::gadgets::requant::requant_either_constraints(a.requant, b.requant);
            prop_assert_eq!(n, 1 + packing.product_constraints(&b) + outputs * requant);
            if ha != hb {
                prop_assert!(!synth_either(&c, (&a, &b), bit, other).0);
            }
        }
    }

    #[test]
    fn maps_that_cannot_share_a_circuit_are_refused() {
        let shape = LinearShape::Conv(ConvShape::same(2, 2, 3, 3, 3));
        let op = |skip, acc_bits| Linear {
            shape,
            requant: RequantSpec::new(2, acc_bits).unwrap(),
            skip,
            projection: None,
            zero_point: 0,
            block_zero_point: 0,
        };
        assert!(either_packing(&op(0, 20), &op(3, 20)).is_ok());
        assert!(either_packing(&op(3, 20), &op(3, 20)).is_err(), "a shortcut in the first");
        assert!(either_packing(&op(0, 20), &op(3, 22)).is_err(), "two accumulator widths");
        let other = Linear { shape: LinearShape::Conv(ConvShape::same(2, 2, 3, 4, 3)), ..op(3, 20) };
        assert!(either_packing(&op(0, 20), &other).is_err(), "two geometries");
    }
}
