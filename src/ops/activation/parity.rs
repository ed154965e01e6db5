//! Parity of the LeakyReLU kernels (ReLU is slope 0) with the CPU path (`cpu`).

use super::cpu;
use super::launch::{leaky_relu_backward, leaky_relu_forward};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Forward and backward at slopes 0 and 0.1 on `x` with the upstream gradient `dy` (of the same
/// length), bit for bit.
pub fn check<E: Exec>(cx: &mut Ctx<'_, E>, x: &[f32], dy: &[f32]) -> Result<()> {
    let (xb, dyb) = (cx.up(x)?, cx.up(dy)?);
    for slope in [0.0, 0.1] {
        let case = format!("len {} slope {slope}", x.len());
        let got = leaky_relu_forward(cx.e, slope, &xb)?;
        cx.compare("leaky_relu_forward", &case, &got, &cpu::forward(x, slope), Tol::EXACT)?;
        let got = leaky_relu_backward(cx.e, slope, &xb, &dyb)?;
        cx.compare("leaky_relu_backward", &case, &got, &cpu::backward(x, dy, slope), Tol::EXACT)?;
    }
    Ok(())
}
