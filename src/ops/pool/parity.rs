//! Parity of the average-pooling kernels with the CPU path (`cpu`).

use super::cpu;
use super::launch::{avg_pool_backward, avg_pool_forward};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Elementwise arithmetic in another order.
const ELEMENTWISE: Tol = Tol { atol: 1e-6, rtol: 1e-5 };
/// Sums over the pixels in another order.
const REDUCTION: Tol = Tol { atol: 1e-4, rtol: 1e-4 };

/// Forward and backward on maps of one pixel to 81 and one channel to 64.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [n, pixels, c]: sizes 1; 9x9 maps of 3 channels; 8x8 maps of 33 channels; 65 pixels.
    for dims @ [n, pixels, c] in [[1, 1, 1], [2, 81, 3], [3, 64, 33], [1, 65, 64]] {
        let case = format!("x[{n},{pixels},{c}]");
        let (x, dy) = (cx.normal(n * pixels * c), cx.normal(n * c));
        let got = avg_pool_forward(cx.e, dims, &cx.up(&x)?)?;
        cx.compare("avg_pool_forward", &case, &got, &cpu::forward(&x, pixels, c), REDUCTION)?;
        let got = avg_pool_backward(cx.e, dims, &cx.up(&dy)?)?;
        cx.compare("avg_pool_backward", &case, &got, &cpu::backward(&dy, pixels, c), ELEMENTWISE)?;
    }
    Ok(())
}
