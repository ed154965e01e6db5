//! iekd: Inheritance and Exploration Knowledge Distillation for convolutional networks.
//!
//! Layers, bottom up, each using only those below it: [`cuda`] and the CPU helpers (the
//! backends), [`tensor`] (runtime-shaped f32 tensors, their [`device`] and the [`autograd`]
//! tape), [`ops`] (every op's forward, backward, CPU path and device launcher, with its naive f64
//! reference and its gradient and parity cases), [`nn`] and [`optim`], then [`data`], [`train`],
//! [`distill`], [`cka`] and [`checkpoint`], and on top [`verify`] and [`bench`](mod@bench).

pub mod alloc;
pub mod bench;
pub mod checkpoint;
pub mod cka;
pub(crate) mod cpu;
pub mod cuda;
pub mod data;
pub mod distill;
pub mod error;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod tensor;
pub mod train;
pub mod verify;

pub use error::{Error, Result};
pub use tensor::Tensor;
pub use tensor::device::Device;
pub use tensor::{autograd, device};
