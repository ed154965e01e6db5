//! Direct convolution with the register-blocked microkernels of [`crate::cpu::direct`], one image
//! at a time from a zero-padded copy in per-thread scratch: no im2col buffer, any stride.
//!
//! - Forward: output row `oh` of an image is one [`conv_row`] over the padded input rows
//!   `oh*s + kh`, each kernel row a contiguous segment of `KW * C_in` values.
//! - Backward-data: the input pixels are split into the `s x s` phases `(ih mod s, iw mod s)`; in a
//!   phase every pixel sees the same kernel taps, the dy pixels of a phase row are consecutive, so
//!   each phase row is one [`conv_row`] over the zero-padded `dy` (stride 1 is the single phase).
//! - Backward-weight: per image and kernel row, [`weight_grad`] adds `x^T dy` into the packed
//!   gradient; images are summed in fixed groups ([`ordered_sum`]), so the bits do not depend on
//!   the thread count.

use rayon::prelude::*;

use super::{ConvGeometry, images_per_task};
use crate::cpu::direct::{LANES, Seg, available, conv_row, weight_grad};
use crate::cpu::reduce::ordered_sum;
use crate::cpu::scratch::with_scratch;

/// Whether the direct forward (and backward-weight) runs: output channels fill whole vectors.
pub(super) fn supports_forward(g: &ConvGeometry) -> bool {
    available() && g.c_out.is_multiple_of(LANES)
}

/// Whether the direct backward-data runs: input channels fill whole vectors.
pub(super) fn supports_backward_data(g: &ConvGeometry) -> bool {
    available() && g.c_in.is_multiple_of(LANES)
}

/// Copies the `[h, w, c]` image `src` into the `[hp, wp, c]` buffer `dst` (`hp * wp * c` long) at
/// `(top, left)`, zeroing the border around it.
fn pad_into(
    src: &[f32],
    (h, w, c): (usize, usize, usize),
    (top, left): (usize, usize),
    wp: usize,
    dst: &mut [f32],
) {
    let (row, inner) = (wp * c, w * c);
    dst[..top * row].fill(0.0);
    dst[(top + h) * row..].fill(0.0);
    for (r, src) in src.chunks_exact(inner).take(h).enumerate() {
        let dst = &mut dst[(top + r) * row..(top + r + 1) * row];
        dst[..left * c].fill(0.0);
        dst[left * c..left * c + inner].copy_from_slice(src);
        dst[left * c + inner..].fill(0.0);
    }
}

/// `y = conv(x, w) + bias` from the packed `[(kh, kw, ci), C_out]` weight.
pub(super) fn forward(g: &ConvGeometry, x: &[f32], packed: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (hp, wp, c) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.c_in);
    let segs: Vec<Seg> =
        (0..g.kh).map(|kh| Seg { x: kh * wp * c, w: kh * g.kw * c * g.c_out, len: g.kw * c }).collect();
    let per = images_per_task(g);
    let len = g.n * g.out_image_len();
    let mut y = Vec::with_capacity(len);
    y.spare_capacity_mut()[..len]
        .par_chunks_mut(per * g.out_image_len())
        .zip(x.par_chunks(per * g.in_image_len()))
        .for_each(|(y, x)| {
            with_scratch(hp * wp * c, 0, |xp, _| {
                for (y, x) in y.chunks_exact_mut(g.out_image_len()).zip(x.chunks_exact(g.in_image_len())) {
                    pad_into(x, (g.h, g.w, c), (g.pad, g.pad), wp, xp);
                    for (oh, y) in y.chunks_exact_mut(g.w_out * g.c_out).enumerate() {
                        let xr = &xp[oh * g.stride * wp * c..];
                        let (xs, ys) = ((xr, g.stride * c), (y, g.c_out));
                        conv_row(xs, (packed, g.c_out), &segs, ys, g.w_out, g.c_out, bias);
                    }
                }
            })
        });
    // SAFETY: every output row of every image was written in full by `conv_row`.
    unsafe { y.set_len(len) };
    y
}

