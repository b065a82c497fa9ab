//! Multiplexed segments: the step circuits of several segments in one Nova step circuit,
//! so that a network whose blocks differ in shape folds into one IVC proof and is
//! compressed once (`nova-snark` has no non-uniform IVC).
//!
//! # The circuit
//! A [`MuxStep`] has one *slot* per distinct step circuit (a segment's block, whole or
//! tiled: a [`Step`]). Every Nova step synthesizes every slot; a one-hot selector vector
//! `s` (witness: `s_j·s_j = s_j` and `Σ s_j = 1`) says which slot is the step. Slot `j`
//! reads a private copy `z_j` of the public state, tied to it only where selected
//! (`s_j·(z_j[k] − z[k]) = 0`), so an unselected slot runs on a fixed witness of its own
//! (its blank step: zero input and weights, and the state that blank opens) and never
//! touches the state. The next state is `Σ_j s_j·out_j`, slot by slot (one product each).
//! A whole-block slot (state arity 3) requires the tile slots of `z` to be zero
//! (`s_j·z[k] = 0`) and contributes zeros to them: it runs only between layers.
//!
//! # The schedule
//! The state ([`MuxState`]) is a tile state ([`TileState`]) and a ninth slot, the
//! schedule: every step replaces it with `H(tag, schedule, Σ_j s_j·(j + 1))`. The verifier
//! recomputes the chain of its plan (which slot runs at each step, [`schedule_native`])
//! from 0 and requires the last state's. Without it, the order of the slots would be bound
//! only by the model commitment, which is salted and opaque to the verifier: a proof could
//! run the statement's blocks in another order or number.
//!
//! # Why it is sound
//! Take a step with a satisfying witness. The selectors are bits summing to one, so
//! exactly one slot `a` has `s_a = 1`: its private state is the public one, the next
//! state is its output (every other output is multiplied by 0), and the schedule absorbs
//! `a + 1`. So the step is a valid step of slot `a`'s own circuit from `z` to `z'` (the
//! first eight slots; the first three for a whole-block slot, the rest zero on both
//! sides), and everything that circuit proves holds. By induction over the steps, and
//! collision resistance of Poseidon, a valid IVC proof from `z0` (schedule 0) to `zN`
//! whose schedule is the verifier's chain is a run of the slots' own circuits in the
//! verifier's order, each from the state the previous one left. Runs start at states
//! between layers: `z0` is one (the verifier fixes it), a whole-block slot leaves one,
//! and a tiled slot's circuit advances and wraps its tile index itself and zeroes the tile
//! slots with its last tile, so a run of `tiles × blocks` steps from a boundary ends at
//! one (a run cut short or stretched changes the schedule).
//!
//! Hiding: the schedule is a function of the public plan; the other slots are the
//! slots' own (zero between layers).
//!
//! Cost: the sum of the slots' circuits, plus about `2·arity + 1` constraints per slot,
//! nine for the next state and one short hash (~300) per step.

use crate::commit::{activation_commitment_native, domain_tag, hash, hash_native};
use crate::layer::BlockSpec;
use crate::quant::QuantError;
use crate::state::{StepState, ARITY};
use crate::step::{Step, Tiling};
use crate::tile::terms::{alloc_term, product, Term};
use crate::tile::{TileState, TILE_ARITY};
use crate::F;
use ff::Field;
use nova_snark::frontend::gadgets::poseidon::Elt;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use std::sync::Arc;

/// Domain tag of the schedule chain.
pub const TAG_SCHEDULE: u64 = 0xf01d_0016;
/// Number of field elements in a multiplexed segment's IVC state.
pub const MUX_ARITY: usize = TILE_ARITY + 1;
/// Most slots in one multiplexed step circuit.
pub const MAX_SLOTS: usize = 64;

/// The schedule after `prev` with slot `slot` run for one step.
pub fn schedule_native(prev: F, slot: usize) -> F {
    hash_native(&[domain_tag(TAG_SCHEDULE, 2), prev, F::from(slot as u64 + 1)])
}

/// The schedule of a whole plan (slot indices, one per step) from 0.
pub fn schedule_of(slots: impl IntoIterator<Item = usize>) -> F {
    slots.into_iter().fold(F::ZERO, schedule_native)
}

/// The IVC state of a multiplexed segment, natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MuxState {
    /// The state of the slots' circuits (tile slots zero between layers).
    pub tile: TileState,
    /// The schedule so far.
    pub schedule: F,
}

impl MuxState {
    /// The state between layers in `base`, with the schedule `schedule`.
    pub fn boundary(base: StepState, schedule: F) -> Self {
        Self { tile: TileState::boundary(base), schedule }
    }

