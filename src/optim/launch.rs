//! The device launcher of the SGD step (`kernels/optim.cu`).

use super::SgdConfig;
use crate::cuda::exec::{Arg, Exec};
use crate::cuda::launch::{expect_len, fits, flat, non_empty};
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
    expect_len(e, OP, "gradient", grad, len)?;
    let buf = match (cfg.momentum > 0.0, buf) {
        (true, Some(b)) => {
            expect_len(e, OP, "momentum buffer", b, len)?;
            Arg::Out(b)
        }
        (false, None) => Arg::Null,
        (true, None) => return Err(Error::invalid(OP, "momentum needs a buffer")),
        (false, Some(_)) => return Err(Error::invalid(OP, "a momentum buffer was given without momentum")),
    };
    let p = SgdParams {
        len: len as i32,
        nesterov: cfg.nesterov as i32,
        first: first as i32,
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    // SAFETY: sgd_step(SgdParams, grad, param, buf) over len elements, lengths checked above.
    unsafe { e.launch("sgd_step", flat(len), &p, &mut [Arg::In(grad), Arg::Out(param), buf]) }
}
