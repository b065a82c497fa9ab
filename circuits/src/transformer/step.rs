//! A transformer block as one Nova step: the block of [`super::block`] between the
//! commitments that make a chain of such steps mean "this model on that input".
//!
//! State `z = [blocks, model, stream]`, as a layer step's ([`crate::state`]): the number of
//! blocks applied, the running model commitment, and a commitment to the signed residual
//! stream. One step:
//! 1. range-checks its private input stream (`x + 2^15` in 16 bits, [`STREAM_BITS`]) and opens
//!    `z_in.stream` with it and the input blind: `H(tag(T·d), blind, pack16(x + 2^15))`;
//! 2. range-checks every weight (int8: `w + 128` in 8 bits; the LayerNorms' `γ` too) and
//!    every bias (int32; the LayerNorms' `β` too) and absorbs them, tensor by tensor in a
//!    fixed order, into the running model commitment with [`model_update`]: each tensor's
//!    update carries a digest of the block's whole public spec *and the tensor's place*
//!    (so tensors cannot be swapped, nor the same weights read under other scales), the
//!    model's secret salt, and its weights output-major in canonical chunks;
//! 3. computes the block on the range-checked values ([`super::block`]);
//! 4. commits to the output stream (`y + 2^15`, in `[0, 2^16)` by the signed
//!    requantization's construction, so the 16-bit packing is injective) under a fresh blind.
//!
//! By induction over the steps and collision resistance of Poseidon, a valid IVC proof from
//! `[0, start, C_in]` to `[N, M, C_out]` shows that `N` blocks whose specs and weights `M`
//! commits to, in order, map a stream opening `C_in` to one opening `C_out` under the
//! native semantics of [`super::block_native`]. The stream's tag (distinct from the
//! unsigned activations' [`crate::commit::TAG_ACTIVATIONS`]) keeps a signed stream from
//! being read as a CNN's activations or the other way round.

use super::circuit::{block, BlockHint};
use super::native::block_native;
use super::spec::{BlockError, BlockSpec, BlockWeights, STREAM_BITS};
use crate::gadgets::bits::{add_constant, alloc_uint, lc};
use crate::gadgets::commit::{
    domain_tag, hash, hash_native, model_update, model_update_native, pack, pack_native, Chunks, LayerUpdate,
};
use crate::gadgets::layernorm::LayerNormSpec;
use crate::layer::{alloc_layer_weights, alloc_weights, weight_terms, LayerWeights};
use crate::quant::{bits_le, int_to_field};
use crate::F;
use ff::Field;
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, num::Num, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;

/// Domain tag of a signed stream's commitment.
pub const TAG_SIGNED_STREAM: u64 = 0xf01d_0010;
/// Domain tag of a block tensor's spec digest.
pub const TAG_BLOCK_TENSOR: u64 = 0xf01d_0011;
/// Version of [`BlockSpec::encode`]'s meaning (2: a 16-bit stream, with the widths encoded).
pub const BLOCK_ENCODING: u64 = 2;
/// Tensors of a block, in the order the model commitment absorbs them.
pub const TENSORS: usize = 8;

/// The offset that makes a stream value a limb: `x + 2^15`.
const STREAM_OFFSET: i64 = 1 << (STREAM_BITS - 1);

