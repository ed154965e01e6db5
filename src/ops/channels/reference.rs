//! The f64 reference of the channel selection and the option-A shortcut, channels-last.

/// `y[r, j] = x[r, index[j]]` for rows of `c` channels.
pub fn gather_channels(x: &[f64], c: usize, index: &[usize]) -> Vec<f64> {
    x.chunks(c).flat_map(|row| index.iter().map(move |&i| row[i])).collect()
}

/// Channels `start..end` of each row of `c`.
pub fn slice_channels(x: &[f64], c: usize, start: usize, end: usize) -> Vec<f64> {
    gather_channels(x, c, &(start..end).collect::<Vec<_>>())
}

/// `y[n, i, j, pad + ch] = x[n, 2i, 2j, ch]`, zero elsewhere, `pad = (c_out - C) / 2`;
/// `xs = [N, H, W, C]`.
pub fn shortcut_a(x: &[f64], xs: [usize; 4], c_out: usize) -> Vec<f64> {
    let [n, h, w, c] = xs;
    let (ho, wo, pad) = (h.div_ceil(2), w.div_ceil(2), (c_out - c) / 2);
    let mut y = vec![0.0; n * ho * wo * c_out];
    for b in 0..n {
        for i in 0..ho {
            for j in 0..wo {
                for ch in 0..c {
                    y[((b * ho + i) * wo + j) * c_out + pad + ch] = x[((b * h + 2 * i) * w + 2 * j) * c + ch];
                }
            }
        }
    }
    y
}
