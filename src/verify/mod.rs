//! Verification, the top layer beside the benchmarks: it uses everything below and nothing uses
//! it but the command line and the tests.
//!
//! - [`gradcheck`]: every op's forward against its naive f64 reference and its gradient against
//!   central finite differences, through the tape;
//! - [`parity`]: every CUDA kernel, a whole training step and every distillation recipe on a
//!   device (a GPU or the emulation) against the rayon CPU path, with stated tolerances.
//!
//! The cases of each op live in its folder, written with the op-testing kit
//! [`crate::ops::check`]; here are the runners, the reports and the checks of whole networks,
//! steps and recipes.

pub mod gradcheck;
pub mod parity;
