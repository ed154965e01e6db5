//! The device launchers of the convolution (`kernels/conv2d.cu`).

use super::ConvGeometry;
use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::launch::{THREADS, TILE, expect_len, fits, int, output, tiles};
use crate::cuda::params::ConvParams;
use crate::error::{Error, Result};
use crate::ops::batchnorm::launch::{BnAffine, Trained};

/// Output pixels one block of the weight gradient sums, at least; the pixels are split into at
/// most [`MAX_WEIGHT_SPLITS`] slices.
const MIN_SPLIT_ROWS: usize = 256;
const MAX_WEIGHT_SPLITS: usize = 64;

pub(super) fn conv_params(
    op: &'static str,
    g: &ConvGeometry,
    split_rows: usize,
    accumulate: bool,
) -> Result<ConvParams> {
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
        accumulate: accumulate.into(),
        ..ConvParams::default()
    })
}

/// Which product of the convolution `y = conv(x, w) + bias` to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvProduct {
    /// `y` from `[x, w]` and the optional bias: [`crate::ops::conv2d::cpu::forward`].
    Forward,
    /// `dx` from `[dy, w]`: [`crate::ops::conv2d::cpu::backward_data`].
    BackwardData,
    /// `dw` in `[C_out, C_in, KH, KW]` from `[x, dy]`: [`crate::ops::conv2d::cpu::backward_weight`].
    /// One launch: the output pixels are split into slices summed by separate blocks, and the
    /// last block of each output tile adds the slices in order (no atomic sums: the result is
    /// the same on every run); the blocks count themselves on the device's tickets
    /// ([`Exec::with_tickets`]).
    BackwardWeight,
}

/// One product of the convolution of geometry `g` on its operands `[a, b]`; `bias` only with
/// [`ConvProduct::Forward`].
pub fn conv2d<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    product: ConvProduct,
    [a, b]: [&E::Buf<f32>; 2],
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda conv2d";
    if bias.is_some() && product != ConvProduct::Forward {
        return Err(Error::invalid(OP, format!("{product:?} takes no bias")));
    }
    match product {
        ConvProduct::Forward => {
            let p = conv_params(OP, g, 1, false)?;
            let rows = g.n * g.h_out * g.w_out;
            let grid = tiles(OP, rows, g.c_out, 1)?;
            output(e, rows * g.c_out, |y| kernels::conv2d_forward(e, grid, &p, a, b, bias, y))
        }
        ConvProduct::BackwardData => {
            output(e, g.n * g.in_image_len(), |dx| backward_data(e, g, [a, b], dx, false))
        }
        ConvProduct::BackwardWeight => {
            let split = WeightSplit::of(g);
            let p = conv_params(OP, g, split.rows, false)?;
            let grid = tiles(OP, g.c_out, g.k(), split.slices)?;
            let mut partial = e.alloc(split.slices * g.c_out * g.k())?;
            output(e, g.c_out * g.k(), |dw| {
                e.with_tickets(split.output_tiles(g), |tickets| {
                    kernels::conv2d_backward_weight(e, grid, &p, a, b, &mut partial, tickets, dw)
                })
            })
        }
    }
}

/// How the weight gradient splits the output pixels: `slices` slices of `rows` pixels (the last
/// one shorter), each summed by its own blocks.
pub(super) struct WeightSplit {
    /// Output pixels a slice sums (the last one fewer).
    pub(super) rows: usize,
    /// Slices.
    pub(super) slices: usize,
}

impl WeightSplit {
    /// The split of the weight gradient of `g`.
    pub(super) fn of(g: &ConvGeometry) -> Self {
        let pixels = g.n * g.h_out * g.w_out;
        let rows = pixels.div_ceil(pixels.div_ceil(MIN_SPLIT_ROWS).min(MAX_WEIGHT_SPLITS));
        WeightSplit { rows, slices: pixels.div_ceil(rows) }
    }

    /// Output tiles of the weight gradient, one ticket each.
    fn output_tiles(&self, g: &ConvGeometry) -> usize {
        g.c_out.div_ceil(TILE) * g.k().div_ceil(TILE)
    }
}

