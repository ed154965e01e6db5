//! Every op: forward on the tensors, the backward rule recorded on the tape, shape checks.

pub mod activation;
pub mod arith;
pub mod batchnorm;
pub mod channels;
pub mod conv2d;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod shape;

pub use conv2d::{conv2d, conv_transpose2d};
