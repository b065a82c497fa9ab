//! The baseline of fold-ml's per-fold cost: a step circuit with the same state as
//! [`crate::layer::LayerStep`] and `n` constraints of pure multiplication (a squaring
//! chain), so that "fold-ml per fold ÷ bare Nova per fold" compares equal constraint counts
//! under the same Nova overhead.

use crate::state::ARITY;
use crate::F;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;

/// `n` chained squarings of the first state element; the other elements pass through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SquaringChain {
    /// Number of constraints.
    pub n: usize,
}

impl StepCircuit<F> for SquaringChain {
    fn arity(&self) -> usize {
        ARITY
    }

    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        let mut x = z[0].clone();
        for i in 0..self.n {
            x = x.square(cs.namespace(|| format!("square{i}")))?;
        }
        let mut out = z.to_vec();
        out[0] = x;
        Ok(out)
    }
}