    /// The state as Nova's `z` vector.
    pub fn to_vec(&self) -> Vec<F> {
        let mut z = self.tile.to_vec();
        z.push(self.schedule);
        z
    }

    /// The state from Nova's `z` vector; `None` unless it has [`MUX_ARITY`] elements and
    /// counters that fit 64 bits.
    pub fn from_z(z: &[F]) -> Option<Self> {
        let (schedule, tile) = z.split_last()?;
        (z.len() == MUX_ARITY).then_some(())?;
        Some(Self { tile: TileState::from_z(tile)?, schedule: *schedule })
    }
}

/// One slot: a blank step of its shape (a valid witness on zero input and weights) and
/// the state that blank opens, which it runs on while another slot is selected.
#[derive(Clone, Debug)]
struct Slot {
    blank: Step,
    opens: Vec<F>,
}

/// The slots of a multiplexed step circuit, built once per circuit (cheap to share).
#[derive(Clone, Debug)]
pub struct MuxSlots(Arc<[Slot]>);

impl MuxSlots {
    /// The slots of the given shapes, in order: each a block, its layers per step and its
    /// tiling, as a segment's architecture says. GPT steps are not multiplexed.
    pub fn new(shapes: &[(BlockSpec, usize, Option<Tiling>)]) -> Result<Self, QuantError> {
        if shapes.is_empty() || shapes.len() > MAX_SLOTS {
            return Err(QuantError::BadSpec(format!("{} slots (1 to {MAX_SLOTS})", shapes.len())));
        }
        let slots = shapes
            .iter()
            .map(|(block, layers_per_step, tiling)| {
                let blank = Step::blank(block, *layers_per_step, *tiling)?;
                let layout = block.input_layout();
                let input = vec![0; layout.len()];
                let base = StepState {
                    layer: 0,
                    model: F::ZERO,
                    activations: activation_commitment_native(&input, layout, F::ZERO),
                };
                let opens = match tiling {
                    None => base.to_vec(),
                    Some(_) => TileState::boundary(base).to_vec(),
                };
                Ok(Slot { blank, opens })
            })
            .collect::<Result<Vec<_>, QuantError>>()?;
        Ok(Self(slots.into()))
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The state slot `j`'s blank opens (what it runs on while not selected).
    ///
    /// # Panics
    /// If there is no slot `j`.
    pub fn opens(&self, j: usize) -> &[F] {
        &self.0[j].opens
    }

    /// Whether there are none (never: [`Self::new`] refuses).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One Nova step of a multiplexed segment: one slot's step, every other slot blank.
#[derive(Clone, Debug)]
pub struct MuxStep {
    slots: MuxSlots,
    /// Per slot: its step, when not its blank.
    steps: Vec<Option<Step>>,
    /// Per slot: the state its step opens, when not the public one.
    inputs: Vec<Option<Vec<F>>>,
    selectors: Vec<F>,
    active: usize,
}

impl MuxStep {
    /// Slot `active` running `step` (a step of that slot's shape), every other slot blank.
    pub fn new(slots: &MuxSlots, active: usize, step: Step) -> Result<Self, QuantError> {
        let slot =
            slots.0.get(active).ok_or_else(|| QuantError::BadSpec(format!("slot {active} of {}", slots.len())))?;
        if step.arity() != slot.blank.arity() || std::mem::discriminant(&step) != std::mem::discriminant(&slot.blank) {
            return Err(QuantError::BadSpec(format!("a step of another shape in slot {active}")));
        }
        Ok(Self::selecting(slots, active, Some(step)))
    }

    /// Every slot blank, slot 0 selected: for parameter setup.
    pub fn blank(slots: &MuxSlots) -> Self {
        Self::selecting(slots, 0, None)
    }

    /// Slot `active` selected on the public state running `step` (`None`: its blank),
    /// every other slot blank on the state its blank opens.
    fn selecting(slots: &MuxSlots, active: usize, step: Option<Step>) -> Self {
        let n = slots.len();
        let mut steps = vec![None; n];
        steps[active] = step;
        let inputs = (0..n).map(|j| (j != active).then(|| slots.0[j].opens.clone())).collect();
        let selectors = (0..n).map(|j| if j == active { F::ONE } else { F::ZERO }).collect();
        Self { slots: slots.clone(), steps, inputs, selectors, active }
    }

    /// Explicit selectors, slot steps and slot states (`None`: the blank; the public
    /// state), unchecked (wrong-witness tests).
    pub fn unchecked(
        slots: &MuxSlots,
        selectors: Vec<F>,
        steps: Vec<Option<Step>>,
        inputs: Vec<Option<Vec<F>>>,
    ) -> Self {
        Self { slots: slots.clone(), steps, inputs, selectors, active: 0 }
    }

    /// The selected slot.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The selected slot's step.
    pub fn step(&self) -> &Step {
        self.steps[self.active].as_ref().unwrap_or(&self.slots.0[self.active].blank)
    }

    fn slot_step(&self, j: usize) -> &Step {
        self.steps.get(j).and_then(Option::as_ref).unwrap_or(&self.slots.0[j].blank)
    }
}

impl StepCircuit<F> for MuxStep {
    fn arity(&self) -> usize {
        MUX_ARITY
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let [state @ .., schedule] = z else { return Err(SynthesisError::Unsatisfiable("empty state".into())) };
        if z.len() != MUX_ARITY {
            return Err(SynthesisError::Unsatisfiable(format!("state of {} elements", z.len())));
        }
        let n = self.slots.len();
        let mut selected = LinearCombination::zero();
        let mut code = Term(LinearCombination::zero(), Some(F::ZERO));
        let mut next: Vec<Term> = (0..TILE_ARITY).map(|_| Term(LinearCombination::zero(), Some(F::ZERO))).collect();
        for j in 0..n {
            let mut cs = cs.namespace(|| format!("slot {j}"));
            let s_value = self.selectors.get(j).copied();
            let s =
                AllocatedNum::alloc(cs.namespace(|| "selector"), || s_value.ok_or(SynthesisError::AssignmentMissing))?;
            cs.enforce(
                || "selector is a bit",
                |l| l + s.get_variable(),
                |l| l + s.get_variable(),
                |l| l + s.get_variable(),
            );
            let s = Term::var(&s);
            selected = selected + &s.0;
            code = code.plus(&s, F::from(j as u64 + 1));
            let step = self.slot_step(j);
            let arity = step.arity();
            if arity != ARITY && arity != TILE_ARITY {
                return Err(SynthesisError::Unsatisfiable(format!("slot {j}: a state of {arity} elements")));
            }
            let own = self.inputs.get(j).cloned().flatten();
            let mut z_j = Vec::with_capacity(arity);
            for (k, public) in state.iter().enumerate() {
                let public = Term::var(public);
                if k < arity {
                    let value = own.as_ref().map_or(public.1, |v| v.get(k).copied());
                    let mine = AllocatedNum::alloc(cs.namespace(|| format!("z{k}")), || {
                        value.ok_or(SynthesisError::AssignmentMissing)
                    })?;
                    let diff = Term::var(&mine).plus(&public, -F::ONE);
                    cs.enforce(|| format!("z{k} if selected"), |_| s.0.clone(), |_| diff.0, |l| l);
                    z_j.push(mine);
                } else {
                    // a whole-block slot runs only between layers
                    cs.enforce(|| format!("z{k} zero if selected"), |_| s.0.clone(), |_| public.0, |l| l);
                }
            }
            let out = step.synthesize(&mut cs.namespace(|| "step"), &z_j)?;
            for (k, o) in out.iter().enumerate() {
                let p = product(&mut cs.namespace(|| format!("out{k}")), &s, &Term::var(o))?;
                next[k] = next[k].plus(&Term::var(&p), F::ONE);
            }
        }
        cs.enforce(|| "one slot selected", |_| selected, |l| l + CS::one(), |l| l + CS::one());
        let mut out = next
            .into_iter()
            .enumerate()
            .map(|(k, t)| alloc_term(&mut cs.namespace(|| format!("next z{k}")), &t))
            .collect::<Result<Vec<_>, _>>()?;
        let code = alloc_term(&mut cs.namespace(|| "slot code"), &code)?;
        let tag = Elt::num_from_fr::<CS>(domain_tag(TAG_SCHEDULE, 2));
        let items = [tag, Elt::Allocated(schedule.clone()), Elt::Allocated(code)];
        out.push(hash(&mut cs.namespace(|| "schedule"), &items)?);
        Ok(out)
    }
}

impl MuxStep {
    /// The state after this step, computed natively from the state before it (honest
    /// steps: the selected slot's transition, the schedule advanced).
    pub fn next_state(&self, z: &MuxState) -> MuxState {
        let tile = match self.step() {
            Step::Layer(s) => TileState::boundary(s.next_state(&z.tile.base)),
            tiled => tiled.tile_transition(&z.tile).map_or(z.tile, |(_, _, next)| next),
        };
        MuxState { tile, schedule: schedule_native(z.schedule, self.active) }
    }
}
