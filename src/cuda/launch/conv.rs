//! Convolution (`kernels/conv2d.cu`) and the matrix products of the linear layer and of bias
//! gradients (`kernels/gemm.cu`).

use super::{channel_blocks, expect_len, fits, flat, int, non_empty, tiles};
use crate::cuda::exec::{Arg, Exec};
use crate::cuda::params::{ConvParams, GemmParams, RowParams};
use crate::error::Result;
use crate::ops::conv2d::ConvGeometry;

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
    expect_len(e, OP, "input", x, g.n * g.in_image_len())?;
    expect_len(e, OP, "weight", w, g.c_out * g.k())?;
    if let Some(b) = bias {
        expect_len(e, OP, "bias", b, g.c_out)?;
    }
    let rows = g.n * g.h_out * g.w_out;
    let mut y = e.alloc(rows * g.c_out)?;
    let bias = bias.map_or(Arg::Null, Arg::In);
    // SAFETY: conv2d_forward(ConvParams, x, w, bias, y) reads x, w, bias and writes y within the
    // lengths checked above.
    unsafe {
        e.launch(
            "conv2d_forward",
            tiles(OP, rows, g.c_out, 1)?,
            &p,
            &mut [Arg::In(x), Arg::In(w), bias, Arg::Out(&mut y)],
        )?;
    }
    Ok(y)
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
    expect_len(e, OP, "output gradient", dy, g.n * g.out_image_len())?;
    expect_len(e, OP, "weight", w, g.c_out * g.k())?;
    let rows = g.n * g.h * g.w;
    let mut dx = e.alloc(rows * g.c_in)?;
    // SAFETY: conv2d_backward_data(ConvParams, dy, w, dx), lengths checked above.
    unsafe {
        e.launch(
            "conv2d_backward_data",
            tiles(OP, rows, g.c_in, 1)?,
            &p,
            &mut [Arg::In(dy), Arg::In(w), Arg::Out(&mut dx)],
        )?;
    }
    Ok(dx)
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
    expect_len(e, OP, "input", x, g.n * g.in_image_len())?;
    expect_len(e, OP, "output gradient", dy, rows * g.c_out)?;
    let weights = g.c_out * g.k();
    fits(OP, &[("partial sums", splits * weights)])?;
    let mut partial = e.alloc(splits * weights)?;
    let mut dw = e.alloc(weights)?;
    // SAFETY: conv2d_backward_weight(ConvParams, x, dy, partial) writes `splits` slices of
    // c_out * K; conv2d_reduce_weight(ConvParams, partial, dw) reads them; lengths checked above.
    unsafe {
        e.launch(
            "conv2d_backward_weight",
            tiles(OP, g.c_out, g.k(), splits)?,
            &p,
            &mut [Arg::In(x), Arg::In(dy), Arg::Out(&mut partial)],
        )?;
        e.launch("conv2d_reduce_weight", flat(weights), &p, &mut [Arg::In(&partial), Arg::Out(&mut dw)])?;
    }
    Ok(dw)
}

/// `out[j] = scale * sum_i x[i, j]` for `x: [rows, cols]`: bias gradients
/// ([`crate::cpu::reduce::column_sums`] with `scale = 1`) and batch means of per-row losses.
pub fn column_sums<E: Exec>(
    e: &E,
    rows: usize,
    cols: usize,
    scale: f32,
    x: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda column_sums";
    non_empty(OP, "matrix", rows * cols)?;
    fits(OP, &[("elements", rows * cols)])?;
    expect_len(e, OP, "matrix", x, rows * cols)?;
    let p = RowParams { rows: rows as i32, cols: cols as i32, mode: 0, a: scale };
    let mut out = e.alloc(cols)?;
    // SAFETY: column_sums(RowParams, x, out), lengths checked above.
    unsafe {
        e.launch("column_sums", channel_blocks(OP, cols, 1)?, &p, &mut [Arg::In(x), Arg::Out(&mut out)])?;
    }
    Ok(out)
}

/// Which product of the linear layer `y = x W^T + b` (`x: [n, k]`, `W: [m, k]`) to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearProduct {
    /// `y = x W^T (+ b)`, `[n, m]`: `crate::ops::linear::cpu::forward`.
    Forward,
    /// `dx = dy W`, `[n, k]`: `crate::ops::linear::cpu::backward_data`.
    BackwardData,
    /// `dW = dy^T x`, `[m, k]`: `crate::ops::linear::cpu::backward_weight`.
    BackwardWeight,
}

/// One product of the linear layer with `n` rows, `k` inputs and `m` outputs, as a strided GEMM:
/// `Forward` takes `(x, W)` and the optional bias, `BackwardData` `(dy, W)`, `BackwardWeight`
/// `(dy, x)`.
pub fn linear<E: Exec>(
    e: &E,
    product: LinearProduct,
    [n, k, m]: [usize; 3],
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda linear";
    non_empty(OP, "product", n * k * m)?;
    fits(OP, &[("input elements", n * k), ("weight elements", m * k), ("output elements", n * m)])?;
    let (n_, k_, m_) = (n as i32, k as i32, m as i32);
    let (p, a_len, b_len) = match product {
        LinearProduct::Forward => {
            (GemmParams { m: n_, n: m_, k: k_, a_row: k_, a_col: 1, b_row: 1, b_col: k_ }, n * k, m * k)
        }
        LinearProduct::BackwardData => {
            (GemmParams { m: n_, n: k_, k: m_, a_row: m_, a_col: 1, b_row: k_, b_col: 1 }, n * m, m * k)
        }
        LinearProduct::BackwardWeight => {
            (GemmParams { m: m_, n: k_, k: n_, a_row: 1, a_col: m_, b_row: k_, b_col: 1 }, n * m, n * k)
        }
    };
    expect_len(e, OP, "first operand", a, a_len)?;
    expect_len(e, OP, "second operand", b, b_len)?;
    if let Some(bias) = bias {
        expect_len(e, OP, "bias", bias, p.n as usize)?;
    }
    let mut c = e.alloc(p.m as usize * p.n as usize)?;
    let bias = bias.map_or(Arg::Null, Arg::In);
    // SAFETY: gemm(GemmParams, a, b, bias, c) reads a and b through the strides above, which
    // stay inside the checked lengths, and writes the m x n output.
    unsafe {
        e.launch(
            "gemm",
            tiles(OP, p.m as usize, p.n as usize, 1)?,
            &p,
            &mut [Arg::In(a), Arg::In(b), bias, Arg::Out(&mut c)],
        )?;
    }
    Ok(c)
}