impl BlockSpec {
    /// Every public number of the block, in a fixed order (signed values as field
    /// elements), behind its encoding version.
    pub fn encode(&self) -> Vec<F> {
        let s = self.shape;
        let u = |v: u64| F::from(v);
        let rq = |r: crate::quant::RequantSpec| [u(r.shift().into()), u(r.acc_bits().into())];
        let ln = layernorm_fields;
        let add = |a: &crate::gadgets::elementwise::AddSpec| {
            let (m_a, m_b, c) = a.terms();
            let [s, b] = rq(a.requant());
            let (wa, wo) = a.widths();
            [int_to_field(m_a), int_to_field(m_b), int_to_field(c), s, b, u(wa.into()), u(wo.into())]
        };
        let mut out = vec![u(BLOCK_ENCODING), u(s.tokens as u64), u(s.width as u64), u(s.heads as u64)];
        out.push(u(s.hidden as u64));
        out.extend(ln(&self.ln1));
        for r in [self.qkv, self.scores] {
            out.extend(rq(r));
        }
        out.extend([u(self.softmax_frac.into()), u(self.softmax_table.into())]);
        for r in [self.mix, self.proj] {
            out.extend(rq(r));
        }
        out.extend(add(&self.residual1));
        out.extend(ln(&self.ln2));
        out.extend(rq(self.fc1));
        out.extend([u(self.gelu.frac_bits().into()), u(self.gelu.out_frac_bits().into())]);
        out.extend(rq(self.fc2));
        out.extend(add(&self.residual2));
        out
    }

    /// The digest tensor `i` of the block absorbs: `H(tag, encode(), i)`.
    pub fn tensor_digest(&self, i: usize) -> F {
        tensor_digest(TAG_BLOCK_TENSOR, self.encode(), i)
    }

    /// Each tensor's update of the model commitment.
    pub fn updates(&self) -> [LayerUpdate; TENSORS] {
        let (d, h) = (self.shape.width, self.shape.hidden);
        let shapes = [(d, 1), (d, d), (d, d), (d, d), (d, d), (d, 1), (h, d), (d, h)];
        std::array::from_fn(|i| {
            let (outputs, own) = shapes[i];
            LayerUpdate { digest: self.tensor_digest(i), chunks: Chunks::new(outputs, own, 0) }
        })
    }
}

/// Every public number of a LayerNorm, in a fixed order.
pub(super) fn layernorm_fields(l: &LayerNormSpec) -> [F; 7] {
    let u = |v: u64| F::from(v);
    let (d, e, m) = (u(l.d() as u64), u(l.eps_int()), u(l.recip_bits().into()));
    let r = l.requant();
    [d, e, m, u(r.shift().into()), u(r.acc_bits().into()), u(l.in_bits().into()), u(l.beta_shift().into())]
}

/// The tensors of `w` in commitment order: `(matrix input-major, bias)`.
fn tensors<W, B>(w: &BlockWeights<W, B>) -> [&(Vec<W>, Vec<B>); TENSORS] {
    [&w.ln1, &w.q, &w.k, &w.v, &w.o, &w.ln2, &w.fc1, &w.fc2]
}

/// The column-major order of a row-major matrix with `cols` columns: an input-major
/// matrix with `outputs` columns read output-major (what a chunk absorbs), and back with
/// `inputs` columns (a LayerNorm's `γ`, one per output, is its own transpose).
pub(super) fn transposed<T: Clone>(m: &[T], cols: usize) -> Vec<T> {
    let rows = m.len() / cols.max(1);
    (0..cols).flat_map(|j| (0..rows).map(move |t| m[t * cols + j].clone())).collect()
}

/// Every tensor as a layer's parameters: weights output-major, biases as int32 (each
/// checked to fit).
fn layer_weights(w: &BlockWeights<i8, i64>) -> Result<[LayerWeights; TENSORS], BlockError> {
    let [a, b, c, d, e, f, g, h] = tensors(w).map(tensor_weights);
    Ok([a?, b?, c?, d?, e?, f?, g?, h?])
}

/// One `(matrix input-major, bias)` tensor as a layer's parameters: weights output-major,
/// biases as int32 (each checked to fit).
pub(super) fn tensor_weights((m, b): &(Vec<i8>, Vec<i64>)) -> Result<LayerWeights, BlockError> {
    let int32 = |&b: &i64| i32::try_from(b).map_err(|_| BlockError::Shape(format!("bias {b} is not an int32")));
    Ok(LayerWeights { weights: transposed(m, b.len()), bias: b.iter().map(int32).collect::<Result<_, _>>()? })
}

