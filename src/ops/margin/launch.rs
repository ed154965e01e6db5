//! The device launchers of the margin ReLU (`kernels/overhaul.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{fits, flat, non_empty, output};
use crate::cuda::params::RowParams;
use crate::error::Result;

fn params(op: &'static str, [rows, c]: [usize; 2]) -> Result<RowParams> {
    non_empty(op, "input", rows * c)?;
    fits(op, &[("elements", rows * c)])?;
    Ok(RowParams { rows: rows as i32, cols: c as i32, mode: 0, a: 0.0 })
}

/// `y = max(x, margin[c])` over `rows` rows of `c` channels: `crate::ops::margin::cpu::forward`.
pub fn margin_relu_forward<E: Exec>(
    e: &E,
    dims: [usize; 2],
    x: &E::Buf<f32>,
    margin: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = params("cuda margin_relu_forward", dims)?;
    let len = dims[0] * dims[1];
    output(e, len, |y| kernels::margin_relu_forward(e, flat(len), &p, x, margin, y))
}

/// `dx = dy * [x > margin[c]]`: `crate::ops::margin::cpu::backward`.
pub fn margin_relu_backward<E: Exec>(
    e: &E,
    dims: [usize; 2],
    [x, margin, dy]: [&E::Buf<f32>; 3],
) -> Result<E::Buf<f32>> {
    let p = params("cuda margin_relu_backward", dims)?;
    let len = dims[0] * dims[1];
    output(e, len, |dx| kernels::margin_relu_backward(e, flat(len), &p, x, margin, dy, dx))
}
