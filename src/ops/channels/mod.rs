//! Channel selection on the last axis (the inheritance / exploration split) and the option-A
//! shortcut of CIFAR ResNets.
//!
//! - `slice_channels(x, s, e)[.., j] = x[.., s + j]` for `j < e - s`;
//! - `gather_channels(x, idx)[.., j] = x[.., idx[j]]` (indices may repeat);
//! - `shortcut_a(x, C_out)[n, i, j, p + c] = x[n, 2i, 2j, c]` with `p = (C_out - C) / 2` and zeros in
//!   the other channels; the output is `[N, ceil(H/2), ceil(W/2), C_out]` (PyTorch's
//!   `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))`).
//!
//! Each backward scatters `dy` back to the positions it was read from, summing repeats.

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::cuda::exec::Exec;
use crate::error::{Error, Result};
use crate::ops::map_on_tracked;
use crate::tensor::Tensor;

/// Checks `x: [N, ..., C]` is non-empty with rank at least 2; returns `C`.
fn channels(op: &'static str, x: &Tensor) -> Result<usize> {
    if x.rank() < 2 || x.numel() == 0 {
        return Err(Error::shape(
            op,
            format!("input has shape {:?}, expected a non-empty [N, ..., C]", x.shape()),
        ));
    }
    Ok(x.shape()[x.rank() - 1])
}

fn with_last(shape: &[usize], last: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    *s.last_mut().expect("rank checked") = last;
    s
}

/// Channels `start..end` of the last axis of `x: [N, ..., C]`.
pub fn slice_channels(x: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    const OP: &str = "slice_channels";
    let c = channels(OP, x)?;
    if start >= end || end > c {
        return Err(Error::invalid(
            OP,
            format!("range {start}..{end} is empty or outside the {c} channels of {:?}", x.shape()),
        ));
    }
    let rows = x.numel() / c;
    map_on_tracked(
        x,
        &with_last(x.shape(), end - start),
        |x| cpu::slice(x, c, start, end),
        |g, x| launch::slice_channels(g, false, [rows, c], start, end, x),
        move |dy| cpu::slice_backward(dy, c, start, end),
        move |g, dy| launch::slice_channels(g, true, [rows, c], start, end, dy),
    )
}

/// The channels `index[0], index[1], ...` of the last axis of `x: [N, ..., C]`; indices may
/// repeat (their gradients add up) and must be below `C`.
pub fn gather_channels(x: &Tensor, index: &[usize]) -> Result<Tensor> {
    const OP: &str = "gather_channels";
    let c = channels(OP, x)?;
    if index.is_empty() {
        return Err(Error::invalid(OP, "empty index list"));
    }
    if let Some(&bad) = index.iter().find(|&&i| i >= c) {
        return Err(Error::invalid(
            OP,
            format!("index {bad} is out of range for {c} channels of {:?}", x.shape()),
        ));
    }
    let rows = x.numel() / c;
    // Indices below `c`, which fits the kernels' 32-bit indexing when the tensor does.
    let index32: Vec<i32> = index.iter().map(|&i| i as i32).collect();
    let (index_backward, index32_backward) = (index.to_vec(), index32.clone());
    map_on_tracked(
        x,
        &with_last(x.shape(), index.len()),
        |x| cpu::gather(x, c, index),
        |g, x| launch::gather_channels(g, false, [rows, c], &g.upload(&index32)?, x),
        move |dy| cpu::scatter_add(dy, c, &index_backward),
        move |g, dy| launch::gather_channels(g, true, [rows, c], &g.upload(&index32_backward)?, dy),
    )
}

