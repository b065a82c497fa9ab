//! Linear combinations with their values, and the few gadgets the tile circuit builds from
//! them (products, zero tests, selections), one constraint each unless stated.

use crate::F;
use ff::Field;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError};

/// A linear combination with its value (absent during setup).
#[derive(Clone)]
pub(crate) struct Term(pub(crate) LinearCombination<F>, pub(crate) Option<F>);

impl Term {
    pub(crate) fn var(n: &AllocatedNum<F>) -> Self {
        Self(LinearCombination::zero() + n.get_variable(), n.get_value())
    }

    pub(crate) fn constant<CS: ConstraintSystem<F>>(c: F) -> Self {
        Self(LinearCombination::zero() + (c, CS::one()), Some(c))
    }

    pub(crate) fn plus(&self, other: &Term, coeff: F) -> Self {
        Self(self.0.clone() + (coeff, &other.0), self.1.zip(other.1).map(|(a, b)| a + coeff * b))
    }

    pub(crate) fn scaled(&self, c: F) -> Self {
        Self(LinearCombination::zero() + (c, &self.0), self.1.map(|v| v * c))
    }
}

/// Allocates `a·b` (one constraint).
pub(crate) fn product<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    a: &Term,
    b: &Term,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let p = AllocatedNum::alloc(cs.namespace(|| "product"), || {
        a.1.zip(b.1).map(|(x, y)| x * y).ok_or(SynthesisError::AssignmentMissing)
    })?;
    cs.enforce(|| "a·b", |_| a.0.clone(), |_| b.0.clone(), |lc| lc + p.get_variable());
    Ok(p)
}

/// `1` if `x = 0`, else `0`, as a boolean variable (two constraints).
pub(crate) fn is_zero<CS: ConstraintSystem<F>>(cs: &mut CS, x: &Term) -> Result<AllocatedNum<F>, SynthesisError> {
    let inv = AllocatedNum::alloc(cs.namespace(|| "inverse"), || {
        x.1.map(|v| v.invert().unwrap_or(F::ZERO)).ok_or(SynthesisError::AssignmentMissing)
    })?;
    let out = AllocatedNum::alloc(cs.namespace(|| "is zero"), || {
        x.1.map(|v| if v.is_zero_vartime() { F::ONE } else { F::ZERO }).ok_or(SynthesisError::AssignmentMissing)
    })?;
    cs.enforce(
        || "x·inv = 1 - out",
        |_| x.0.clone(),
        |lc| lc + inv.get_variable(),
        |lc| lc + CS::one() - out.get_variable(),
    );
    cs.enforce(|| "x·out = 0", |_| x.0.clone(), |lc| lc + out.get_variable(), |lc| lc);
    Ok(out)
}

/// `1` if `t = k`, else `0`, as a boolean variable (two constraints).
pub(crate) fn equals<CS: ConstraintSystem<F>>(cs: &mut CS, t: &Term, k: usize) -> Result<Term, SynthesisError> {
    let at = t.plus(&Term::constant::<CS>(F::from(k as u64)), -F::ONE);
    Ok(Term::var(&is_zero(cs, &at)?))
}

/// `old + flag·(new - old)` allocated (one constraint); `flag` must be boolean (or a sum
/// of exclusive booleans).
pub(crate) fn select<CS: ConstraintSystem<F>>(
    cs: &mut CS,
    flag: &Term,
    new: &Term,
    old: &Term,
) -> Result<AllocatedNum<F>, SynthesisError> {
    let diff = new.plus(old, -F::ONE);
    let p = product(cs, flag, &diff)?;
    let out = old.plus(&Term::var(&p), F::ONE);
    let alloc = AllocatedNum::alloc(cs.namespace(|| "selected"), || out.1.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce(|| "selection", |lc| lc + CS::one(), |_| out.0.clone(), |lc| lc + alloc.get_variable());
    Ok(alloc)
}

/// Constrains `flag·(a - b) = 0` (one constraint).
pub(crate) fn equal_if<CS: ConstraintSystem<F>>(cs: &mut CS, flag: &Term, a: &Term, b: &Term) {
    let diff = a.plus(b, -F::ONE);
    cs.enforce(|| "equal if", |_| flag.0.clone(), |_| diff.0, |lc| lc);
}

/// Allocates a term's value, constrained equal to it (one constraint).
pub(crate) fn alloc_term<CS: ConstraintSystem<F>>(cs: &mut CS, t: &Term) -> Result<AllocatedNum<F>, SynthesisError> {
    let v = AllocatedNum::alloc(cs.namespace(|| "value"), || t.1.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce(|| "value is the term", |lc| lc + CS::one(), |_| t.0.clone(), |lc| lc + v.get_variable());
    Ok(v)
}
