//! The device launchers of the activations (`kernels/elementwise.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::builtin::map_params;
use crate::cuda::launch::{flat, output};
use crate::error::Result;

/// `y = x` where `x > 0`, `slope * x` elsewhere: `crate::ops::activation::cpu::forward`.
pub fn leaky_relu_forward<E: Exec>(e: &E, slope: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let len = e.len(x);
    let p = map_params("cuda leaky_relu_forward", len, 0, slope)?;
    output(e, len, |y| kernels::leaky_relu_forward(e, flat(len), &p, x, y))
}

/// `dx = dy` where `x > 0`, `slope * dy` elsewhere: `crate::ops::activation::cpu::backward`.
pub fn leaky_relu_backward<E: Exec>(
    e: &E,
    slope: f32,
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let len = e.len(x);
    let p = map_params("cuda leaky_relu_backward", len, 0, slope)?;
    output(e, len, |dx| kernels::leaky_relu_backward(e, flat(len), &p, x, dy, dx))
}