/// The option-A shortcut of `x: [N, H, W, C]`: every second row and column, then
/// `(out_channels - C) / 2` zero channels before and after; `out_channels - C` must be even
/// and non-negative.
pub fn shortcut_a(x: &Tensor, out_channels: usize) -> Result<Tensor> {
    const OP: &str = "shortcut_a";
    x.expect_shape(OP, "input", &[None, None, None, None])?;
    let [n, h, w, c] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    if x.numel() == 0 {
        return Err(Error::shape(OP, format!("empty input {:?}", x.shape())));
    }
    if out_channels < c || !(out_channels - c).is_multiple_of(2) {
        return Err(Error::invalid(
            OP,
            format!("cannot pad {c} channels of {:?} evenly to {out_channels}", x.shape()),
        ));
    }
    let g = cpu::Subsample { n, h, w, c, c_out: out_channels };
    let dims = [n, h, w, c];
    map_on_tracked(
        x,
        &[n, h.div_ceil(2), w.div_ceil(2), out_channels],
        |x| cpu::shortcut_a(&g, x),
        |e, x| launch::shortcut_a(e, false, dims, out_channels, x),
        move |dy| cpu::shortcut_a_backward(&g, dy),
        move |e, dy| launch::shortcut_a(e, true, dims, out_channels, dy),
    )
}

