//! The backend's builtins, used below the ops (copies of tensors, the tape's gradient sums) and by
//! the arithmetic ops and losses: elementwise add and multiply, the add in place, scaling
//! (`kernels/elementwise.cu`) and column sums (`kernels/gemm.cu`).

use super::{channel_blocks, expect_len, fits, flat, non_empty, output};
use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::params::{MapParams, RowParams};
use crate::error::Result;

/// The parameters of an elementwise kernel over `len` values, after checking the sizes.
fn map_params(op: &'static str, len: usize, mode: i32, a: f32) -> Result<MapParams> {
    non_empty(op, "input", len)?;
    fits(op, &[("elements", len)])?;
    Ok(MapParams { len: len as i32, mode, a })
}

/// An elementwise operation of two tensors of one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`: the CPU `add` of the arithmetic ops.
    Add = 0,
    /// `a * b`: the CPU `mul` of the arithmetic ops.
    Mul = 1,
}

/// A fresh output of an elementwise kernel over `len` values with `mode` and the scalar `a`:
/// `launch` runs the kernel with the launch shape and parameters it is given. `op` names the
/// launcher in errors.
pub fn elementwise<E: Exec>(
    e: &E,
    op: &'static str,
    len: usize,
    (mode, a): (i32, f32),
    launch: impl FnOnce(Grid, &MapParams, &mut E::Buf<f32>) -> Result<()>,
) -> Result<E::Buf<f32>> {
    let p = map_params(op, len, mode, a)?;
    output(e, len, |y| launch(flat(len), &p, y))
}

/// `a + b` or `a * b`, elementwise.
pub fn binary<E: Exec>(e: &E, op: Binary, a: &E::Buf<f32>, b: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let launch = |g, p: &_, y: &mut _| kernels::binary_map(e, g, p, a, b, y);
    elementwise(e, "cuda binary_map", e.len(a), (op as i32, 0.0), launch)
}

/// `y += x`, elementwise and in place: the tape's sum of a second gradient into the buffer of the
/// first, the same values as [`binary`] with [`Binary::Add`] of `y` and `x`.
pub fn add_into<E: Exec>(e: &E, x: &E::Buf<f32>, y: &mut E::Buf<f32>) -> Result<()> {
    const OP: &str = "cuda add_into";
    let len = e.len(y);
    expect_len(e, OP, "the addend", x, len)?;
    let p = map_params(OP, len, 0, 0.0)?;
    kernels::add_into(e, flat(len), &p, x, y)
}

/// `s * x`: the CPU `scale` of the arithmetic ops.
pub fn scale<E: Exec>(e: &E, s: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    elementwise(e, "cuda scale_values", e.len(x), (0, s), |g, p, y| kernels::scale_values(e, g, p, x, y))
}

/// `out[j] = scale * sum_i x[i, j]` for `x: [rows, cols]`: bias gradients
/// (the CPU `column_sums` of `cpu::reduce` with `scale = 1`) and batch means of per-row losses.
pub fn column_sums<E: Exec>(
    e: &E,
    rows: usize,
    cols: usize,
    scale: f32,
    x: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda column_sums";
    non_empty(OP, "matrix", rows * cols)?;
    fits(OP, &[("elements", rows * cols)])?;
    let p = RowParams { rows: rows as i32, cols: cols as i32, mode: 0, a: scale };
    output(e, cols, |out| kernels::column_sums(e, channel_blocks(OP, cols, 1)?, &p, x, out))
}
