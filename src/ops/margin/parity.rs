//! Parity of the margin-ReLU kernels with the CPU path (`cpu`).

use super::cpu;
use super::launch::{margin_relu_backward, margin_relu_forward};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Forward and backward on one element to 8x8 maps of 65 channels; both are selections, so the
/// results are exact.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [pixels, channels]: sizes 1; 3 channels; a block + 1 elements; 8x8 maps of 65 channels.
    for dims @ [rows, c] in [[1, 1], [50, 3], [257, 1], [2 * 64, 65]] {
        let case = format!("x[{rows},{c}]");
        let (x, m, dy) = (cx.normal(rows * c), cx.normal(c), cx.normal(rows * c));
        let (xb, mb) = (cx.up(&x)?, cx.up(&m)?);
        let got = margin_relu_forward(cx.e, dims, &xb, &mb)?;
        cx.compare("margin_relu_forward", &case, &got, &cpu::forward(&x, &m), Tol::EXACT)?;
        let got = margin_relu_backward(cx.e, dims, [&xb, &mb, &cx.up(&dy)?])?;
        cx.compare("margin_relu_backward", &case, &got, &cpu::backward(&x, &m, &dy), Tol::EXACT)?;
    }
    Ok(())
}
