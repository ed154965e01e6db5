//! The device launchers of global average pooling (`kernels/pool.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{channel_blocks, fits, flat, non_empty, output};
use crate::cuda::params::PoolParams;
use crate::error::Result;

fn pool_params(op: &'static str, [n, pixels, c]: [usize; 3]) -> Result<PoolParams> {
    non_empty(op, "input", n * pixels * c)?;
    fits(op, &[("elements", n * pixels * c)])?;
    Ok(PoolParams { n: n as i32, pixels: pixels as i32, c: c as i32 })
}

/// The mean over the pixels of `x: [n, pixels, c]`: `crate::ops::pool::cpu::forward`.
pub fn avg_pool_forward<E: Exec>(e: &E, dims: [usize; 3], x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda avg_pool_forward";
    let p = pool_params(OP, dims)?;
    let [n, _, c] = dims;
    output(e, n * c, |y| kernels::avg_pool_forward(e, channel_blocks(OP, c, n)?, &p, x, y))
}

/// `dx[n, q, c] = dy[n, c] / pixels`: `crate::ops::pool::cpu::backward`.
pub fn avg_pool_backward<E: Exec>(e: &E, dims: [usize; 3], dy: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let p = pool_params("cuda avg_pool_backward", dims)?;
    let len = dims.iter().product();
    output(e, len, |dx| kernels::avg_pool_backward(e, flat(len), &p, dy, dx))
}
