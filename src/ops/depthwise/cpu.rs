//! The CPU path of the depthwise convolution: rayon over images, the channels innermost (contiguous
//! in both the activations and the transposed filter `[K * K][C]`).

use rayon::prelude::*;

use super::DepthwiseGeometry;
use crate::cpu::reduce::ordered_sum;

/// `w: [C, 1, K, K]` as `[K * K][C]`, tap-major.
fn taps_major(g: &DepthwiseGeometry, w: &[f32]) -> Vec<f32> {
    let kk = g.k * g.k;
    (0..kk * g.c).map(|i| w[(i % g.c) * kk + i / g.c]).collect()
}

/// The input pixel `(ih, iw)` read by output pixel `(oh, ow)` at tap `t`, if inside the image.
fn tap_pixel(g: &DepthwiseGeometry, oh: usize, ow: usize, t: usize) -> Option<usize> {
    let ih = (oh * g.stride + t / g.k).checked_sub(g.pad).filter(|&v| v < g.h)?;
    let iw = (ow * g.stride + t % g.k).checked_sub(g.pad).filter(|&v| v < g.w)?;
    Some(ih * g.w + iw)
}

/// `y = depthwise(x, w)`; per output element the taps are added in order.
pub fn forward(g: &DepthwiseGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (c, wt) = (g.c, taps_major(g, w));
    let mut y = vec![0.0; g.out_len()];
    y.par_chunks_mut(g.h_out * g.w_out * c).zip(x.par_chunks(g.h * g.w * c)).for_each(|(y, img)| {
        for (o, out) in y.chunks_exact_mut(c).enumerate() {
            for t in 0..g.k * g.k {
                if let Some(q) = tap_pixel(g, o / g.w_out, o % g.w_out, t) {
                    let (xs, ws) = (&img[q * c..(q + 1) * c], &wt[t * c..(t + 1) * c]);
                    out.iter_mut().zip(xs).zip(ws).for_each(|((y, x), w)| *y += x * w);
                }
            }
        }
    });
    y
}

/// `dx` for `y = depthwise(x, w)`: per image, each output pixel's `dy * w` added to the input
/// pixels its taps read, output pixels and taps in order.
pub fn backward_data(g: &DepthwiseGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (c, wt) = (g.c, taps_major(g, w));
    let mut dx = vec![0.0; g.n * g.h * g.w * c];
    dx.par_chunks_mut(g.h * g.w * c).zip(dy.par_chunks(g.h_out * g.w_out * c)).for_each(|(dx, dy)| {
        for (o, d) in dy.chunks_exact(c).enumerate() {
            for t in 0..g.k * g.k {
                if let Some(q) = tap_pixel(g, o / g.w_out, o % g.w_out, t) {
                    let ws = &wt[t * c..(t + 1) * c];
                    dx[q * c..(q + 1) * c].iter_mut().zip(d).zip(ws).for_each(|((dx, d), w)| *dx += d * w);
                }
            }
        }
    });
    dx
}

/// `dw[c, 0, kh, kw] = sum over images and output pixels of dy * x` at the tap; images summed in
/// fixed groups (`ordered_sum`), so the bits do not depend on the thread count.
pub fn backward_weight(g: &DepthwiseGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (c, kk) = (g.c, g.k * g.k);
    let (in_len, out_len) = (g.h * g.w * c, g.h_out * g.w_out * c);
    let by_tap = ordered_sum(g.n, kk * c, |images, acc: &mut [f32]| {
        for b in images {
            let (img, dy) = (&x[b * in_len..(b + 1) * in_len], &dy[b * out_len..(b + 1) * out_len]);
            for (o, d) in dy.chunks_exact(c).enumerate() {
                for t in 0..kk {
                    if let Some(q) = tap_pixel(g, o / g.w_out, o % g.w_out, t) {
                        let xs = &img[q * c..(q + 1) * c];
                        acc[t * c..(t + 1) * c].iter_mut().zip(d).zip(xs).for_each(|((a, d), x)| *a += d * x);
                    }
                }
            }
        }
    });
    (0..c * kk).map(|i| by_tap[(i % kk) * c + i / kk]).collect()
}