/// The CPU kernels: rows of `C` channels, rayon over chunks of rows or over images.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Rows per rayon task.
    const ROWS: usize = 256;

    /// Channels `start..end` of each row of `c`.
    pub(crate) fn slice(x: &[f32], c: usize, start: usize, end: usize) -> Vec<f32> {
        let k = end - start;
        let mut y = vec![0.0; x.len() / c * k];
        y.par_chunks_mut(ROWS * k).zip(x.par_chunks(ROWS * c)).for_each(|(y, x)| {
            y.chunks_exact_mut(k).zip(x.chunks_exact(c)).for_each(|(y, x)| y.copy_from_slice(&x[start..end]));
        });
        y
    }

    /// The adjoint of [`slice`]: rows of `c` with `dy` in channels `start..end`, zeros elsewhere.
    pub(crate) fn slice_backward(dy: &[f32], c: usize, start: usize, end: usize) -> Vec<f32> {
        let k = end - start;
        let mut dx = vec![0.0; dy.len() / k * c];
        dx.par_chunks_mut(ROWS * c).zip(dy.par_chunks(ROWS * k)).for_each(|(dx, dy)| {
            dx.chunks_exact_mut(c)
                .zip(dy.chunks_exact(k))
                .for_each(|(dx, dy)| dx[start..end].copy_from_slice(dy));
        });
        dx
    }

    /// `y[r, j] = x[r, index[j]]` for rows of `c`.
    pub(crate) fn gather(x: &[f32], c: usize, index: &[usize]) -> Vec<f32> {
        let k = index.len();
        let mut y = vec![0.0; x.len() / c * k];
        y.par_chunks_mut(ROWS * k).zip(x.par_chunks(ROWS * c)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(k).zip(x.chunks_exact(c)) {
                y.iter_mut().zip(index).for_each(|(y, &i)| *y = x[i]);
            }
        });
        y
    }

    /// The adjoint of [`gather`]: `dx[r, index[j]] += dy[r, j]`.
    pub(crate) fn scatter_add(dy: &[f32], c: usize, index: &[usize]) -> Vec<f32> {
        let k = index.len();
        let mut dx = vec![0.0; dy.len() / k * c];
        dx.par_chunks_mut(ROWS * c).zip(dy.par_chunks(ROWS * k)).for_each(|(dx, dy)| {
            for (dx, dy) in dx.chunks_exact_mut(c).zip(dy.chunks_exact(k)) {
                dy.iter().zip(index).for_each(|(&g, &i)| dx[i] += g);
            }
        });
        dx
    }

    /// The sizes of an option-A shortcut: input `[n, h, w, c]`, `c_out` output channels.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Subsample {
        pub n: usize,
        pub h: usize,
        pub w: usize,
        pub c: usize,
        pub c_out: usize,
    }

    impl Subsample {
        fn out_image_len(&self) -> usize {
            self.h.div_ceil(2) * self.w.div_ceil(2) * self.c_out
        }
    }

    /// `y[n, i, j, pad + ch] = x[n, 2i, 2j, ch]`, zeros in the padding channels.
    pub(crate) fn shortcut_a(g: &Subsample, x: &[f32]) -> Vec<f32> {
        let (wo, pad) = (g.w.div_ceil(2), (g.c_out - g.c) / 2);
        let mut y = vec![0.0; g.n * g.out_image_len()];
        y.par_chunks_mut(g.out_image_len()).zip(x.par_chunks(g.h * g.w * g.c)).for_each(|(y, x)| {
            for (p, row) in y.chunks_exact_mut(g.c_out).enumerate() {
                let src = ((p / wo) * 2 * g.w + (p % wo) * 2) * g.c;
                row[pad..pad + g.c].copy_from_slice(&x[src..src + g.c]);
            }
        });
        y
    }

    /// The adjoint of [`shortcut_a`]: `dx[n, 2i, 2j, ch] = dy[n, i, j, pad + ch]`, zeros elsewhere.
    pub(crate) fn shortcut_a_backward(g: &Subsample, dy: &[f32]) -> Vec<f32> {
        let (wo, pad) = (g.w.div_ceil(2), (g.c_out - g.c) / 2);
        let mut dx = vec![0.0; g.n * g.h * g.w * g.c];
        dx.par_chunks_mut(g.h * g.w * g.c).zip(dy.par_chunks(g.out_image_len())).for_each(|(dx, dy)| {
            for (p, row) in dy.chunks_exact(g.c_out).enumerate() {
                let dst = ((p / wo) * 2 * g.w + (p % wo) * 2) * g.c;
                dx[dst..dst + g.c].copy_from_slice(&row[pad..pad + g.c]);
            }
        });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::autograd;

    fn iota(shape: &[usize]) -> Tensor {
        Tensor::from_vec((0..shape.iter().product::<usize>()).map(|i| i as f32).collect(), shape).unwrap()
    }

    #[test]
    fn gather_rejects_out_of_range_and_empty_indices() {
        let x = iota(&[2, 3]);
        let err = gather_channels(&x, &[0, 3]).unwrap_err().to_string();
        assert!(err.starts_with("gather_channels:") && err.contains("index 3"), "{err}");
        assert!(gather_channels(&x, &[]).is_err());
        assert!(gather_channels(&Tensor::zeros(&[0, 3]), &[0]).unwrap_err().to_string().contains("[0, 3]"));
    }

    #[test]
    fn gather_with_repeats_sums_the_gradient() {
        let x = iota(&[2, 3]).into_param();
        let y = gather_channels(&x, &[2, 0, 2]).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![2.0, 0.0, 2.0, 5.0, 3.0, 5.0]);
        let seed = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let g = autograd::backward_with(&y, seed).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![2.0, 0.0, 4.0, 5.0, 0.0, 10.0]);
    }

    #[test]
    fn slice_rejects_bad_ranges() {
        let x = iota(&[1, 2, 2, 4]);
        for (s, e) in [(2, 2), (3, 1), (0, 5)] {
            let err = slice_channels(&x, s, e).unwrap_err().to_string();
            assert!(err.starts_with("slice_channels:"), "{err}");
        }
        assert_eq!(slice_channels(&x, 1, 3).unwrap().shape(), &[1, 2, 2, 2]);
        assert!(slice_channels(&Tensor::zeros(&[4]), 0, 2).is_err());
    }

    #[test]
    fn shortcut_a_subsamples_and_pads_like_pytorch() {
        let x = iota(&[1, 3, 2, 2]);
        let y = shortcut_a(&x, 4).unwrap();
        assert_eq!(y.shape(), &[1, 2, 1, 4]);
        // Pixels (0, 0) and (2, 0): channels 0..2 of rows 0 and 4 of the input.
        assert_eq!(y.to_vec().unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0, 8.0, 9.0, 0.0]);
        let err = shortcut_a(&x, 5).unwrap_err().to_string();
        assert!(err.starts_with("shortcut_a:") && err.contains("[1, 3, 2, 2]"), "{err}");
        assert!(shortcut_a(&x, 1).is_err());
        assert!(shortcut_a(&Tensor::zeros(&[0, 2, 2, 2]), 4).is_err());
        assert!(
            shortcut_a(&Tensor::zeros(&[2, 2, 2]), 4).unwrap_err().to_string().starts_with("shortcut_a:")
        );
    }
}
