//! Gadgets, each beside its native twin (`*_native` or an honest-witness constructor).

pub mod bits;
pub mod commit;
pub mod conv;
pub mod dense;
pub mod dot;
pub mod elementwise;
pub mod gather;
pub mod gelu;
pub mod layernorm;
pub mod linear;
pub mod matmul;
pub mod pack;
pub mod pool;
pub mod requant;
pub mod softmax;
pub mod view;
