//! A linear layer (convolution or dense) followed by requantize+ReLU+clamp: the compute
//! part of a layer step, and its bit-exact native reference.

use super::conv::ConvShape;
use super::dense::DenseShape;
use super::dot::{dot_native, dot_product, DotHint};
use super::requant::{requant_constraints, requantize_relu, RequantHint};
use crate::quant::{check_activations, requantize_native, QuantError, RequantSpec};
use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use serde::{Deserialize, Serialize};

/// The geometry of a linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
// Externally tagged (`{"conv": {...}}`): readable in JSON and decodable by bincode.
#[serde(rename_all = "snake_case")]
pub enum LinearShape {
    /// Same-size 2-D convolution.
    Conv(ConvShape),
    /// Dense matrix-vector product.
    Dense(DenseShape),
}

impl LinearShape {
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
            Self::Conv(c) => c.channels_in * c.kernel * c.kernel,
            Self::Dense(d) => d.inputs,
        }
    }
    /// Constraints of [`linear_requant`]: one per MAC (at least one per output) plus the
    /// requantization of every output.
    pub fn constraints(&self, p: RequantSpec) -> usize {
        (0..self.num_outputs()).map(|o| self.taps(o).len().max(1) + requant_constraints(p)).sum()
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

/// The constant part of output `o`'s accumulator: its bias plus, with a residual `skip`
/// multiplier, `skip · input[o]` (the skip connection, scaled into the accumulator's units).
fn offset(shape: &LinearShape, skip: u32, input: &[u8], bias: &[i32], o: usize) -> i64 {
    let residual = if skip == 0 { 0 } else { i64::from(skip) * i64::from(input[o]) };
    i64::from(bias[shape.bias_of(o)]) + residual
}

/// Checks a residual multiplier against the shape: a skip connection adds input `o` to
/// output `o`, so it needs as many inputs as outputs.
pub fn check_skip(shape: &LinearShape, skip: u32) -> Result<(), QuantError> {
    if skip != 0 && shape.num_inputs() != shape.num_outputs() {
        return Err(QuantError::BadSpec(format!(
            "a residual connection needs as many inputs as outputs ({} != {})",
            shape.num_inputs(),
            shape.num_outputs()
        )));
    }
    Ok(())
}

/// Native accumulators `bias + skip·a_o + Σ w·a` of every output.
pub fn linear_accumulators(shape: &LinearShape, skip: u32, input: &[u8], weights: &[i8], bias: &[i32]) -> Vec<i64> {
    (0..shape.num_outputs())
        .map(|o| {
            let taps = shape.taps(o).into_iter().map(|(wi, ii)| (i64::from(weights[wi]), i64::from(input[ii])));
            dot_native(taps, offset(shape, skip, input, bias, o))
        })
        .collect()
}

/// Native reference of [`linear_requant`]: the layer's output activations.
pub fn linear_requant_native(
    shape: &LinearShape,
    p: RequantSpec,
    skip: u32,
    input: &[u8],
    weights: &[i8],
    bias: &[i32],
) -> Result<Vec<u8>, QuantError> {
    shape.check_lengths(input.len(), weights.len(), bias.len())?;
    check_skip(shape, skip)?;
    check_activations(input)?;
    linear_accumulators(shape, skip, input, weights, bias).into_iter().map(|acc| requantize_native(acc, p)).collect()
}

/// Witness of one output: its products and its requantization.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputHint {
    /// Products of the dot product.
    pub dot: DotHint,
    /// Requantization bits and flags.
    pub requant: RequantHint,
}

/// Honest witness of every output; fails where the native reference fails.
pub fn linear_hints(
    shape: &LinearShape,
    p: RequantSpec,
    skip: u32,
    input: &[u8],
    weights: &[i8],
    bias: &[i32],
) -> Result<Vec<OutputHint>, QuantError> {
    shape.check_lengths(input.len(), weights.len(), bias.len())?;
    check_skip(shape, skip)?;
    check_activations(input)?;
    (0..shape.num_outputs())
        .map(|o| {
            let taps = shape.taps(o);
            let ints = || taps.iter().map(|&(wi, ii)| (i64::from(weights[wi]), i64::from(input[ii])));
            let acc = dot_native(ints(), offset(shape, skip, input, bias, o));
            Ok(OutputHint { dot: DotHint::new(ints()), requant: RequantHint::new(acc, p)? })
        })
        .collect()
}

