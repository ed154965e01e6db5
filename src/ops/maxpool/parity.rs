//! Parity of the max-pooling kernels with the CPU path (`cpu`).

use super::cpu;
use super::launch::{max_pool_backward, max_pool_forward};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Forward and backward, bit for bit: the smallest map; odd H and W with odd channels; a map with
/// ties (values rounded to halves, so windows repeat their maximum); a block + 1 of channels.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for (dims @ [n, h, w, c], ties) in
        [([1, 2, 2, 1], false), ([3, 7, 5, 3], false), ([2, 6, 8, 5], true), ([1, 4, 4, 257], false)]
    {
        let case = format!("x[{n},{h},{w},{c}]{}", if ties { " ties" } else { "" });
        let mut x = cx.normal(n * h * w * c);
        if ties {
            x.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
        }
        let dy = cx.normal(n * (h / 2) * (w / 2) * c);
        let xb = cx.up(&x)?;
        let got = max_pool_forward(cx.e, dims, &xb)?;
        cx.compare("max_pool_forward", &case, &got, &cpu::forward(&x, dims), Tol::EXACT)?;
        let got = max_pool_backward(cx.e, dims, &xb, &cx.up(&dy)?)?;
        cx.compare("max_pool_backward", &case, &got, &cpu::backward(&x, &dy, dims), Tol::EXACT)?;
    }
    Ok(())
}
