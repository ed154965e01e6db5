//! The f64 reference of the depthwise convolution: naive loops, written for clarity.

use crate::ops::conv2d::reference::{per_output, window};

/// `y[n, oh, ow, c] = sum x[n, oh*s-p+kh, ow*s-p+kw, c] * w[c, 0, kh, kw]`; `xs = [N, H, W, C]`,
/// square kernel `k`.
pub fn depthwise_conv2d(x: &[f64], xs: [usize; 4], w: &[f64], k: usize, s: usize, p: usize) -> Vec<f64> {
    let [n, h, wd, c] = xs;
    per_output([n, (h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1, c], |b, oh, ow, ch| {
        let mut acc = 0.0;
        for (t, ih, iw) in window([h, wd], [k, k], s, p, (oh, ow)) {
            acc += x[((b * h + ih) * wd + iw) * c + ch] * w[ch * k * k + t];
        }
        acc
    })
}
