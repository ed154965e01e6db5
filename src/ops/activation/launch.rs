//! The device launchers of the activations (`kernels/elementwise.cu`).

use crate::cuda::exec::{Arg, Exec};
use crate::cuda::launch::builtin::map_params;
use crate::cuda::launch::{expect_len, flat};
use crate::error::Result;

/// `y = x` where `x > 0`, `slope * x` elsewhere: `crate::ops::activation::cpu::forward`.
pub fn leaky_relu_forward<E: Exec>(e: &E, slope: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let len = e.len(x);
    let p = map_params("cuda leaky_relu_forward", len, 0, slope)?;
    let mut y = e.alloc(len)?;
    // SAFETY: leaky_relu_forward(MapParams, x, y) over len elements.
    unsafe { e.launch("leaky_relu_forward", flat(len), &p, &mut [Arg::In(x), Arg::Out(&mut y)])? };
    Ok(y)
}

/// `dx = dy` where `x > 0`, `slope * dy` elsewhere: `crate::ops::activation::cpu::backward`.
pub fn leaky_relu_backward<E: Exec>(
    e: &E,
    slope: f32,
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda leaky_relu_backward";
    let len = e.len(x);
    let p = map_params(OP, len, 0, slope)?;
    expect_len(e, OP, "output gradient", dy, len)?;
    let mut dx = e.alloc(len)?;
    // SAFETY: leaky_relu_backward(MapParams, x, dy, dx) over len elements.
    unsafe {
        e.launch("leaky_relu_backward", flat(len), &p, &mut [Arg::In(x), Arg::In(dy), Arg::Out(&mut dx)])?
    };
    Ok(dx)
}
