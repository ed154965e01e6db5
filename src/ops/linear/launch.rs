//! The device launcher of the linear layer's matrix products (`kernels/gemm.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{fits, non_empty, output, tiles};
use crate::cuda::params::GemmParams;
use crate::error::Result;

/// Which product of the linear layer `y = x W^T + b` (`x: [n, k]`, `W: [m, k]`) to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearProduct {
    /// `y = x W^T (+ b)`, `[n, m]`: `crate::ops::linear::cpu::forward`.
    Forward,
    /// `dx = dy W`, `[n, k]`: `crate::ops::linear::cpu::backward_data`.
    BackwardData,
    /// `dW = dy^T x`, `[m, k]`: `crate::ops::linear::cpu::backward_weight`.
    BackwardWeight,
}

/// One product of the linear layer with `n` rows, `k` inputs and `m` outputs, as a strided GEMM:
/// `Forward` takes `(x, W)` and the optional bias, `BackwardData` `(dy, W)`, `BackwardWeight`
/// `(dy, x)`.
pub fn linear<E: Exec>(
    e: &E,
    product: LinearProduct,
    sizes: [usize; 3],
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda linear";
    let p = gemm_params(OP, product, sizes)?;
    let (rows, cols) = (p.m as usize, p.n as usize);
    output(e, rows * cols, |c| kernels::gemm(e, tiles(OP, rows, cols, 1)?, &p, a, b, bias, c))
}

/// The strided GEMM of `product` for sizes `[n, k, m]` (`c` is `[p.m, p.n]`), once the sizes are
/// checked: a non-empty product within the kernels' 32-bit indexing.
pub(super) fn gemm_params(
    op: &'static str,
    product: LinearProduct,
    [n, k, m]: [usize; 3],
) -> Result<GemmParams> {
    non_empty(op, "product", n * k * m)?;
    fits(op, &[("input elements", n * k), ("weight elements", m * k), ("output elements", n * m)])?;
    let (n_, k_, m_) = (n as i32, k as i32, m as i32);
    Ok(match product {
        LinearProduct::Forward => {
            GemmParams { m: n_, n: m_, k: k_, a_row: k_, a_col: 1, b_row: 1, b_col: k_ }
        }
        LinearProduct::BackwardData => {
            GemmParams { m: n_, n: k_, k: m_, a_row: m_, a_col: 1, b_row: k_, b_col: 1 }
        }
        LinearProduct::BackwardWeight => {
            GemmParams { m: m_, n: k_, k: n_, a_row: 1, a_col: m_, b_row: k_, b_col: 1 }
        }
    })
}