/// `acc` updated by every tensor's parameters, in order.
pub(super) fn absorb_native(updates: &[LayerUpdate], tensors: &[LayerWeights], acc: F, salt: F) -> F {
    updates.iter().zip(tensors).fold(acc, |acc, (u, t)| model_update_native(acc, u, salt, &t.weights, &t.bias))
}

/// Commitment to a signed stream under a blind: `H(tag(len), blind, pack16(x + 2^15))`.
pub fn stream_commitment_native(x: &[i16], blind: F) -> F {
    let limbs: Vec<u64> = x.iter().map(|&v| (i64::from(v) + STREAM_OFFSET) as u64).collect();
    packed_commitment_native(TAG_SIGNED_STREAM, &limbs, STREAM_BITS, blind)
}

/// `H(tag(n), blind, pack_bits(limbs))`: the commitment to `n` limbs of `bits` bits each
/// (a stream, token ids, logits: each kind under its own tag).
pub(super) fn packed_commitment_native(tag: u64, limbs: &[u64], bits: u32, blind: F) -> F {
    let mut items = vec![domain_tag(tag, limbs.len()), blind];
    items.extend(pack_native(limbs, bits));
    hash_native(&items)
}

/// In-circuit twin of [`packed_commitment_native`]; the limbs must be range-checked to
/// `bits` bits (so the packing is injective).
pub(super) fn packed_commitment<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    tag: u64,
    limbs: &[Num<F>],
    bits: u32,
    blind: &AllocatedNum<F>,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let mut items = vec![Elt::num_from_fr::<CS>(domain_tag(tag, limbs.len())), Elt::Allocated(blind.clone())];
    items.extend(pack(limbs, bits).into_iter().map(Elt::Num));
    hash(cs, &items)
}

/// The digest tensor `i` of a step absorbs: `H(tag, fields, i)` (`fields`: the step's
/// whole public spec).
pub(super) fn tensor_digest(tag: u64, fields: Vec<F>, i: usize) -> F {
    let mut items = vec![domain_tag(tag, fields.len())];
    items.extend(fields);
    items.push(F::from(i as u64));
    hash_native(&items)
}

/// The three slots of a transformer step's state.
pub(super) fn state3(z: &[AllocatedNum<F>]) -> Result<[&AllocatedNum<F>; 3], SynthesisError> {
    match z {
        [a, b, c] => Ok([a, b, c]),
        _ => Err(SynthesisError::Unsatisfiable(format!("state arity {} != 3", z.len()))),
    }
}

/// In-circuit twin of [`stream_commitment_native`]; the limbs `x + 2^15` must be
/// range-checked to 16 bits.
pub fn stream_commitment<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    limbs: &[Num<F>],
    blind: &AllocatedNum<F>,
) -> Result<AllocatedNum<F>, SynthesisError> {
    packed_commitment(cs, TAG_SIGNED_STREAM, limbs, STREAM_BITS, blind)
}

/// The running model commitment after one block: `acc` updated by every tensor.
pub fn block_update_native(spec: &BlockSpec, acc: F, salt: F, w: &BlockWeights<i8, i64>) -> Result<F, BlockError> {
    w.check(&spec.shape)?;
    Ok(absorb_native(&spec.updates(), &layer_weights(w)?, acc, salt))
}

/// The private inputs of one block step.
#[derive(Clone, Debug)]
pub struct BlockWitness {
    /// The input stream (`T×d`, [`STREAM_BITS`] bits).
    pub input: Vec<i16>,
    /// The block's weights.
    pub weights: BlockWeights<i8, i64>,
    /// Blind of the input stream's commitment.
    pub blind_in: F,
    /// Blind of the output stream's commitment.
    pub blind_out: F,
    /// The model's secret salt.
    pub salt: F,
}

