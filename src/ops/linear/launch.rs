//! The device launcher of the linear layer's matrix products (`kernels/gemm.cu`).

use crate::cuda::exec::{Arg, Exec};
use crate::cuda::launch::{expect_len, fits, non_empty, tiles};
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
    [n, k, m]: [usize; 3],
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda linear";
    non_empty(OP, "product", n * k * m)?;
    fits(OP, &[("input elements", n * k), ("weight elements", m * k), ("output elements", n * m)])?;
    let (n_, k_, m_) = (n as i32, k as i32, m as i32);
    let (p, a_len, b_len) = match product {
        LinearProduct::Forward => {
            (GemmParams { m: n_, n: m_, k: k_, a_row: k_, a_col: 1, b_row: 1, b_col: k_ }, n * k, m * k)
        }
        LinearProduct::BackwardData => {
            (GemmParams { m: n_, n: k_, k: m_, a_row: m_, a_col: 1, b_row: k_, b_col: 1 }, n * m, m * k)
        }
        LinearProduct::BackwardWeight => {
            (GemmParams { m: m_, n: k_, k: n_, a_row: 1, a_col: m_, b_row: k_, b_col: 1 }, n * m, n * k)
        }
    };
    expect_len(e, OP, "first operand", a, a_len)?;
    expect_len(e, OP, "second operand", b, b_len)?;
    if let Some(bias) = bias {
        expect_len(e, OP, "bias", bias, p.n as usize)?;
    }
    let mut c = e.alloc(p.m as usize * p.n as usize)?;
    let bias = bias.map_or(Arg::Null, Arg::In);
    // SAFETY: gemm(GemmParams, a, b, bias, c) reads a and b through the strides above, which
    // stay inside the checked lengths, and writes the m x n output.
    unsafe {
        e.launch(
            "gemm",
            tiles(OP, p.m as usize, p.n as usize, 1)?,
            &p,
            &mut [Arg::In(a), Arg::In(b), bias, Arg::Out(&mut c)],
        )?;
    }
    Ok(c)
}
