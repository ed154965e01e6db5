//! The f64 reference of 2x2 max pooling with stride 2.

/// `y[n, i, j, c] = max over the 2x2 window at (2i, 2j)`; `xs = [N, H, W, C]`, floor sizes.
pub fn max_pool2d(x: &[f64], xs: [usize; 4]) -> Vec<f64> {
    let [n, h, w, c] = xs;
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![f64::NEG_INFINITY; n * ho * wo * c];
    for b in 0..n {
        for i in 0..ho {
            for j in 0..wo {
                for ch in 0..c {
                    let out = &mut y[((b * ho + i) * wo + j) * c + ch];
                    for (a, d) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        *out = out.max(x[((b * h + 2 * i + a) * w + 2 * j + d) * c + ch]);
                    }
                }
            }
        }
    }
    y
}
