//! Global average pooling: `y[n, c] = sum_{h, w} x[n, h, w, c] / (H * W)` for `x: [N, H, W, C]`.
//!
//! Backward: `dx[n, h, w, c] = dy[n, c] / (H * W)`.

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::error::{Error, Result};
use crate::ops::map_on_tracked;
use crate::tensor::Tensor;

/// The mean over the spatial axes of `x: [N, H, W, C]`, shape `[N, C]`.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "global_avg_pool";
    x.expect_shape(OP, "input", &[None, None, None, None])?;
    if x.numel() == 0 {
        return Err(Error::shape(OP, format!("empty input {:?}", x.shape())));
    }
    let [n, h, w, c] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let dims = [n, h * w, c];
    map_on_tracked(
        x,
        &[n, c],
        |x| cpu::forward(x, h * w, c),
        |g, x| launch::avg_pool_forward(g, dims, x),
        move |dy| cpu::backward(dy, h * w, c),
        move |g, dy| launch::avg_pool_backward(g, dims, dy),
    )
}

/// The CPU kernels, rayon over images.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Per image of `pixels` rows of `c`: the mean row.
    pub(crate) fn forward(x: &[f32], pixels: usize, c: usize) -> Vec<f32> {
        let inv = 1.0 / pixels as f32;
        let mut y = vec![0.0; x.len() / pixels];
        y.par_chunks_mut(c).zip(x.par_chunks(pixels * c)).for_each(|(y, img)| {
            for row in img.chunks_exact(c) {
                y.iter_mut().zip(row).for_each(|(y, v)| *y += v);
            }
            y.iter_mut().for_each(|y| *y *= inv);
        });
        y
    }

    /// Per image: every one of the `pixels` rows is `dy[n] / pixels`.
    pub(crate) fn backward(dy: &[f32], pixels: usize, c: usize) -> Vec<f32> {
        let inv = 1.0 / pixels as f32;
        let mut dx = vec![0.0; dy.len() * pixels];
        dx.par_chunks_mut(pixels * c).zip(dy.par_chunks(c)).for_each(|(img, dy)| {
            for row in img.chunks_exact_mut(c) {
                row.iter_mut().zip(dy).for_each(|(d, g)| *d = g * inv);
            }
        });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_rank_and_empty_batch() {
        let err = global_avg_pool(&Tensor::zeros(&[2, 3])).unwrap_err().to_string();
        assert!(err.starts_with("global_avg_pool:") && err.contains("[2, 3]"), "{err}");
        let err = global_avg_pool(&Tensor::zeros(&[0, 2, 2, 3])).unwrap_err().to_string();
        assert!(err.starts_with("global_avg_pool:") && err.contains("empty"), "{err}");
    }

    #[test]
    fn averages_each_channel() {
        let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[1, 1, 2, 2]).unwrap();
        assert_eq!(global_avg_pool(&x).unwrap().to_vec().unwrap(), vec![2.0, 20.0]);
    }
}
