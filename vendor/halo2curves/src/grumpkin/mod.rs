mod curve;

pub use curve::*;

pub use crate::bn256::{Fq as Fr, Fr as Fq};
