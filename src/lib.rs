//! iekd: Inheritance and Exploration Knowledge Distillation for convolutional networks.

pub mod data;
pub mod error;

pub use error::{Error, Result};
