//! The device launchers of the activations (`kernels/elementwise.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::builtin::elementwise;
use crate::error::Result;

/// `y = x` where `x > 0`, `slope * x` elsewhere: `crate::ops::activation::cpu::forward`.
pub fn leaky_relu_forward<E: Exec>(e: &E, slope: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let launch = |g, p: &_, y: &mut _| kernels::leaky_relu_forward(e, g, p, x, y);
    elementwise(e, "cuda leaky_relu_forward", e.len(x), (0, slope), launch)
}

/// `dx = dy` where `x > 0`, `slope * dy` elsewhere: `crate::ops::activation::cpu::backward`.
pub fn leaky_relu_backward<E: Exec>(
    e: &E,
    slope: f32,
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let launch = |g, p: &_, dx: &mut _| kernels::leaky_relu_backward(e, g, p, x, dy, dx);
    elementwise(e, "cuda leaky_relu_backward", e.len(x), (0, slope), launch)
}

/// `y = min(max(x, 0), top)`: `crate::ops::activation::cpu::clamp_forward`.
pub fn clamp_forward<E: Exec>(e: &E, top: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let launch = |g, p: &_, y: &mut _| kernels::clamp_forward(e, g, p, x, y);
    elementwise(e, "cuda clamp_forward", e.len(x), (0, top), launch)
}

/// `dx = dy` where `0 < x < top`, zero elsewhere: `crate::ops::activation::cpu::clamp_backward`.
pub fn clamp_backward<E: Exec>(e: &E, top: f32, x: &E::Buf<f32>, dy: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let launch = |g, p: &_, dx: &mut _| kernels::clamp_backward(e, g, p, x, dy, dx);
    elementwise(e, "cuda clamp_backward", e.len(x), (0, top), launch)
}
