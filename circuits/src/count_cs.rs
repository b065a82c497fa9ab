//! A constraint system that only counts: what the constraint accounting needs, without
//! holding a shape. Synthesizing a 3M-constraint candidate tile into a shape system keeps
//! every linear combination (gigabytes: the planner measures many candidates); counting
//! keeps two integers and never even builds the combinations.

use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, Index, LinearCombination, SynthesisError, Variable};
use nova_snark::traits::circuit::StepCircuit;

/// Synthesizes `step` into `cs` on a state of zeros of its arity.
fn synthesize_blank<CS: ConstraintSystem<F>, C: StepCircuit<F>>(cs: &mut CS, step: &C) -> Result<(), SynthesisError> {
    let z = (0..step.arity())
        .map(|i| AllocatedNum::alloc(cs.namespace(|| format!("z{i}")), || Ok(F::ZERO)))
        .collect::<Result<Vec<_>, _>>()?;
    step.synthesize(cs, &z).map(|_| ())
}

/// `step` synthesized on a blank state, counted.
pub fn count<C: StepCircuit<F>>(step: &C) -> Result<CountCS, SynthesisError> {
    let mut cs = CountCS::new();
    synthesize_blank(&mut cs, step)?;
    Ok(cs)
}

/// Counts constraints and auxiliary variables as a shape system would (same numbering).
#[derive(Debug, Default)]
pub struct CountCS {
    constraints: usize,
    aux: usize,
    inputs: usize,
}

impl CountCS {
    /// An empty system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Constraints enforced so far.
    pub fn num_constraints(&self) -> usize {
        self.constraints
    }

    /// Auxiliary variables allocated so far.
    pub fn num_aux(&self) -> usize {
        self.aux
    }
}

impl ConstraintSystem<F> for CountCS {
    type Root = Self;

    fn alloc<FN, A, AR>(&mut self, _annotation: A, _f: FN) -> Result<Variable, SynthesisError>
    where
        FN: FnOnce() -> Result<F, SynthesisError>,
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        self.aux += 1;
        Ok(Variable::new_unchecked(Index::Aux(self.aux - 1)))
    }

    fn alloc_input<FN, A, AR>(&mut self, _annotation: A, _f: FN) -> Result<Variable, SynthesisError>
    where
        FN: FnOnce() -> Result<F, SynthesisError>,
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        self.inputs += 1;
        Ok(Variable::new_unchecked(Index::Input(self.inputs)))
    }

    fn enforce<A, AR, LA, LB, LC>(&mut self, _annotation: A, _a: LA, _b: LB, _c: LC)
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
        LA: FnOnce(LinearCombination<F>) -> LinearCombination<F>,
        LB: FnOnce(LinearCombination<F>) -> LinearCombination<F>,
        LC: FnOnce(LinearCombination<F>) -> LinearCombination<F>,
    {
        self.constraints += 1;
    }

    fn push_namespace<NR, N>(&mut self, _name_fn: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn pop_namespace(&mut self) {}

    fn get_root(&mut self) -> &mut Self::Root {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gadgets::{conv::ConvShape, linear::LinearShape};
    use crate::layer::{BlockSpec, LayerSpec, LayerStep, Links};
    use crate::quant::RequantSpec;
    use crate::step::{grid_spec, group_spec, tile_spec};
    use crate::tile::{GroupStep, TileStep};
    use nova_snark::frontend::shape_cs::ShapeCS;
    use nova_snark::provider::PallasEngine;

    /// (constraints, aux) counted, and as a shape system holds them.
    fn both(step: &impl StepCircuit<F>) -> ((usize, usize), (usize, usize)) {
        let count = count(step).unwrap();
        let mut shape = ShapeCS::<PallasEngine>::new();
        synthesize_blank(&mut shape, step).unwrap();
        ((count.num_constraints(), count.num_aux()), (shape.num_constraints(), shape.num_aux()))
    }

    #[test]
    fn counts_what_a_shape_system_holds() {
        let rq = RequantSpec::new(6, 20).unwrap();
        let small = LayerSpec::new(LinearShape::Conv(ConvShape::same(3, 3, 8, 6, 3)), rq);
        // 16 output channels of 576 weights: four model-commitment chunks of four channels
        let wide = LayerSpec::new(LinearShape::Conv(ConvShape::same(64, 16, 4, 4, 3)), rq);
        let layer = LayerStep::blank(BlockSpec::layer(small), 2);
        let rows =
            TileStep::blank(tile_spec(&BlockSpec::layer(small).with_row_links([true, true]), 2).unwrap()).unwrap();
        let grid = grid_spec(&BlockSpec::layer(wide).with_links([Links::Rows, Links::RowGroups(4)]), 4).unwrap();
        let group = group_spec(&BlockSpec::layer(wide).with_links([Links::Rows, Links::Channels(4)]), 4).unwrap();
        let cases =
            [both(&layer), both(&rows), both(&TileStep::blank(grid).unwrap()), both(&GroupStep::blank(group).unwrap())];
        for (counted, held) in cases {
            assert_eq!(counted, held);
            assert!(counted.0 > 1000, "{counted:?}");
        }
    }
}