/// Synthesizes the layer: for every output, its dot product (one constraint per MAC) bound
/// to the requantization bits, then requantize+ReLU+clamp. Returns the outputs, each
/// constrained to `[0, 127]`. The inputs, weights and biases are linear combinations the
/// caller has already range-checked and bound to commitments. A residual `skip`
/// multiplier (a public constant) adds `skip · input[o]` to output `o`'s constant term:
/// a linear term, so the skip connection costs no constraint.
#[allow(clippy::too_many_arguments)]
pub fn linear_requant<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    shape: &LinearShape,
    p: RequantSpec,
    skip: u32,
    input: &[LinearCombination<F>],
    weights: &[LinearCombination<F>],
    bias: &[LinearCombination<F>],
    hints: &[OutputHint],
) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
    if shape.check_lengths(input.len(), weights.len(), bias.len()).is_err()
        || check_skip(shape, skip).is_err()
        || hints.len() != shape.num_outputs()
    {
        return Err(SynthesisError::Unsatisfiable("witness has the wrong length".into()));
    }
    hints
        .iter()
        .enumerate()
        .map(|(o, hint)| {
            let mut cs = cs.namespace(|| format!("out{o}"));
            let (acc, y) = requantize_relu(&mut cs, p, &hint.requant)?;
            let taps: Vec<_> = shape.taps(o).into_iter().map(|(wi, ii)| (&weights[wi], &input[ii])).collect();
            let mut constant = bias[shape.bias_of(o)].clone();
            if skip != 0 {
                constant = constant + (F::from(u64::from(skip)), &input[o]);
            }
            dot_product(&mut cs, &taps, &constant, &acc, &hint.dot)?;
            Ok(y)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::conv::conv_accumulators_with_padding;
    use crate::quant::int_to_field;
    use ff::Field;
    use nova_snark::frontend::test_cs::TestConstraintSystem;
    use proptest::prelude::*;

    #[derive(Debug)]
    struct Case {
        shape: LinearShape,
        p: RequantSpec,
        skip: u32,
        input: Vec<u8>,
        weights: Vec<i8>,
        bias: Vec<i32>,
    }

    fn synth(c: &Case, hints: &[OutputHint]) -> (bool, Vec<F>, usize) {
        let mut cs = TestConstraintSystem::<F>::new();
        let mut alloc = |name: String, v: i64| {
            let x = AllocatedNum::alloc(cs.namespace(|| name), || Ok(int_to_field(v))).unwrap();
            LinearCombination::zero() + x.get_variable()
        };
        let input: Vec<_> = c.input.iter().enumerate().map(|(i, &v)| alloc(format!("a{i}"), v.into())).collect();
        let weights: Vec<_> = c.weights.iter().enumerate().map(|(i, &v)| alloc(format!("w{i}"), v.into())).collect();
        let bias: Vec<_> = c.bias.iter().enumerate().map(|(i, &v)| alloc(format!("b{i}"), v.into())).collect();
        let ys = linear_requant(&mut cs, &c.shape, c.p, c.skip, &input, &weights, &bias, hints).unwrap();
        (cs.is_satisfied(), ys.iter().map(|y| y.get_value().unwrap()).collect(), cs.num_constraints())
    }

    fn case(shape: LinearShape) -> impl Strategy<Value = Case> {
        let n_in = shape.num_inputs();
        let n_w = shape.num_weights();
        let n_b = shape.num_biases();
        (
            proptest::collection::vec(0u8..=127, n_in),
            proptest::collection::vec(-20i8..=20, n_w),
            proptest::collection::vec(-600i32..600, n_b),
            0u32..6,
            prop_oneof![Just(0u32), 1u32..70],
        )
            .prop_map(move |(input, weights, bias, shift, skip)| Case {
                shape,
                p: RequantSpec::new(shift, 20).unwrap(),
                // A skip connection only where the shape allows one.
                skip: if shape.num_inputs() == shape.num_outputs() { skip } else { 0 },
                input,
                weights,
                bias,
            })
    }

    fn conv_shape() -> impl Strategy<Value = LinearShape> {
        (1usize..3, 1usize..3, 1usize..6, 1usize..6, prop_oneof![Just(1usize), Just(3), Just(5)]).prop_map(
            |(ci, co, h, w, k)| {
                LinearShape::Conv(ConvShape { channels_in: ci, channels_out: co, height: h, width: w, kernel: k })
            },
        )
    }

    fn dense_shape() -> impl Strategy<Value = LinearShape> {
        (1usize..12, 1usize..12).prop_map(|(i, o)| LinearShape::Dense(DenseShape { inputs: i, outputs: o }))
    }

    fn to_field(v: &[u8]) -> Vec<F> {
        v.iter().map(|&x| F::from(u64::from(x))).collect()
    }

    /// Satisfied, equal to the native reference, and of the predicted size.
    fn matches_native(c: &Case) -> Result<(), proptest::test_runner::TestCaseError> {
        let hints = linear_hints(&c.shape, c.p, c.skip, &c.input, &c.weights, &c.bias).unwrap();
        let (sat, ys, n) = synth(c, &hints);
        prop_assert!(sat);
        let native = linear_requant_native(&c.shape, c.p, c.skip, &c.input, &c.weights, &c.bias).unwrap();
        prop_assert_eq!(ys, to_field(&native));
        prop_assert_eq!(n, c.shape.constraints(c.p));
        Ok(())
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
            let mut hints = linear_hints(&c.shape, c.p, c.skip, &c.input, &c.weights, &c.bias).unwrap();
            let o = pick.index(hints.len());
            hints[o].requant.y += F::ONE;
            prop_assert!(!synth(&c, &hints).0);
        }

        #[test]
        fn dropped_skip_connection_rejected(c in conv_shape().prop_flat_map(case)) {
            // A prover that leaves the residual term out of a skip layer.
            prop_assume!(c.skip != 0);
            let honest = linear_requant_native(&c.shape, c.p, c.skip, &c.input, &c.weights, &c.bias).unwrap();
            let without = linear_requant_native(&c.shape, c.p, 0, &c.input, &c.weights, &c.bias).unwrap();
            prop_assume!(honest != without);
            let hints = linear_hints(&c.shape, c.p, 0, &c.input, &c.weights, &c.bias).unwrap();
            prop_assert!(!synth(&c, &hints).0);
        }

        #[test]
        fn non_zero_padding_rejected(c in conv_shape().prop_flat_map(case), pad in 1i64..128) {
            // What a prover who filled the padding with `pad` would claim for each output.
            let LinearShape::Conv(conv) = c.shape else { unreachable!() };
            let honest = linear_accumulators(&c.shape, c.skip, &c.input, &c.weights, &c.bias);
            let mut padded = conv_accumulators_with_padding(&conv, &c.input, &c.weights, &c.bias, pad);
            if c.skip != 0 {
                padded.iter_mut().enumerate().for_each(|(o, a)| *a += i64::from(c.skip) * i64::from(c.input[o]));
            }
            let padded_y: Vec<_> = padded.iter().map(|&a| requantize_native(a, c.p).unwrap()).collect();
            let honest_y = linear_requant_native(&c.shape, c.p, c.skip, &c.input, &c.weights, &c.bias).unwrap();
            prop_assume!(padded_y != honest_y);
            // Splice the padded outputs into an otherwise honest witness.
            let mut hints = linear_hints(&c.shape, c.p, c.skip, &c.input, &c.weights, &c.bias).unwrap();
            for (o, (&a, &h)) in padded.iter().zip(&honest).enumerate() {
                if a != h {
                    hints[o].requant = RequantHint::new(a, c.p).unwrap();
                }
            }
            prop_assert!(!synth(&c, &hints).0);
        }
    }

    #[test]
    fn honest_padding_matches_explicit_zero_padding() {
        let conv = ConvShape { channels_in: 2, channels_out: 2, height: 5, width: 4, kernel: 3 };
        let input: Vec<u8> = (0..40).map(|i| (i * 7 % 128) as u8).collect();
        let weights: Vec<i8> = (0..36).map(|i| (i as i8 % 9) - 4).collect();
        let bias = vec![3, -7];
        assert_eq!(
            linear_accumulators(&LinearShape::Conv(conv), 0, &input, &weights, &bias),
            conv_accumulators_with_padding(&conv, &input, &weights, &bias, 0)
        );
    }
}
