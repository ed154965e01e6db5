//! The f64 reference of convolution and transposed convolution, channels-last: naive loops,
//! written for clarity, not speed. The gradient checks differentiate it numerically; the CPU
//! path's tests compare with it.

/// `y[n, oh, ow, co] = b[co] + sum x[n, oh*s-p+kh, ow*s-p+kw, ci] * w[co, ci, kh, kw]`;
/// `xs = [N, H, W, C_in]`, `ws = [C_out, C_in, KH, KW]`.
pub fn conv2d(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    b: Option<&[f64]>,
    s: usize,
    p: usize,
) -> Vec<f64> {
    let [n, h, wd, ci] = xs;
    let [co, _, kh, kw] = ws;
    let (ho, wo) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1);
    let mut y = vec![0.0; n * ho * wo * co];
    for b_ in 0..n {
        for oh in 0..ho {
            for ow in 0..wo {
                for o in 0..co {
                    let mut acc = b.map_or(0.0, |b| b[o]);
                    for c in 0..ci {
                        for i in 0..kh {
                            for j in 0..kw {
                                let (ih, iw) =
                                    ((oh * s + i) as isize - p as isize, (ow * s + j) as isize - p as isize);
                                if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd {
                                    let xv = x[((b_ * h + ih as usize) * wd + iw as usize) * ci + c];
                                    acc += xv * w[((o * ci + c) * kh + i) * kw + j];
                                }
                            }
                        }
                    }
                    y[((b_ * ho + oh) * wo + ow) * co + o] = acc;
                }
            }
        }
    }
    y
}

/// Transposed convolution: each input pixel scatters `x[n, ih, iw, ci] * w[ci, co, kh, kw]` to
/// `y[n, ih*s-p+kh, iw*s-p+kw, co]`; `xs = [N, H, W, C_in]`, `ws = [C_in, C_out, KH, KW]`.
pub fn conv_transpose2d(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    b: Option<&[f64]>,
    s: usize,
    p: usize,
) -> Vec<f64> {
    let [n, h, wd, ci] = xs;
    let [_, co, kh, kw] = ws;
    let (ho, wo) = ((h - 1) * s + kh - 2 * p, (wd - 1) * s + kw - 2 * p);
    let mut y = vec![0.0; n * ho * wo * co];
    for b_ in 0..n {
        for ih in 0..h {
            for iw in 0..wd {
                for c in 0..ci {
                    let xv = x[((b_ * h + ih) * wd + iw) * ci + c];
                    for i in 0..kh {
                        for j in 0..kw {
                            let (oh, ow) =
                                ((ih * s + i) as isize - p as isize, (iw * s + j) as isize - p as isize);
                            if oh >= 0 && ow >= 0 && (oh as usize) < ho && (ow as usize) < wo {
                                for o in 0..co {
                                    y[((b_ * ho + oh as usize) * wo + ow as usize) * co + o] +=
                                        xv * w[((c * co + o) * kh + i) * kw + j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = b {
        y.chunks_exact_mut(co).for_each(|r| r.iter_mut().zip(b).for_each(|(v, b)| *v += b));
    }
    y
}
