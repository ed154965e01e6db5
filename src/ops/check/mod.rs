//! The op-testing kit: what each op's checks are written with. An op folder's `gradcheck.rs` lists
//! its [`gradcheck::Case`]s (inputs, the op on tensors, its f64 reference) and its `parity.rs`
//! compares its kernels with its CPU path through a [`parity::Ctx`]. The runners, the reports and
//! the checks of whole networks, steps and recipes are in `iekd::verify`, which uses these.

pub mod gradcheck;
pub mod parity;
