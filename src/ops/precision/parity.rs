//! Parity of the operand rounding with [`Precision::round`], bit for bit; and the tolerances of
//! the tensor-core products against the CPU ([`rounding_dot`], [`sum_order`]).
//!
//! The rounding tolerance. A rounded operand is `v (1 + d)` with `|d| <= u`, the unit roundoff:
//! `2^-11` for TF32 (`cvt.rna.tf32`, 10 explicit mantissa bits), `2^-8` for bf16 (7 bits, to
//! nearest even). A product of two is `x w (1 + d1 + d2 + d1 d2)`: at most `2u (1 + u / 2)`
//! relative, `e_i = x_i w_i (d1 + d2)`. Over a reduction of length `k` the error is `sum_i e_i`.
//! For N(0, 1) operands the `d` are near-independent and uniform on `[-u, u]` (variance
//! `u^2 / 3`) and `E[x^2 w^2] = 1`, so `Var(sum e_i) ~ k * 2 u^2 / 3`: a standard deviation
//! `0.82 u sqrt(k)`. The largest of a few thousand outputs lies within about 4 standard
//! deviations; `atol = 6 u sqrt(k)` (TF32: `3 * 2^-10 * sqrt(k)`, bf16: `3 * 2^-7 * sqrt(k)`) is
//! over 7, so a pass is not luck, while a wrong index (an error of order 1) fails by far. On top
//! come the fp32 summation in another order (`Tol::dot`'s `1e-6 k`) and, for short sums where the
//! statistics say little (k = 1), the worst case relative to the value: `rtol = 2u`.

use super::{Precision, launch};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Normal values over a wide range of magnitudes, the ties of both formats, zeros and a
/// subnormal, rounded to TF32 and to bf16 (infinities, NaN and overflow: the unit tests).
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let mut x: Vec<f32> =
        cx.normal(1000).iter().enumerate().map(|(i, v)| v * 2f32.powi(i as i32 % 60 - 30)).collect();
    x.extend([1.0 + 2f32.powi(-11), -(1.0 + 2f32.powi(-11)), 1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8)]);
    x.extend([0.0, -0.0, f32::MIN_POSITIVE / 3.0]);
    let xb = cx.up(&x)?;
    for p in [Precision::Tf32, Precision::Bf16] {
        let want: Vec<f32> = x.iter().map(|&v| p.round(v)).collect();
        let got = launch::round(cx.e, p.mode(), &xb)?;
        cx.compare("round_values", &format!("{p}, {} values", x.len()), &got, &want, Tol::EXACT)?;
    }
    Ok(())
}

/// Against the fp32 CPU path: operand rounding at precision `p` over a sum of `k` products of
/// N(0, 1) values (the derivation is in the module comment), plus fp32 summation in another order.
pub fn rounding_dot(p: Precision, k: usize) -> Tol {
    let unit = 2.0 * p.unit_roundoff();
    Tol { atol: 3.0 * unit * (k as f32).sqrt() + 1e-6 * k as f32, rtol: unit }
}

/// Against the f64 sum of the rounded operands' products, each exact in fp32: only the fp32
/// additions of the `k` products (and a bias or the gradient added into), in an order and an
/// internal precision the PTX ISA leaves open, about one fp32 ulp of the partial sums per term
/// (the tensor-core building blocks' `sum_tol`, src/verify/parity/tensor_core).
pub fn sum_order(k: usize) -> Tol {
    Tol { atol: 2e-6 * (k + 1) as f32, rtol: 1e-5 }
}
