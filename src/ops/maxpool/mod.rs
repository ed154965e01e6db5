//! Max pooling over 2x2 windows with stride 2 (VGG's `MaxPool2d(2, 2)`), channels-last:
//! `y[n, i, j, c] = max(x[n, 2i + a, 2j + b, c] for a, b in {0, 1})` for `x: [N, H, W, C]`, output
//! `[N, H / 2, W / 2, C]` (floor, as PyTorch's default: an odd last row or column is dropped).
//!
//! Backward: each window's `dy` goes to the first position of its maximum in row-major window
//! order (a NaN counts as the maximum), the others get zero, as PyTorch's CPU kernel.

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::error::{Error, Result};
use crate::ops::map_on_tracked_x;
use crate::tensor::Tensor;

/// The window size and stride.
pub const WINDOW: usize = 2;

/// 2x2 max pooling with stride 2 of `x: [N, H, W, C]`, shape `[N, H / 2, W / 2, C]`; `H` and `W`
/// must be at least 2.
pub fn max_pool2d(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "max_pool2d";
    x.expect_shape(OP, "input", &[None, None, None, None])?;
    let dims @ [n, h, w, c] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    if n == 0 || c == 0 || h < WINDOW || w < WINDOW {
        return Err(Error::shape(OP, format!("input {:?} needs a batch, channels and H, W >= 2", x.shape())));
    }
    let out = [n, h / WINDOW, w / WINDOW, c];
    map_on_tracked_x(
        x,
        &out,
        |x| cpu::forward(x, dims),
        |g, x| launch::max_pool_forward(g, dims, x),
        "max_pool2d backward",
        move |x, dy| cpu::backward(x, dy, dims),
        move |g, x, dy| launch::max_pool_backward(g, dims, x, dy),
    )
}

/// The CPU kernels, rayon over images.
pub(crate) mod cpu {
    use rayon::prelude::*;

    use super::WINDOW;

    /// The offset in the image of the first maximum of the window at output `(i, j)` in channel
    /// `ch` (a NaN wins), the same rule as `window_argmax` in `kernels/pool.cu`.
    fn argmax(img: &[f32], w: usize, c: usize, (i, j, ch): (usize, usize, usize)) -> usize {
        let mut best = (WINDOW * i * w + WINDOW * j) * c + ch;
        for t in 1..WINDOW * WINDOW {
            let at = ((WINDOW * i + t / WINDOW) * w + WINDOW * j + t % WINDOW) * c + ch;
            let (v, top) = (img[at], img[best]);
            if v > top || (v.is_nan() && !top.is_nan()) {
                best = at;
            }
        }
        best
    }

    /// The maximum of every window.
    pub(crate) fn forward(x: &[f32], [n, h, w, c]: [usize; 4]) -> Vec<f32> {
        let (ho, wo) = (h / WINDOW, w / WINDOW);
        let mut y = vec![0.0; n * ho * wo * c];
        y.par_chunks_mut(ho * wo * c).zip(x.par_chunks(h * w * c)).for_each(|(y, img)| {
            for (o, y) in y.iter_mut().enumerate() {
                let (pixel, ch) = (o / c, o % c);
                *y = img[argmax(img, w, c, (pixel / wo, pixel % wo, ch))];
            }
        });
        y
    }

    /// `dy` of each window at its first maximum, zero elsewhere.
    pub(crate) fn backward(x: &[f32], dy: &[f32], [_, h, w, c]: [usize; 4]) -> Vec<f32> {
        let (ho, wo) = (h / WINDOW, w / WINDOW);
        let mut dx = vec![0.0; x.len()];
        dx.par_chunks_mut(h * w * c).zip(x.par_chunks(h * w * c)).zip(dy.par_chunks(ho * wo * c)).for_each(
            |((dx, img), dy)| {
                for (o, &g) in dy.iter().enumerate() {
                    let (pixel, ch) = (o / c, o % c);
                    dx[argmax(img, w, c, (pixel / wo, pixel % wo, ch))] = g;
                }
            },
        );
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::autograd;

    #[test]
    fn rejects_wrong_rank_and_too_small_maps() {
        let err = max_pool2d(&Tensor::zeros(&[2, 3])).unwrap_err().to_string();
        assert!(err.starts_with("max_pool2d:") && err.contains("[2, 3]"), "{err}");
        let err = max_pool2d(&Tensor::zeros(&[2, 1, 4, 3])).unwrap_err().to_string();
        assert!(err.starts_with("max_pool2d:") && err.contains("[2, 1, 4, 3]"), "{err}");
    }

    #[test]
    fn takes_the_first_maximum_and_drops_the_odd_column() {
        // One image 2x3, one channel: the last column has no window.
        let x = Tensor::from_vec(vec![1.0, 5.0, 9.0, 5.0, 2.0, 9.0], &[1, 2, 3, 1]).unwrap().into_param();
        let y = max_pool2d(&x).unwrap();
        assert_eq!(y.shape(), &[1, 1, 1, 1]);
        assert_eq!(y.to_vec().unwrap(), vec![5.0]);
        let g = autograd::backward_with(&y, Tensor::full(&[1, 1, 1, 1], 3.0)).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
        autograd::clear_tape();
    }
}
