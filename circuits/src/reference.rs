//! Native reference executor for a stack of blocks: the same integer maths and the same
//! commitments as the circuits, with no constraint system. The prover uses it to produce
//! each step's witness and the public statement; tests hold the circuits to it.

use crate::commit::{activation_commitment_native, model_start, model_update_native, LayerUpdate, Layout};
use crate::layer::{layer_native, BlockSpec, LayerWeights};
use crate::quant::{check_activations, QuantError};
use crate::state::StepState;
use crate::F;

/// A native run in progress: current activations and IVC state, layer by layer.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeRun {
    block: BlockSpec,
    updates: Vec<LayerUpdate>,
    salt: F,
    /// The current block's input (what its shortcut terms read).
    block_input: Vec<u8>,
    activations: Vec<u8>,
    state: StepState,
}

impl NativeRun {
    /// Starts from `input` committed under `blind`, with the model's `salt`.
    pub fn start(block: BlockSpec, input: Vec<u8>, blind: F, salt: F) -> Result<Self, QuantError> {
        block.check()?;
        if input.len() != block.num_inputs() {
            return Err(QuantError::WrongLength {
                what: "input activations",
                expected: block.num_inputs(),
                got: input.len(),
            });
        }
        check_activations(&input)?;
        let state = StepState::initial(activation_commitment_native(&input, block.input_layout(), blind));
        let updates = block.updates();
        Ok(Self { block, updates, salt, block_input: input.clone(), activations: input, state })
    }

    /// The layer of its block the next [`Self::apply`] applies.
    fn stage(&self) -> usize {
        (self.state.layer % self.block.num_stages() as u64) as usize
    }

    /// Applies the next layer; the state's activations are committed under `blind_out`
    /// (a commitment the circuit makes only at the end of a block).
    pub fn apply(&mut self, layer_weights: &LayerWeights, blind_out: F) -> Result<(), QuantError> {
        let stage = self.stage();
        let out = layer_native(&self.block, stage, (&self.activations, &self.block_input), layer_weights)?;
        let w = layer_weights;
        let last = stage + 1 == self.block.num_stages();
        let layout =
            if last { self.block.output_layout() } else { Layout::whole(self.block.stages[stage].output_dims()) };
        self.state = StepState {
            layer: self.state.layer + 1,
            model: model_update_native(self.state.model, &self.updates[stage], self.salt, &w.weights, &w.bias),
            activations: activation_commitment_native(&out, layout, blind_out),
        };
        if last {
            self.block_input.clone_from(&out);
        }
        self.activations = out;
        Ok(())
    }

    /// Current activations.
    pub fn activations(&self) -> &[u8] {
        &self.activations
    }

    /// Current IVC state.
    pub fn state(&self) -> StepState {
        self.state
    }
}

/// Output activations of a whole stack of blocks of one spec (no commitments: the integer
/// maths only); `layers` holds whole blocks, each layer's shortcut reading its block's input.
pub fn run_native<'a>(
    block: &BlockSpec,
    input: &[u8],
    layers: impl IntoIterator<Item = &'a LayerWeights>,
) -> Result<Vec<u8>, QuantError> {
    check_activations(input)?;
    let n = block.num_stages();
    let (mut x, mut xb) = (input.to_vec(), input.to_vec());
    for (i, w) in layers.into_iter().enumerate() {
        x = layer_native(block, i % n, (&x, &xb), w)?;
        if i % n == n - 1 {
            xb.clone_from(&x);
        }
    }
    Ok(x)
}

/// The model commitment of a whole model: the running commitment after absorbing every
/// layer (its spec digest and its parameters, in order) under the model's `salt`,
/// starting from the public [`model_start`].
pub fn model_commitment<P: std::borrow::Borrow<LayerWeights>>(
    salt: F,
    layers: impl IntoIterator<Item = (LayerUpdate, P)>,
) -> F {
    layers.into_iter().fold(model_start(), |acc, (update, p)| {
        model_update_native(acc, &update, salt, &p.borrow().weights, &p.borrow().bias)
    })
}
