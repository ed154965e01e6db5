//! Convolution on the CPU, rayon over chunks of whole images (channels-last activations).
//!
//! Where the CPU has AVX-512 and the channels fill whole 16-wide vectors (output channels for the
//! forward and backward-weight, input channels for backward-data), the products run as direct
//! convolutions (`direct`: register-blocked microkernels, no im2col buffer, any stride). 1x1
//! stride-1 convolutions are one GEMM. Otherwise: per-chunk im2col into a reused scratch buffer,
//! or shifted rows for stride 1 on large images, then a single-threaded GEMM per chunk.
//!
//! The im2col row of output pixel `(n, oh, ow)` holds `x[n, oh*s - p + kh, ow*s - p + kw, ci]` at
//! column `(kh * KW + kw) * C_in + ci` (zero outside the image). The weight is packed as
//! `W[(kh * KW + kw) * C_in + ci, co] = w[co, ci, kh, kw]`, so a chunk's output is `col x W`.

mod direct;

use rayon::prelude::*;

use super::ConvGeometry;
use super::shifted;
use crate::cpu::matmul::{Mat, matmul};
use crate::cpu::reduce::ordered_sum;
use crate::cpu::scratch::with_scratch;

/// Output rows a task aims for; a chunk is a whole number of images.
const ROWS_PER_TASK: usize = 512;

fn images_per_task(g: &ConvGeometry) -> usize {
    ROWS_PER_TASK.div_ceil(g.h_out * g.w_out).max(1)
}

/// `[C_out, C_in, KH, KW]` to the packed `[(kh, kw, ci), C_out]` GEMM operand.
pub(crate) fn pack_weight(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (ci_n, co_n, taps) = (g.c_in, g.c_out, g.kh * g.kw);
    let mut packed = vec![0.0; taps * ci_n * co_n];
    for co in 0..co_n {
        for ci in 0..ci_n {
            for t in 0..taps {
                packed[(t * ci_n + ci) * co_n + co] = w[(co * ci_n + ci) * taps + t];
            }
        }
    }
    packed
}

/// The packed `[(kh, kw, ci), C_out]` layout back to `[C_out, C_in, KH, KW]`.
fn unpack_weight(g: &ConvGeometry, packed: &[f32]) -> Vec<f32> {
    let (ci_n, co_n, taps) = (g.c_in, g.c_out, g.kh * g.kw);
    let mut w = vec![0.0; packed.len()];
    for co in 0..co_n {
        for ci in 0..ci_n {
            for t in 0..taps {
                w[(co * ci_n + ci) * taps + t] = packed[(t * ci_n + ci) * co_n + co];
            }
        }
    }
    w
}

/// Whether the im2col matrix of a chunk is the input itself (1x1, stride 1, no padding).
fn is_pointwise(g: &ConvGeometry) -> bool {
    g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0
}

/// Whether the shifted-rows path beats im2col: stride 1 on large images, where its padding waste
/// is small and im2col's buffer is large.
fn use_shifted(g: &ConvGeometry) -> bool {
    g.stride == 1 && !is_pointwise(g) && g.h * g.w >= 512
}

/// Fills `col` (`images * H_out * W_out` rows of `K` columns) from `x` (those images).
fn im2col(g: &ConvGeometry, x: &[f32], col: &mut [f32]) {
    let k = g.k();
    let ci_n = g.c_in;
    let images = x.len() / g.in_image_len();
    for n in 0..images {
        let img = &x[n * g.in_image_len()..(n + 1) * g.in_image_len()];
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                let row = &mut col[((n * g.h_out + oh) * g.w_out + ow) * k..][..k];
                for kh in 0..g.kh {
                    let ih = (oh * g.stride + kh) as isize - g.pad as isize;
                    for kw in 0..g.kw {
                        let iw = (ow * g.stride + kw) as isize - g.pad as isize;
                        let dst = &mut row[(kh * g.kw + kw) * ci_n..][..ci_n];
                        if ih < 0 || iw < 0 || ih as usize >= g.h || iw as usize >= g.w {
                            dst.fill(0.0);
                        } else {
                            let src = (ih as usize * g.w + iw as usize) * ci_n;
                            dst.copy_from_slice(&img[src..src + ci_n]);
                        }
                    }
                }
            }
        }
    }
}

