//! The device launcher of the hit count (`kernels/losses.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::builtin::column_sums;
use crate::cuda::launch::{expect_len, fits, flat, non_empty, output};
use crate::cuda::params::RowParams;
use crate::error::Result;

/// The number of rows of `z: [rows, k]` whose first largest entry is at `labels[row]`, one
/// element: `crate::ops::accuracy::cpu::hits` summed.
pub fn count_correct<E: Exec>(
    e: &E,
    [rows, k]: [usize; 2],
    z: &E::Buf<f32>,
    labels: &E::Buf<i32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda count_correct";
    non_empty(OP, "logits", rows * k)?;
    fits(OP, &[("elements", rows * k)])?;
    expect_len(e, OP, "labels", labels, rows)?;
    let p = RowParams { rows: rows as i32, cols: k as i32, mode: 0, a: 0.0 };
    let hits = output(e, rows, |hit| kernels::argmax_hits(e, flat(rows), &p, z, labels, hit))?;
    column_sums(e, rows, 1, 1.0, &hits)
}