/// For one spatial axis of input size `n`, kernel `k`, output size `n_out`: each phase's taps
/// `(k index, dy offset)` and the zero padding `(before, after)` the dy axis needs.
fn axis_phases(
    g: &ConvGeometry,
    n: usize,
    k: usize,
    n_out: usize,
) -> (Vec<Vec<(usize, isize)>>, usize, usize) {
    let (s, p) = (g.stride as isize, g.pad as isize);
    let (mut before, mut after) = (0isize, 0isize);
    let phases: Vec<Vec<(usize, isize)>> = (0..g.stride.min(n))
        .map(|a| {
            let last = (n - 1 - a) / g.stride; // the last u with a + s*u < n
            let taps: Vec<(usize, isize)> = (0..k)
                .filter(|&t| (a as isize + p - t as isize).rem_euclid(s) == 0)
                .map(|t| (t, (a as isize + p - t as isize).div_euclid(s)))
                .collect();
            for &(_, d) in &taps {
                before = before.max(-d);
                after = after.max(last as isize + d + 1 - n_out as isize);
            }
            taps
        })
        .collect();
    (phases, before as usize, after as usize)
}

/// `dx` for `y = conv(x, w)`, phase by phase (see the module notes).
pub(super) fn backward_data(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (ci_n, co_n, s) = (g.c_in, g.c_out, g.stride);
    // wt[((kh * KW + kw) * C_out + co) * C_in + ci] = w[co, ci, kh, kw]
    let mut wt = vec![0.0; w.len()];
    for co in 0..co_n {
        for ci in 0..ci_n {
            for t in 0..g.kh * g.kw {
                wt[(t * co_n + co) * ci_n + ci] = w[(co * ci_n + ci) * g.kh * g.kw + t];
            }
        }
    }
    let (ph_h, top, bottom) = axis_phases(g, g.h, g.kh, g.h_out);
    let (ph_w, left, right) = axis_phases(g, g.w, g.kw, g.w_out);
    let (hq, wq) = (g.h_out + top + bottom, g.w_out + left + right);
    let phases: Vec<(usize, usize, Vec<Seg>)> = (0..ph_h.len())
        .flat_map(|a| (0..ph_w.len()).map(move |b| (a, b)))
        .map(|(a, b)| {
            let segs = ph_h[a]
                .iter()
                .flat_map(|&(kh, dh)| ph_w[b].iter().map(move |&(kw, dw)| (kh, dh, kw, dw)))
                .map(|(kh, dh, kw, dw)| Seg {
                    x: (((dh + top as isize) as usize) * wq + (dw + left as isize) as usize) * co_n,
                    w: (kh * g.kw + kw) * co_n * ci_n,
                    len: co_n,
                })
                .collect();
            (a, b, segs)
        })
        .collect();
    let per = images_per_task(g);
    let len = g.n * g.in_image_len();
    let mut dx = Vec::with_capacity(len);
    dx.spare_capacity_mut()[..len]
        .par_chunks_mut(per * g.in_image_len())
        .zip(dy.par_chunks(per * g.out_image_len()))
        .for_each(|(dx, dy)| {
            with_scratch(hq * wq * co_n, 0, |dyp, _| {
                for (dx, dy) in dx.chunks_exact_mut(g.in_image_len()).zip(dy.chunks_exact(g.out_image_len()))
                {
                    pad_into(dy, (g.h_out, g.w_out, co_n), (top, left), wq, dyp);
                    for (a, b, segs) in &phases {
                        let cols = (g.w - b).div_ceil(s);
                        for u in 0..(g.h - a).div_ceil(s) {
                            let out = &mut dx[((a + s * u) * g.w + b) * ci_n..];
                            let xs = (&dyp[u * wq * co_n..], co_n);
                            conv_row(xs, (&wt, ci_n), segs, (out, s * ci_n), cols, ci_n, None);
                        }
                    }
                }
            })
        });
    // SAFETY: the phases partition each image's pixels, and `conv_row` wrote every channel of
    // each pixel of each phase row.
    unsafe { dx.set_len(len) };
    dx
}

/// The packed `[(kh, kw, ci), C_out]` weight gradient of `y = conv(x, w)`, summed over images in
/// a fixed order.
pub(super) fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (hp, wp, c, s) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.c_in, g.stride);
    let slice = g.kw * c * g.c_out;
    ordered_sum(g.n, g.kh * slice, |images, acc: &mut [f32]| {
        with_scratch(hp * wp * c, 0, |xp, _| {
            for n in images {
                let x = &x[n * g.in_image_len()..(n + 1) * g.in_image_len()];
                let dy = &dy[n * g.out_image_len()..(n + 1) * g.out_image_len()];
                pad_into(x, (g.h, g.w, c), (g.pad, g.pad), wp, xp);
                for (kh, acc) in acc.chunks_exact_mut(slice).enumerate() {
                    let xs = (&xp[kh * wp * c..], s * wp * c, s * c);
                    let accs = (acc, g.c_out, g.kw * c);
                    weight_grad(xs, (dy, g.c_out), (g.h_out, g.w_out), accs, g.c_out);
                }
            }
        })
    })
}