/// One transformer block as a step circuit (module docs).
#[derive(Clone, Debug)]
pub struct TransformerStep {
    spec: BlockSpec,
    witness: BlockWitness,
    tensors: [LayerWeights; TENSORS],
    hint: BlockHint,
    output: Vec<i16>,
}

impl TransformerStep {
    /// The step of `spec` on `witness`, its block evaluated natively.
    pub fn new(spec: BlockSpec, witness: BlockWitness) -> Result<Self, BlockError> {
        let trace = block_native(&spec, &witness.weights, &witness.input)?;
        let hint = BlockHint::new(&spec, &witness.weights, &witness.input, &trace)?;
        let tensors = layer_weights(&witness.weights)?;
        Ok(Self { spec, witness, tensors, hint, output: trace.out })
    }

    /// A step of `spec` on zeros, for parameter setup (the circuit's shape does not depend
    /// on the values).
    pub fn blank(spec: BlockSpec) -> Result<Self, BlockError> {
        let input = vec![0; spec.shape.tokens * spec.shape.width];
        let weights = BlockWeights::zeros(&spec.shape);
        Self::new(spec, BlockWitness { input, weights, blind_in: F::ZERO, blind_out: F::ZERO, salt: F::ZERO })
    }

    /// The output stream.
    pub fn output(&self) -> &[i16] {
        &self.output
    }

    /// The state after this step from `[blocks, model, stream]` (native twin of the
    /// circuit's output).
    pub fn next_state(&self, [blocks, model, _]: [F; 3]) -> [F; 3] {
        let w = &self.witness;
        let model = absorb_native(&self.spec.updates(), &self.tensors, model, w.salt);
        [blocks + F::ONE, model, stream_commitment_native(&self.output, w.blind_out)]
    }
}

impl StepCircuit<F> for TransformerStep {
    fn arity(&self) -> usize {
        3
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [blocks, model, stream] = state3(z)?;
        let w = &self.witness;
        let x = open_stream(cs, &w.input, w.blind_in, stream)?;

        let salt = AllocatedNum::alloc(cs.namespace(|| "salt"), || Ok(w.salt))?;
        let (acc, tensor_lcs) = absorb(cs, &self.spec.updates(), Biases::Checked, &self.tensors, &salt, model)?;
        let mut tensor_lcs = tensor_lcs.into_iter();
        let mut next = || tensor_lcs.next().ok_or(SynthesisError::Unsatisfiable("missing tensor".into()));
        let lw = BlockWeights {
            ln1: next()?,
            q: next()?,
            k: next()?,
            v: next()?,
            o: next()?,
            ln2: next()?,
            fc1: next()?,
            fc2: next()?,
        };
        let out = block(&mut cs.namespace(|| "block"), &self.spec, &lw, &x, &self.hint)?;

        let committed = commit_stream(cs, out, w.blind_out)?;
        let next_blocks = count_up(cs, blocks)?;
        Ok(vec![next_blocks, acc, committed])
    }
}

