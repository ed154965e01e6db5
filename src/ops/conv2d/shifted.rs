//! Stride-1 convolution without an im2col buffer ("shifted rows").
//!
//! Each chunk of images is copied once into a zero-padded buffer of `Hp x Wp` pixels per image.
//! Output pixel `(oh, ow)` of image `i` is computed at the *extended* row `r = i*Hp*Wp + oh*Wp + ow`
//! (columns `ow >= W_out` and rows `oh >= H_out` are computed and discarded). For kernel row `kh`,
//! the `KW * C_in` inputs of extended row `r` are contiguous at `(r + kh*Wp) * C_in`, so the chunk's
//! product is `KH` GEMMs with overlapping strided rows: `Y_ext += X_pad[kh] x W[kh]`, where
//! `W[kh]` is the `[KW * C_in, C_out]` slice of the packed weight.

use super::ConvGeometry;
use crate::cpu::matmul::{Mat, matmul};

/// Padded height and width.
fn padded(g: &ConvGeometry) -> (usize, usize) {
    (g.h + 2 * g.pad, g.w + 2 * g.pad)
}

/// Extended rows computed for `images` images: enough to cover the last image's valid outputs.
pub(super) fn ext_rows(g: &ConvGeometry, images: usize) -> usize {
    let (hp, wp) = padded(g);
    (images - 1) * hp * wp + g.h_out * wp
}

/// Elements of the padded input buffer for `images` images, with the slack the last kernel row reads.
pub(super) fn padded_len(g: &ConvGeometry, images: usize) -> usize {
    let (hp, wp) = padded(g);
    (images * hp * wp + g.kw - 1) * g.c_in
}

/// Copies `x` (whole images) into the zero-padded buffer `xp`.
pub(super) fn pad_images(g: &ConvGeometry, x: &[f32], xp: &mut [f32]) {
    let (hp, wp) = padded(g);
    let c = g.c_in;
    xp.fill(0.0);
    for (i, img) in x.chunks_exact(g.in_image_len()).enumerate() {
        for h in 0..g.h {
            let dst = ((i * hp + h + g.pad) * wp + g.pad) * c;
            xp[dst..dst + g.w * c].copy_from_slice(&img[h * g.w * c..(h + 1) * g.w * c]);
        }
    }
}

/// The `KW * C_in`-wide input rows seen by kernel row `kh`.
pub(super) fn tap_rows<'a>(g: &ConvGeometry, xp: &'a [f32], kh: usize, rows: usize) -> Mat<'a> {
    let (_, wp) = padded(g);
    Mat { data: &xp[kh * wp * g.c_in..], rows, cols: g.kw * g.c_in, row_stride: g.c_in, col_stride: 1 }
}

/// The `[KW * C_in, C_out]` slice of the packed weight for kernel row `kh`.
pub(super) fn tap_weight<'a>(g: &ConvGeometry, packed: &'a [f32], kh: usize) -> Mat<'a> {
    let len = g.kw * g.c_in * g.c_out;
    Mat::row_major(&packed[kh * len..(kh + 1) * len], g.kw * g.c_in, g.c_out)
}

/// Visits each valid output pixel's extended row: `f(ext_row, dense_row)`.
pub(super) fn for_each_valid_row(g: &ConvGeometry, images: usize, mut f: impl FnMut(usize, usize)) {
    let (hp, wp) = padded(g);
    for i in 0..images {
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                f(i * hp * wp + oh * wp + ow, (i * g.h_out + oh) * g.w_out + ow);
            }
        }
    }
}

/// Pads the whole images of the chunk `x` into `xp`; returns their count and [`ext_rows`].
fn pad_chunk(g: &ConvGeometry, x: &[f32], xp: &mut [f32]) -> (usize, usize) {
    let images = x.len() / g.in_image_len();
    pad_images(g, x, xp);
    (images, ext_rows(g, images))
}

/// Forward of one chunk of whole images: `y` (dense, channels-last) from `x`.
pub(super) fn forward_chunk(
    g: &ConvGeometry,
    x: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    xp: &mut [f32],
    yext: &mut [f32],
) {
    let (images, rows) = pad_chunk(g, x, xp);
    let yext = &mut yext[..rows * g.c_out];
    for kh in 0..g.kh {
        matmul(yext, tap_rows(g, xp, kh, rows), tap_weight(g, packed, kh), kh > 0, 1);
    }
    let co = g.c_out;
    for_each_valid_row(g, images, |e, d| {
        let dst = &mut y[d * co..(d + 1) * co];
        dst.copy_from_slice(&yext[e * co..(e + 1) * co]);
        if let Some(b) = bias {
            dst.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    });
}

/// Adds `x^T dy` of one chunk into the packed weight gradient `acc`.
pub(super) fn backward_weight_chunk(
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
    acc: &mut [f32],
    xp: &mut [f32],
    dyext: &mut [f32],
) {
    let (images, rows) = pad_chunk(g, x, xp);
    let co = g.c_out;
    let dyext = &mut dyext[..rows * co];
    dyext.fill(0.0);
    for_each_valid_row(g, images, |e, d| {
        dyext[e * co..(e + 1) * co].copy_from_slice(&dy[d * co..(d + 1) * co])
    });
    let len = g.kw * g.c_in * co;
    for kh in 0..g.kh {
        let dw = &mut acc[kh * len..(kh + 1) * len];
        matmul(dw, tap_rows(g, xp, kh, rows).t(), Mat::row_major(dyext, rows, co), true, 1);
    }
}
