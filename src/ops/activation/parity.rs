//! Parity of the LeakyReLU kernels (ReLU is slope 0) with the CPU path (`cpu`).

use super::cpu;
use super::launch::{clamp_backward, clamp_forward, leaky_relu_backward, leaky_relu_forward};
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

/// ReLU6's clamp kernels at lengths 1, a block - 1, a block + 1 and several blocks, on N(0, 16)
/// inputs (both kinks crossed), bit for bit.
pub fn run_clamp<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for len in [1, 255, 257, 5000] {
        let x: Vec<f32> = cx.normal(len).iter().map(|v| 4.0 * v).collect();
        let dy = cx.normal(len);
        let (xb, dyb) = (cx.up(&x)?, cx.up(&dy)?);
        let case = format!("len {len} top 6");
        let got = clamp_forward(cx.e, 6.0, &xb)?;
        cx.compare("clamp_forward", &case, &got, &cpu::clamp_forward(&x, 6.0), Tol::EXACT)?;
        let got = clamp_backward(cx.e, 6.0, &xb, &dyb)?;
        cx.compare("clamp_backward", &case, &got, &cpu::clamp_backward(&x, &dy, 6.0), Tol::EXACT)?;
    }
    Ok(())
}
