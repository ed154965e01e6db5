//! Attention transfer (Zagoruyko and Komodakis): spatial attention maps and their loss.
//!
//! For `x: [N, H, W, C]`, `q[n, p] = 1/C * sum_c x[n, p, c]^2` over pixels `p = h*W + w`, and
//! `at(x)[n, :] = q[n, :] / max(||q[n, :]||_2, NORM_EPS)`, of shape `[N, H*W]` (PyTorch's
//! `F.normalize(x.pow(2).mean(1).view(N, -1))`). The AT loss is `mean((at(s) - at(t))^2)` over all
//! `N*H*W` elements; student and teacher may differ in channels but not in `N, H, W`.
//!
//! Backward of the map: the normalization as in [`super::factor`], then `dx = dq * 2 x / C`.

use super::place;
use super::recon::mse_loss;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// CPU kernels over channels-last slices (`C` values per pixel).
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Pixels a rayon task handles.
    const PIXELS_PER_TASK: usize = 1024;

    /// `q[p] = 1/C * sum_c x[p, c]^2` for every pixel.
    pub(crate) fn channel_mean_square(c: usize, x: &[f32]) -> Vec<f32> {
        let mut q = vec![0.0; x.len() / c];
        q.par_chunks_mut(PIXELS_PER_TASK).zip(x.par_chunks(PIXELS_PER_TASK * c)).for_each(|(q, x)| {
            for (q, px) in q.iter_mut().zip(x.chunks_exact(c)) {
                *q = px.iter().map(|v| v * v).sum::<f32>() / c as f32;
            }
        });
        q
    }

    /// `dx[p, c] = dq[p] * 2 x[p, c] / C`.
    pub(crate) fn channel_mean_square_backward(c: usize, x: &[f32], dq: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; x.len()];
        let scale = 2.0 / c as f32;
        dx.par_chunks_mut(PIXELS_PER_TASK * c)
            .zip(x.par_chunks(PIXELS_PER_TASK * c))
            .zip(dq.par_chunks(PIXELS_PER_TASK))
            .for_each(|((dx, x), dq)| {
                for ((dx, x), &g) in dx.chunks_exact_mut(c).zip(x.chunks_exact(c)).zip(dq) {
                    dx.iter_mut().zip(x).for_each(|(d, &v)| *d = scale * g * v);
                }
            });
        dx
    }
}

/// The normalized spatial attention map of `x: [N, H, W, C]`, shape `[N, H*W]`.
pub fn attention_map(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "attention_map";
    x.expect_shape(OP, "input", &[None, None, None, None])?;
    let (n, h, w, c) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    if x.numel() == 0 {
        return Err(Error::shape(OP, format!("empty input {:?}", x.shape())));
    }
    let q = place::channel_mean_square(x, [n * h * w, c])?;
    let [map, norms] = place::normalize_rows(&q, [n, h * w], &[n, h * w])?;
    let y = map.result_of(&[x]);
    let (x, map) = (x.clone(), y.detach());
    autograd::record(&y, move |dy, grads| {
        let dq = place::normalize_rows_backward([&map, &norms, dy], [n, h * w])?;
        grads.accumulate(&x, place::channel_mean_square_backward(&x, &dq, [n * h * w, c])?)
    });
    Ok(y)
}

/// The attention-transfer loss `mean((at(student) - at(teacher))^2)` between `[N, H, W, C_s]` and
/// `[N, H, W, C_t]` maps; gradients reach both when they require them.
pub fn at_loss(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    const OP: &str = "at_loss";
    student.expect_shape(OP, "student", &[None, None, None, None])?;
    let s = student.shape();
    teacher.expect_shape(OP, "teacher", &[Some(s[0]), Some(s[1]), Some(s[2]), None])?;
    mse_loss(&attention_map(student)?, &attention_map(teacher)?)
}

/// The f64 reference: naive, written for clarity, not speed.
pub mod reference {
    use crate::ops::loss::factor::reference::normalize_rows;
    use crate::ops::loss::recon::reference::mse;

    /// The attention map of `x: [N, H, W, C]`: per sample, the channel mean of `x^2` at each
    /// pixel, normalized over the `H*W` pixels; shape `[N, H*W]`.
    pub fn attention_map(x: &[f64], shape: [usize; 4]) -> Vec<f64> {
        let [n, _, _, c] = shape;
        let q: Vec<f64> = x.chunks(c).map(|px| px.iter().map(|v| v * v).sum::<f64>() / c as f64).collect();
        normalize_rows(&q, n)
    }

    /// `mean((at(s) - at(t))^2)` over all `N*H*W` elements; a one-element vector.
    pub fn at_loss(s: &[f64], s_shape: [usize; 4], t: &[f64], t_shape: [usize; 4]) -> Vec<f64> {
        mse(&attention_map(s, s_shape), &attention_map(t, t_shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_unit_norm_and_shapes_are_checked() {
        let x =
            Tensor::from_vec((0..2 * 2 * 3 * 3).map(|i| i as f32 - 7.0).collect(), &[2, 2, 3, 3]).unwrap();
        let at = attention_map(&x).unwrap();
        assert_eq!(at.shape(), &[2, 6]);
        for row in at.to_vec().unwrap().chunks(6) {
            assert!((row.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let msg = at_loss(&x, &Tensor::zeros(&[2, 3, 3, 5])).unwrap_err().to_string();
        assert!(msg.contains("at_loss") && msg.contains("[2, 3, 3, 5]"), "{msg}");
        assert!(attention_map(&Tensor::zeros(&[2, 6])).unwrap_err().to_string().contains("attention_map"));
        assert!(at_loss(&x, &Tensor::zeros(&[2, 2, 3, 8])).is_ok());
    }
}
