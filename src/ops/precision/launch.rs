//! The device launcher of the operand rounding (`round_values` in `kernels/elementwise.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::builtin::elementwise;
use crate::error::Result;

/// `x` with every value rounded to the operand format of `mode` (1: TF32, 2: bf16): on the CPU,
/// [`super::Precision::round`].
pub fn round<E: Exec>(e: &E, mode: i32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    elementwise(e, "cuda round_values", e.len(x), (mode, 0.0), |g, p, y| kernels::round_values(e, g, p, x, y))
}
