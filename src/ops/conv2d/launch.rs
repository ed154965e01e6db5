//! The device launchers of the convolution (`kernels/conv2d.cu`).

use super::ConvGeometry;
use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{fits, flat, int, output, tiles};
use crate::cuda::params::ConvParams;
use crate::error::Result;

/// Output pixels one block of the weight gradient sums, at least; the pixels are split into at
/// most [`MAX_WEIGHT_SPLITS`] slices.
const MIN_SPLIT_ROWS: usize = 256;
const MAX_WEIGHT_SPLITS: usize = 64;

fn conv_params(op: &'static str, g: &ConvGeometry, split_rows: usize) -> Result<ConvParams> {
    fits(
        op,
        &[
            ("input elements", g.n * g.h * g.w * g.c_in),
            ("output elements", g.n * g.h_out * g.w_out * g.c_out),
            ("weight elements", g.c_out * g.k()),
        ],
    )?;
    Ok(ConvParams {
        n: int(op, "batch", g.n)?,
        h: int(op, "height", g.h)?,
        w: int(op, "width", g.w)?,
        c_in: int(op, "input channels", g.c_in)?,
        c_out: int(op, "output channels", g.c_out)?,
        kh: int(op, "kernel height", g.kh)?,
        kw: int(op, "kernel width", g.kw)?,
        stride: int(op, "stride", g.stride)?,
        pad: int(op, "padding", g.pad)?,
        h_out: int(op, "output height", g.h_out)?,
        w_out: int(op, "output width", g.w_out)?,
        split_rows: int(op, "rows per split", split_rows)?,
    })
}

/// `y = conv(x, w) + bias`: [`crate::ops::conv2d::cpu::forward`].
pub fn conv2d_forward<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    x: &E::Buf<f32>,
    w: &E::Buf<f32>,
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda conv2d_forward";
    let p = conv_params(OP, g, 1)?;
    let rows = g.n * g.h_out * g.w_out;
    output(e, rows * g.c_out, |y| kernels::conv2d_forward(e, tiles(OP, rows, g.c_out, 1)?, &p, x, w, bias, y))
}

/// `dx` for `y = conv(x, w)`: [`crate::ops::conv2d::cpu::backward_data`].
pub fn conv2d_backward_data<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    dy: &E::Buf<f32>,
    w: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda conv2d_backward_data";
    let p = conv_params(OP, g, 1)?;
    let rows = g.n * g.h * g.w;
    output(e, rows * g.c_in, |dx| {
        kernels::conv2d_backward_data(e, tiles(OP, rows, g.c_in, 1)?, &p, dy, w, dx)
    })
}

/// `dw` in `[C_out, C_in, KH, KW]` for `y = conv(x, w)`: [`crate::ops::conv2d::cpu::backward_weight`].
/// The output pixels are split into slices summed by separate blocks, then the slices are added
/// in order (no atomics: the result is the same on every run).
pub fn conv2d_backward_weight<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda conv2d_backward_weight";
    let rows = g.n * g.h_out * g.w_out;
    let split_rows = rows.div_ceil(rows.div_ceil(MIN_SPLIT_ROWS).min(MAX_WEIGHT_SPLITS));
    let splits = rows.div_ceil(split_rows);
    let p = conv_params(OP, g, split_rows)?;
    let weights = g.c_out * g.k();
    let partial = output(e, splits * weights, |partial| {
        kernels::conv2d_backward_weight(e, tiles(OP, g.c_out, g.k(), splits)?, &p, x, dy, partial)
    })?;
    output(e, weights, |dw| kernels::conv2d_reduce_weight(e, flat(weights), &p, &partial, dw))
}
