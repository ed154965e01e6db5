//! The device launchers of the depthwise convolution (`kernels/depthwise.cu`).

use super::DepthwiseGeometry;
use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{channel_blocks, fits, flat, int, output};
use crate::cuda::params::WindowParams;
use crate::error::Result;

fn window_params(op: &'static str, g: &DepthwiseGeometry) -> Result<WindowParams> {
    fits(op, &[("input elements", g.n * g.h * g.w * g.c), ("output elements", g.out_len())])?;
    Ok(WindowParams {
        n: int(op, "batch", g.n)?,
        h: int(op, "height", g.h)?,
        w: int(op, "width", g.w)?,
        c: int(op, "channels", g.c)?,
        k: int(op, "kernel size", g.k)?,
        stride: int(op, "stride", g.stride)?,
        pad: int(op, "padding", g.pad)?,
        h_out: int(op, "output height", g.h_out)?,
        w_out: int(op, "output width", g.w_out)?,
    })
}

/// `y = depthwise(x, w)`: [`crate::ops::depthwise::cpu::forward`].
pub fn depthwise_forward<E: Exec>(
    e: &E,
    g: &DepthwiseGeometry,
    x: &E::Buf<f32>,
    w: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = window_params("cuda depthwise_forward", g)?;
    output(e, g.out_len(), |y| kernels::depthwise_forward(e, flat(g.out_len()), &p, x, w, y))
}

/// `dx` for `y = depthwise(x, w)`: [`crate::ops::depthwise::cpu::backward_data`].
pub fn depthwise_backward_data<E: Exec>(
    e: &E,
    g: &DepthwiseGeometry,
    dy: &E::Buf<f32>,
    w: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = window_params("cuda depthwise_backward_data", g)?;
    let len = g.n * g.h * g.w * g.c;
    output(e, len, |dx| kernels::depthwise_backward_data(e, flat(len), &p, dy, w, dx))
}

/// `dw` for `y = depthwise(x, w)`: [`crate::ops::depthwise::cpu::backward_weight`].
pub fn depthwise_backward_weight<E: Exec>(
    e: &E,
    g: &DepthwiseGeometry,
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda depthwise_backward_weight";
    let p = window_params(OP, g)?;
    let grid = channel_blocks(OP, g.c, g.k * g.k)?;
    output(e, g.c * g.k * g.k, |dw| kernels::depthwise_backward_weight(e, grid, &p, x, dy, dw))
}
