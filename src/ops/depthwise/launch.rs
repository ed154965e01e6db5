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

/// Which product of the depthwise convolution `y = depthwise(x, w)` to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthwiseProduct {
    /// `y` from `[x, w]`: [`crate::ops::depthwise::cpu::forward`].
    Forward,
    /// `dx` from `[dy, w]`: [`crate::ops::depthwise::cpu::backward_data`].
    BackwardData,
    /// `dw` from `[x, dy]`: [`crate::ops::depthwise::cpu::backward_weight`], blocks of 32
    /// channels by taps, each summing all output pixels in a fixed order.
    BackwardWeight,
}

/// One product of the depthwise convolution of geometry `g` on its operands `[a, b]`.
pub fn depthwise<E: Exec>(
    e: &E,
    g: &DepthwiseGeometry,
    product: DepthwiseProduct,
    [a, b]: [&E::Buf<f32>; 2],
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda depthwise";
    let p = window_params(OP, g)?;
    match product {
        DepthwiseProduct::Forward => {
            output(e, g.out_len(), |y| kernels::depthwise_forward(e, flat(g.out_len()), &p, a, b, y))
        }
        DepthwiseProduct::BackwardData => {
            let len = g.n * g.h * g.w * g.c;
            output(e, len, |dx| kernels::depthwise_backward_data(e, flat(len), &p, a, b, dx))
        }
        DepthwiseProduct::BackwardWeight => {
            let grid = channel_blocks(OP, g.c, g.k * g.k)?;
            output(e, g.c * g.k * g.k, |dw| kernels::depthwise_backward_weight(e, grid, &p, a, b, dw))
        }
    }
}