/// Both gradients of the convolution of geometry `g` from `[x, dy, w]` in one launch: the data
/// gradient into `dx` (`[N, H, W, C_in]`; added to it with `accumulate`, else overwriting it) and
/// the weight gradient returned, the same values as [`ConvProduct::BackwardData`] (plus `dx` with
/// `accumulate`) and [`ConvProduct::BackwardWeight`]: the kernel's first blocks are the one's
/// grid, the rest the other's.
pub fn conv2d_backward<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    [x, dy, w]: [&E::Buf<f32>; 3],
    dx: &mut E::Buf<f32>,
    accumulate: bool,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda conv2d backward";
    expect_len(e, OP, "the data gradient", dx, g.n * g.in_image_len())?;
    let split = WeightSplit::of(g);
    let p = conv_params(OP, g, split.rows, accumulate)?;
    let data_blocks = (g.n * g.h * g.w).div_ceil(TILE) * g.c_in.div_ceil(TILE);
    let blocks = data_blocks + split.output_tiles(g) * split.slices;
    let grid = Grid { blocks: [int(OP, "blocks", blocks)? as u32, 1, 1], threads: [THREADS, 1, 1] };
    let mut partial = e.alloc(split.slices * g.c_out * g.k())?;
    output(e, g.c_out * g.k(), |dw| {
        e.with_tickets(split.output_tiles(g), |tickets| {
            kernels::conv2d_backward(e, grid, &p, x, dy, w, dx, &mut partial, tickets, dw)
        })
    })
}

/// `dx += ` the data gradient of the convolution of geometry `g` from `[dy, w]`, in place in
/// `dx` (`[N, H, W, C_in]`): the second gradient of an input, added where the first one is with no
/// other buffer or launch; each element is `dx + ` [`ConvProduct::BackwardData`]'s value.
pub fn conv2d_backward_data_into<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    [dy, w]: [&E::Buf<f32>; 2],
    dx: &mut E::Buf<f32>,
) -> Result<()> {
    expect_len(e, "cuda conv2d", "the gradient to add into", dx, g.n * g.in_image_len())?;
    backward_data(e, g, [dy, w], dx, true)
}

/// The data gradient into `dx`, overwriting it or added to it.
fn backward_data<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    [dy, w]: [&E::Buf<f32>; 2],
    dx: &mut E::Buf<f32>,
    accumulate: bool,
) -> Result<()> {
    const OP: &str = "cuda conv2d";
    let p = conv_params(OP, g, 1, accumulate)?;
    let grid = tiles(OP, g.n * g.h * g.w, g.c_in, 1)?;
    kernels::conv2d_backward_data(e, grid, &p, dy, w, dx)
}

/// Output tiles whose statistics the last of them merges (`STAT_GROUP` in common.cuh).
pub(super) const STAT_GROUP: usize = 32;

/// `y = conv(x, w)` (no bias) and the batch statistics of its output channels in one launch, for
/// the training-mode batch norm that follows: the mean and biased variance over the
/// `N * H_out * W_out` pixels (`crate::ops::batchnorm::cpu::stats`). Each block's tile statistics
/// are merged, in a fixed order, by the last block of each group of 32 tiles (`STAT_GROUP`), and the
/// groups' by the last group of each column of tiles.
pub fn conv2d_forward_stats<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    [x, w]: [&E::Buf<f32>; 2],
) -> Result<Trained<E::Buf<f32>>> {
    const OP: &str = "cuda conv2d with batch statistics";
    let p = conv_params(OP, g, 1, false)?;
    let rows = g.n * g.h_out * g.w_out;
    let grid = tiles(OP, rows, g.c_out, 1)?;
    let (row_tiles, groups) = (rows.div_ceil(TILE), rows.div_ceil(STAT_GROUP * TILE));
    let mut partial = e.alloc(2 * (row_tiles + groups) * g.c_out)?;
    let (mut y, mut mean, mut var) = (e.alloc(rows * g.c_out)?, e.alloc(g.c_out)?, e.alloc(g.c_out)?);
    e.with_tickets(g.c_out.div_ceil(TILE) * (groups + 1), |tickets| {
        kernels::conv2d_forward_stats(e, grid, &p, x, w, &mut y, &mut partial, tickets, &mut mean, &mut var)
    })?;
    Ok(Trained { y, mean, var })
}

/// `y = act((conv(x, w) - center) * gamma / sqrt(var + eps) + beta [+ residual])` in one launch:
/// the convolution (no bias) and a batch norm with given statistics `[center, var]` (the running
/// ones in evaluation), the same operations as [`conv2d`]'s forward then
/// [`bn_forward`](crate::ops::batchnorm::launch::bn_forward) and so the same values.
pub fn conv2d_forward_bn<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    [x, w]: [&E::Buf<f32>; 2],
    n: &BnAffine<'_, E::Buf<f32>>,
    [center, var]: [&E::Buf<f32>; 2],
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda conv2d with batch norm";
    let p = ConvParams { relu: n.relu.into(), eps: n.eps, ..conv_params(OP, g, 1, false)? };
    let rows = g.n * g.h_out * g.w_out;
    let grid = tiles(OP, rows, g.c_out, 1)?;
    output(e, rows * g.c_out, |y| {
        kernels::conv2d_forward_bn(e, grid, &p, x, w, center, var, n.gamma, n.beta, n.residual, y)
    })
}
