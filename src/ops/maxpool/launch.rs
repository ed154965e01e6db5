//! The device launchers of 2x2 max pooling (`kernels/pool.cu`).

use super::WINDOW;
use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{fits, flat, non_empty, output};
use crate::cuda::params::WindowParams;
use crate::error::Result;

fn window_params(op: &'static str, [n, h, w, c]: [usize; 4]) -> Result<WindowParams> {
    non_empty(op, "input", n * h * w * c)?;
    fits(op, &[("elements", n * h * w * c)])?;
    let k = WINDOW as i32;
    let (h_out, w_out) = ((h / WINDOW) as i32, (w / WINDOW) as i32);
    Ok(WindowParams {
        n: n as i32,
        h: h as i32,
        w: w as i32,
        c: c as i32,
        k,
        stride: k,
        pad: 0,
        h_out,
        w_out,
    })
}

/// The maximum of every 2x2 window of `x: [n, h, w, c]`: `crate::ops::maxpool::cpu::forward`.
pub fn max_pool_forward<E: Exec>(e: &E, dims: [usize; 4], x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let p = window_params("cuda max_pool_forward", dims)?;
    let len = (p.n * p.h_out * p.w_out * p.c) as usize;
    output(e, len, |y| kernels::max_pool_forward(e, flat(len), &p, x, y))
}

/// `dy` of each window at its first maximum: `crate::ops::maxpool::cpu::backward`.
pub fn max_pool_backward<E: Exec>(
    e: &E,
    dims: [usize; 4],
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = window_params("cuda max_pool_backward", dims)?;
    let len = dims.iter().product();
    output(e, len, |dx| kernels::max_pool_backward(e, flat(len), &p, x, dy, dx))
}
