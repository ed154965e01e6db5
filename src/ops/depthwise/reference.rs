//! The f64 reference of the depthwise convolution: naive loops, written for clarity.

/// `y[n, oh, ow, c] = sum x[n, oh*s-p+kh, ow*s-p+kw, c] * w[c, 0, kh, kw]`; `xs = [N, H, W, C]`,
/// square kernel `k`.
pub fn depthwise_conv2d(x: &[f64], xs: [usize; 4], w: &[f64], k: usize, s: usize, p: usize) -> Vec<f64> {
    let [n, h, wd, c] = xs;
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
    let mut y = vec![0.0; n * ho * wo * c];
    for b in 0..n {
        for oh in 0..ho {
            for ow in 0..wo {
                for ch in 0..c {
                    let mut acc = 0.0;
                    for i in 0..k {
                        for j in 0..k {
                            let (ih, iw) =
                                ((oh * s + i) as isize - p as isize, (ow * s + j) as isize - p as isize);
                            if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd {
                                acc += x[((b * h + ih as usize) * wd + iw as usize) * c + ch]
                                    * w[(ch * k + i) * k + j];
                            }
                        }
                    }
                    y[((b * ho + oh) * wo + ow) * c + ch] = acc;
                }
            }
        }
    }
    y
}
