//! The device launcher of the SGD step (`kernels/optim.cu`).

use super::SgdConfig;
use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{fits, flat, non_empty};
use crate::cuda::params::SgdParams;
use crate::error::{Error, Result};

/// One SGD update of `param` by `grad` in place, with the momentum buffer `buf` when
/// `cfg.momentum > 0` (overwritten when `first`): `crate::optim::cpu::step_plain` and
/// `step_momentum`.
pub fn sgd_step<E: Exec>(
    e: &E,
    cfg: &SgdConfig,
    first: bool,
    grad: &E::Buf<f32>,
    param: &mut E::Buf<f32>,
    buf: Option<&mut E::Buf<f32>>,
) -> Result<()> {
    const OP: &str = "cuda sgd_step";
    let len = e.len(param);
    non_empty(OP, "parameter", len)?;
    fits(OP, &[("elements", len)])?;
    match (cfg.momentum > 0.0, buf.is_some()) {
        (true, false) => return Err(Error::invalid(OP, "momentum needs a buffer")),
        (false, true) => return Err(Error::invalid(OP, "a momentum buffer was given without momentum")),
        _ => {}
    }
    let p = SgdParams {
        len: len as i32,
        nesterov: cfg.nesterov as i32,
        first: first as i32,
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    kernels::sgd_step(e, flat(len), &p, grad, param, buf)
}
