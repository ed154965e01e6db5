//! iekd: Inheritance and Exploration Knowledge Distillation for convolutional networks.
//!
//! Layers, bottom up: [`tensor`] (runtime-shaped f32 tensors), [`ops`] (forward and backward of
//! every op), [`autograd`] (the tape), [`reference`] (naive f64 versions of every op), and on top
//! [`verify`] (the fast paths checked against the reference, and the kernels against the CPU).

pub mod alloc;
pub mod autograd;
pub mod bench;
pub mod checkpoint;
pub mod cka;
pub(crate) mod cpu;
pub mod cuda;
pub mod data;
pub mod device;
pub mod distill;
pub mod error;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod reference;
pub mod tensor;
pub mod train;
pub mod verify;

pub use device::Device;
pub use error::{Error, Result};
pub use tensor::Tensor;
