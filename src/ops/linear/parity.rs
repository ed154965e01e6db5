//! Parity of the linear layer's GEMM kernel, in its three products, with the CPU path (`cpu`).

use super::cpu;
use super::launch::{LinearProduct, linear};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Forward, backward data and backward weight at sizes 1, a classifier head and tile +- 1.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [n, k, m]: sizes 1; a classifier head (64 -> 10, batch 3); tile +- 1 in every dimension.
    for [n, k, m] in [[1, 1, 1], [3, 64, 10], [65, 17, 63], [63, 65, 64]] {
        let sizes = cpu::Sizes { n, k, m };
        let case = format!("x[{n},{k}] w[{m},{k}]");
        let (x, w, b, dy) = (cx.normal(n * k), cx.normal(m * k), cx.normal(m), cx.normal(n * m));
        let (xb, wb, bb, dyb) = (cx.up(&x)?, cx.up(&w)?, cx.up(&b)?, cx.up(&dy)?);
        let y = linear(cx.e, LinearProduct::Forward, [n, k, m], &xb, &wb, Some(&bb))?;
        cx.compare("gemm (linear forward)", &case, &y, &cpu::forward(&sizes, &x, &w, Some(&b)), Tol::dot(k))?;
        let dx = linear(cx.e, LinearProduct::BackwardData, [n, k, m], &dyb, &wb, None)?;
        cx.compare("gemm (linear dx)", &case, &dx, &cpu::backward_data(&sizes, &dy, &w), Tol::dot(m))?;
        let dw = linear(cx.e, LinearProduct::BackwardWeight, [n, k, m], &dyb, &xb, None)?;
        cx.compare("gemm (linear dw)", &case, &dw, &cpu::backward_weight(&sizes, &x, &dy), Tol::dot(n))?;
    }
    Ok(())
}
