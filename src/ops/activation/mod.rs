//! ReLU, LeakyReLU and ReLU6, elementwise on a tensor of any shape.
//!
//! `leaky_relu(x, a) = x` where `x > 0` and `a * x` elsewhere; `relu = leaky_relu(., 0)`.
//! Backward: `dx = dy` where `x > 0` and `a * dy` elsewhere (at `x = 0` the left slope, as PyTorch).
//! `relu6(x) = min(max(x, 0), 6)`; backward `dx = dy` where `0 < x < 6`, zero elsewhere (PyTorch's
//! hardtanh rule: no gradient at the kinks).

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::error::{Error, Result};
use crate::ops::map_on_tracked_x;
use crate::tensor::Tensor;

/// `max(x, 0)` elementwise (NaN stays NaN).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    activate(x, 0.0)
}

/// `x` where `x > 0`, `slope * x` elsewhere; `slope` must be finite (PyTorch's default is 0.01).
pub fn leaky_relu(x: &Tensor, slope: f32) -> Result<Tensor> {
    if !slope.is_finite() {
        return Err(Error::invalid("leaky_relu", format!("slope {slope} is not finite")));
    }
    activate(x, slope)
}

/// `min(max(x, 0), 6)` elementwise (NaN stays NaN), MobileNetV2's activation in torchvision.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    map_on_tracked_x(
        x,
        x.shape(),
        |x| cpu::clamp_forward(x, 6.0),
        |g, x| launch::clamp_forward(g, 6.0, x),
        "relu6 backward",
        move |x, dy| cpu::clamp_backward(x, dy, 6.0),
        move |g, x, dy| launch::clamp_backward(g, 6.0, x, dy),
    )
}

fn activate(x: &Tensor, slope: f32) -> Result<Tensor> {
    map_on_tracked_x(
        x,
        x.shape(),
        |x| cpu::forward(x, slope),
        |g, x| launch::leaky_relu_forward(g, slope, x),
        "leaky_relu backward",
        move |x, dy| cpu::backward(x, dy, slope),
        move |g, x, dy| launch::leaky_relu_backward(g, slope, x, dy),
    )
}

/// The CPU kernels, rayon over fixed-size chunks of elements.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Elements per rayon task.
    const CHUNK: usize = 1 << 14;

    /// `f(x)` of every element, rayon over chunks.
    fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
        let mut y = vec![0.0; x.len()];
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &v)| *y = f(v));
        });
        y
    }

    /// `f(x, dy)` of every pair of elements, rayon over chunks.
    fn map2(x: &[f32], dy: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
        let mut dx = vec![0.0; x.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .zip(dy.par_chunks(CHUNK))
            .for_each(|((dx, x), dy)| dx.iter_mut().zip(x).zip(dy).for_each(|((d, &v), &g)| *d = f(v, g)));
        dx
    }

    /// `y = x` where `x > 0`, `slope * x` elsewhere.
    pub(crate) fn forward(x: &[f32], slope: f32) -> Vec<f32> {
        map(x, |v| if v > 0.0 { v } else { slope * v })
    }

    /// `dx = dy` where `x > 0`, `slope * dy` elsewhere.
    pub(crate) fn backward(x: &[f32], dy: &[f32], slope: f32) -> Vec<f32> {
        map2(x, dy, |v, g| if v > 0.0 { g } else { slope * g })
    }

    /// `y = min(max(x, 0), top)`; NaN stays NaN.
    pub(crate) fn clamp_forward(x: &[f32], top: f32) -> Vec<f32> {
        map(x, |v| {
            if v < 0.0 {
                0.0
            } else if v > top {
                top
            } else {
                v
            }
        })
    }

    /// `dx = dy` where `0 < x < top`, zero elsewhere.
    pub(crate) fn clamp_backward(x: &[f32], dy: &[f32], top: f32) -> Vec<f32> {
        map2(x, dy, |v, g| if v > 0.0 && v < top { g } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::autograd;

    #[test]
    fn leaky_relu_rejects_non_finite_slope() {
        let x = Tensor::zeros(&[2, 3]);
        let err = leaky_relu(&x, f32::NAN).unwrap_err().to_string();
        assert!(err.starts_with("leaky_relu:"), "{err}");
    }

    #[test]
    fn values_and_gradient_at_the_kink() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 3.0], &[3]).unwrap().into_param();
        let y = leaky_relu(&x, 0.1).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![-0.2, 0.0, 3.0]);
        let g = autograd::backward_with(&y, Tensor::full(&[3], 1.0)).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![0.1, 0.1, 1.0]);
        assert_eq!(relu(&x).unwrap().to_vec().unwrap(), vec![0.0, 0.0, 3.0]);
        autograd::clear_tape();
    }

    #[test]
    fn relu6_clamps_and_passes_gradient_strictly_inside() {
        let x = Tensor::from_vec(vec![-1.0, 0.0, 2.5, 6.0, 7.0], &[5]).unwrap().into_param();
        let y = relu6(&x).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![0.0, 0.0, 2.5, 6.0, 6.0]);
        let g = autograd::backward_with(&y, Tensor::full(&[5], 1.0)).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
        assert!(
            relu6(&Tensor::from_vec(vec![f32::NAN], &[1]).unwrap()).unwrap().to_vec().unwrap()[0].is_nan()
        );
        autograd::clear_tape();
    }
}
