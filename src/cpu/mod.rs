//! Shared pieces of the CPU (rayon) backend.

pub(crate) mod direct;
pub(crate) mod matmul;
pub(crate) mod reduce;
pub(crate) mod scratch;