/// Adds the im2col-shaped gradient `col` back into `dx` (those images), the adjoint of [`im2col`].
fn col2im_add(g: &ConvGeometry, col: &[f32], dx: &mut [f32]) {
    let k = g.k();
    let ci_n = g.c_in;
    let images = dx.len() / g.in_image_len();
    for n in 0..images {
        let img = &mut dx[n * g.in_image_len()..(n + 1) * g.in_image_len()];
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                let row = &col[((n * g.h_out + oh) * g.w_out + ow) * k..][..k];
                for kh in 0..g.kh {
                    let ih = (oh * g.stride + kh) as isize - g.pad as isize;
                    if ih < 0 || ih as usize >= g.h {
                        continue;
                    }
                    for kw in 0..g.kw {
                        let iw = (ow * g.stride + kw) as isize - g.pad as isize;
                        if iw < 0 || iw as usize >= g.w {
                            continue;
                        }
                        let src = &row[(kh * g.kw + kw) * ci_n..][..ci_n];
                        let dst = (ih as usize * g.w + iw as usize) * ci_n;
                        for (d, s) in img[dst..dst + ci_n].iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// `y = conv(x, w) + bias`, channels-last.
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let packed = pack_weight(g, w);
    if !is_pointwise(g) && direct::supports_forward(g) {
        return direct::forward(g, x, &packed, bias);
    }
    let per = images_per_task(g);
    let mut y = vec![0.0; g.n * g.out_image_len()];
    y.par_chunks_mut(per * g.out_image_len()).zip(x.par_chunks(per * g.in_image_len())).for_each(|(y, x)| {
        let rows = y.len() / g.c_out;
        let images = rows / (g.h_out * g.w_out);
        let wmat = Mat::row_major(&packed, g.k(), g.c_out);
        if is_pointwise(g) {
            fill_bias(y, bias);
            matmul(y, Mat::row_major(x, rows, g.k()), wmat, bias.is_some(), 1);
        } else if use_shifted(g) {
            let (xp_len, ext_len) = (shifted::padded_len(g, images), shifted::ext_rows(g, images) * g.c_out);
            with_scratch(xp_len, ext_len, |xp, yext| {
                shifted::forward_chunk(g, x, &packed, bias, y, xp, yext)
            });
        } else {
            fill_bias(y, bias);
            with_scratch(rows * g.k(), 0, |col, _| {
                im2col(g, x, col);
                matmul(y, Mat::row_major(col, rows, g.k()), wmat, bias.is_some(), 1);
            });
        }
    });
    y
}

fn fill_bias(y: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in y.chunks_exact_mut(b.len()) {
            row.copy_from_slice(b);
        }
    }
}

/// The stride-1 convolution whose forward is the backward-data of `g`: the kernel flipped in space
/// with input and output channels exchanged, padding `K - 1 - p`; `None` when `p >= K`.
fn backward_data_as_forward(g: &ConvGeometry, w: &[f32]) -> Option<(ConvGeometry, Vec<f32>)> {
    if g.stride != 1 || g.pad >= g.kh || g.pad >= g.kw || g.kh - 1 - g.pad != g.kw - 1 - g.pad {
        return None;
    }
    let (kh, kw) = (g.kh, g.kw);
    let mut flipped = vec![0.0; w.len()];
    for co in 0..g.c_out {
        for ci in 0..g.c_in {
            for i in 0..kh {
                for j in 0..kw {
                    flipped[((ci * g.c_out + co) * kh + i) * kw + j] =
                        w[((co * g.c_in + ci) * kh + kh - 1 - i) * kw + kw - 1 - j];
                }
            }
        }
    }
    let bg = ConvGeometry {
        h: g.h_out,
        w: g.w_out,
        c_in: g.c_out,
        c_out: g.c_in,
        pad: kh - 1 - g.pad,
        h_out: g.h,
        w_out: g.w,
        ..*g
    };
    Some((bg, flipped))
}

/// `dx` for `y = conv(x, w)`: each chunk's `dy x W^T` scattered back through `col2im_add`.
pub fn backward_data(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    if !is_pointwise(g) && direct::supports_backward_data(g) {
        return direct::backward_data(g, dy, w);
    }
    if use_shifted(g)
        && g.c_in >= 8
        && let Some((bg, flipped)) = backward_data_as_forward(g, w)
    {
        return forward(&bg, dy, &flipped, None);
    }
    let packed = pack_weight(g, w);
    let per = images_per_task(g);
    let mut dx = vec![0.0; g.n * g.in_image_len()];
    dx.par_chunks_mut(per * g.in_image_len()).zip(dy.par_chunks(per * g.out_image_len())).for_each(
        |(dx, dy)| {
            let rows = dy.len() / g.c_out;
            let wt = Mat::row_major(&packed, g.k(), g.c_out).t();
            if is_pointwise(g) {
                matmul(dx, Mat::row_major(dy, rows, g.c_out), wt, false, 1);
            } else {
                with_scratch(rows * g.k(), 0, |col, _| {
                    matmul(col, Mat::row_major(dy, rows, g.c_out), wt, false, 1);
                    dx.fill(0.0);
                    col2im_add(g, col, dx);
                });
            }
        },
    );
    dx
}

/// `dw` (in `[C_out, C_in, KH, KW]`) for `y = conv(x, w)`: the sum over chunks of `col^T x dy`,
/// added in a fixed order.
pub fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if !is_pointwise(g) && direct::supports_forward(g) {
        return unpack_weight(g, &direct::backward_weight(g, x, dy));
    }
    let per = images_per_task(g);
    let (x_chunk, dy_chunk) = (per * g.in_image_len(), per * g.out_image_len());
    let packed = ordered_sum(g.n.div_ceil(per), g.k() * g.c_out, |chunks, acc: &mut [f32]| {
        for (x, dy) in x.chunks(x_chunk).zip(dy.chunks(dy_chunk)).skip(chunks.start).take(chunks.len()) {
            let rows = dy.len() / g.c_out;
            let dymat = Mat::row_major(dy, rows, g.c_out);
            if is_pointwise(g) {
                matmul(acc, Mat::row_major(x, rows, g.k()).t(), dymat, true, 1);
            } else if use_shifted(g) {
                let images = rows / (g.h_out * g.w_out);
                let (xp_len, ext_len) =
                    (shifted::padded_len(g, images), shifted::ext_rows(g, images) * g.c_out);
                with_scratch(xp_len, ext_len, |xp, dyext| {
                    shifted::backward_weight_chunk(g, x, dy, acc, xp, dyext)
                });
            } else {
                with_scratch(rows * g.k(), 0, |col, _| {
                    im2col(g, x, col);
                    matmul(acc, Mat::row_major(col, rows, g.k()).t(), dymat, true, 1);
                });
            }
        }
    });
    unpack_weight(g, &packed)
}
