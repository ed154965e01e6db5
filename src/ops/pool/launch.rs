//! The device launchers of global average pooling (`kernels/pool.cu`).

use crate::cuda::exec::{Arg, Exec};
use crate::cuda::launch::{channel_blocks, expect_len, fits, flat, non_empty};
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
    let [n, pixels, c] = dims;
    expect_len(e, OP, "input", x, n * pixels * c)?;
    let mut y = e.alloc(n * c)?;
    // SAFETY: avg_pool_forward(PoolParams, x, y), lengths checked above.
    unsafe {
        e.launch("avg_pool_forward", channel_blocks(OP, c, n)?, &p, &mut [Arg::In(x), Arg::Out(&mut y)])?
    };
    Ok(y)
}

/// `dx[n, q, c] = dy[n, c] / pixels`: `crate::ops::pool::cpu::backward`.
pub fn avg_pool_backward<E: Exec>(e: &E, dims: [usize; 3], dy: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda avg_pool_backward";
    let p = pool_params(OP, dims)?;
    let [n, pixels, c] = dims;
    expect_len(e, OP, "output gradient", dy, n * c)?;
    let mut dx = e.alloc(n * pixels * c)?;
    // SAFETY: avg_pool_backward(PoolParams, dy, dx), lengths checked above.
    unsafe {
        e.launch("avg_pool_backward", flat(n * pixels * c), &p, &mut [Arg::In(dy), Arg::Out(&mut dx)])?
    };
    Ok(dx)
}
