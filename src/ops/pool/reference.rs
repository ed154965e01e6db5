//! The f64 reference of global average pooling.

/// `y[n, c] = mean over h, w of x[n, h, w, c]`; `xs = [N, H, W, C]`.
pub fn global_avg_pool(x: &[f64], xs: [usize; 4]) -> Vec<f64> {
    let [n, h, w, c] = xs;
    let mut y = vec![0.0; n * c];
    for b in 0..n {
        for p in 0..h * w {
            for ch in 0..c {
                y[b * c + ch] += x[(b * h * w + p) * c + ch] / (h * w) as f64;
            }
        }
    }
    y
}