/// Allocates a private signed stream (each limb `x + 2^15` range-checked to
/// [`STREAM_BITS`] bits, what its commitment packs) and makes it open the state's stream
/// commitment `slot` with the private blind; returns each value `x` as a linear combination.
pub(super) fn open_stream<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    x: &[i16],
    blind: F,
    slot: &AllocatedNum<F>,
) -> Result<Vec<Lc>, SynthesisError> {
    let limbs = (x.iter().enumerate())
        .map(|(i, &v)| {
            let u = (i64::from(v) + STREAM_OFFSET) as u64;
            alloc_uint(&mut cs.namespace(|| format!("x{i}")), &bits_le(u, STREAM_BITS))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let blind = AllocatedNum::alloc(cs.namespace(|| "blind_in"), || Ok(blind))?;
    let opened = stream_commitment(&mut cs.namespace(|| "open input"), &limbs, &blind)?;
    enforce_opens(cs, "input opens z_in.stream", &opened, slot);
    let offset = F::from(STREAM_OFFSET as u64);
    Ok(limbs.iter().map(|u| lc(&add_constant::<CS>(u.clone(), -offset))).collect())
}

/// Commits to a stream computed by signed requantizations (each `y + 2^15` in
/// `[0, 2^16)` by their construction) under a fresh private blind.
pub(super) fn commit_stream<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    y: Vec<AllocatedNum<F>>,
    blind: F,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let offset = F::from(STREAM_OFFSET as u64);
    let limbs: Vec<Num<F>> = y.into_iter().map(|y| add_constant::<CS>(Num::from(y), offset)).collect();
    let blind = AllocatedNum::alloc(cs.namespace(|| "blind_out"), || Ok(blind))?;
    stream_commitment(&mut cs.namespace(|| "commit output"), &limbs, &blind)
}

/// `opened = slot`: a private input opens the state's commitment.
pub(super) fn enforce_opens<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    what: &'static str,
    opened: &AllocatedNum<F>,
    slot: &AllocatedNum<F>,
) {
    cs.enforce(|| what, |lc| lc + opened.get_variable(), |lc| lc + CS::one(), |lc| lc + slot.get_variable());
}

/// The state's counter plus one.
pub(super) fn count_up<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    n: &AllocatedNum<F>,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let next = AllocatedNum::alloc(cs.namespace(|| "next count"), || {
        n.get_value().map(|b| b + F::ONE).ok_or(SynthesisError::AssignmentMissing)
    })?;
    cs.enforce(
        || "count + 1",
        |lc| lc + n.get_variable() + CS::one(),
        |lc| lc + CS::one(),
        |lc| lc + next.get_variable(),
    );
    Ok(next)
}

type Lc = LinearCombination<F>;

/// A tensor's signed weights (input-major) and biases, as the gadgets read them.
pub(super) type TensorTerms = (Vec<Lc>, Vec<Lc>);

/// How [`absorb`] takes the tensors' biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Biases {
    /// Witnesses range-checked to int32 (what the products' no-carry argument needs).
    Checked,
    /// The constant 0: tables whose rows have no bias (the embedding's). The zeros enter
    /// the model commitment's hash as constants, the same zeros its native twin absorbs,
    /// so the commitment is unchanged and no row pays a 32-bit range check.
    Zero,
}

/// Range-checks every tensor's parameters and absorbs them, in order, into the running
/// model commitment `model`; returns the new commitment and the tensors' terms.
pub(super) fn absorb<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    updates: &[LayerUpdate],
    biases: Biases,
    tensors: &[LayerWeights],
    salt: &AllocatedNum<F>,
    model: &AllocatedNum<F>,
) -> Result<(AllocatedNum<F>, Vec<TensorTerms>), SynthesisError> {
    let mut acc = model.clone();
    let mut terms = vec![];
    for (i, (update, t)) in updates.iter().zip(tensors).enumerate() {
        let cs = &mut cs.namespace(|| format!("tensor{i}"));
        // weights output-major, as the model update absorbs them; the gadgets read them
        // input-major
        let (unsigned, bias) = match biases {
            Biases::Checked => alloc_layer_weights(cs, t)?,
            Biases::Zero if t.bias.iter().all(|&b| b == 0) => {
                (alloc_weights(cs, &t.weights)?, vec![Num::zero(); t.bias.len()])
            }
            Biases::Zero => return Err(SynthesisError::Unsatisfiable("a table row has a bias".into())),
        };
        acc = model_update(&mut cs.namespace(|| "model"), update, salt, &acc, &unsigned, &bias)?;
        let (weights, bias) = weight_terms::<CS>(unsigned, &bias);
        let inputs = weights.len() / bias.len().max(1);
        terms.push((transposed(&weights, inputs), bias));
    }
    Ok((acc, terms))
}
