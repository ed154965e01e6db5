//! The f64 reference of convolution and transposed convolution, channels-last: naive loops,
//! written for clarity, not speed. The gradient checks differentiate it numerically; the CPU
//! path's tests compare with it.

/// The operands of a reference convolution: the input `x` of shape `xs = [N, H, W, C_in]`, the
/// weight `w` of shape `ws` (`[C_out, C_in, KH, KW]` for [`conv2d`], `[C_in, C_out, KH, KW]` for
/// [`conv_transpose2d`]) and the optional bias `b`.
#[derive(Clone, Copy, Debug)]
pub struct Operands<'a> {
    /// The input.
    pub x: &'a [f64],
    /// Its shape.
    pub xs: [usize; 4],
    /// The weight.
    pub w: &'a [f64],
    /// Its shape.
    pub ws: [usize; 4],
    /// The bias, one value per output channel.
    pub b: Option<&'a [f64]>,
}

/// `y[n, oh, ow, co] = b[co] + sum x[n, oh*s-p+kh, ow*s-p+kw, ci] * w[co, ci, kh, kw]`, stride `s`,
/// zero padding `p`.
pub fn conv2d(Operands { x, xs, w, ws, b }: Operands<'_>, s: usize, p: usize) -> Vec<f64> {
    let [n, h, wd, ci] = xs;
    let [co, _, kh, kw] = ws;
    per_output([n, (h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1, co], |b_, oh, ow, o| {
        let mut acc = b.map_or(0.0, |b| b[o]);
        for c in 0..ci {
            for (t, ih, iw) in window([h, wd], [kh, kw], s, p, (oh, ow)) {
                acc += x[((b_ * h + ih) * wd + iw) * ci + c] * w[(o * ci + c) * kh * kw + t];
            }
        }
        acc
    })
}

/// The values `f(n, oh, ow, o)` of an `[N, H_out, W_out, C]` output, computed in that order.
pub(crate) fn per_output(
    [n, ho, wo, c]: [usize; 4],
    mut f: impl FnMut(usize, usize, usize, usize) -> f64,
) -> Vec<f64> {
    let mut y = Vec::with_capacity(n * ho * wo * c);
    for b in 0..n {
        for oh in 0..ho {
            for ow in 0..wo {
                y.extend((0..c).map(|o| f(b, oh, ow, o)));
            }
        }
    }
    y
}

/// The taps `t = i * kw + j` of the `[kh, kw]` window of output pixel `(oh, ow)` (stride `s`,
/// zero padding `p`) that fall inside an `[h, w]` image, in order, with their input pixel
/// `(ih, iw) = (oh*s-p+i, ow*s-p+j)`.
pub(crate) fn window(
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
    s: usize,
    p: usize,
    (oh, ow): (usize, usize),
) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..kh * kw).filter_map(move |t| {
        let ih = (oh * s + t / kw).checked_sub(p).filter(|&ih| ih < h)?;
        let iw = (ow * s + t % kw).checked_sub(p).filter(|&iw| iw < w)?;
        Some((t, ih, iw))
    })
}

/// Transposed convolution: each input pixel scatters `x[n, ih, iw, ci] * w[ci, co, kh, kw]` to
/// `y[n, ih*s-p+kh, iw*s-p+kw, co]`, stride `s`, padding `p`.
pub fn conv_transpose2d(Operands { x, xs, w, ws, b }: Operands<'_>, s: usize, p: usize) -> Vec<f64> {
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
