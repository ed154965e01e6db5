//! Parity of the linear layer's tensor-core GEMM (`kernels/gemm_tc.cu`), each of its three
//! products at TF32 and at bf16, twice over: with the fp32 CPU path (`cpu`) within the operand
//! rounding's tolerance ([`rounding_dot`]), and with an f64 reference on operands rounded to the
//! format first ([`Precision::round`]) within the tolerance of another order of the fp32 sums
//! ([`sum_order`]), which shows the only error beyond the operand rounding is that order.
//!
//! The rounding tolerance. A format with unit roundoff `u` (TF32: `2^-11`, `cvt.rna`; bf16:
//! `2^-8`, to nearest even) stores each operand as `v (1 + d)` with `|d| <= u`, so a product of
//! two is `x w (1 + d1 + d2 + d1 d2)`, at most `2u (1 + u / 2)` relative: `e_i = x_i w_i (d1 +
//! d2)`. Over a reduction of length `k` the error is `sum_i e_i`. For N(0, 1) operands the `d`
//! are near-independent and uniform on `[-u, u]` (variance `u^2 / 3`) and `E[x^2 w^2] = 1`, so
//! `Var(sum e_i) ~ k 2 u^2 / 3`: a standard deviation `0.82 u sqrt(k) = 0.41 (2u) sqrt(k)`. The
//! largest of a few thousand outputs lies within about 4 standard deviations; `atol = 3 (2u)
//! sqrt(k)` is over 7, so a pass is not luck, while a wrong row or column (an error of order 1)
//! fails by far. On top come the fp32 summation in another order (`Tol::dot`'s `1e-6 k`) and, for
//! short sums where the statistics say little (k = 1), the worst case relative to the value:
//! `rtol = 2u`. With `2u = 2^-10` (TF32) this is
//! [`tf32_dot`](crate::ops::conv2d::parity_tf32::tf32_dot); bf16 has `2u = 2^-7`. The reduction
//! is `k` inputs in the forward, `m` outputs in the data gradient and the batch `n` in the weight
//! gradient.

use super::cpu::{self, Sizes};
use super::launch::LinearProduct::{self, BackwardData, BackwardWeight, Forward};
use super::reference;
use super::tensor_core::linear_tc;
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};
use crate::ops::conv2d::parity_tf32::sum_order;
use crate::ops::precision::Precision;

/// `[n, k, m]`: sizes 1; a classifier head (64 -> 10, batch 3); tile - 1 and + 1 in every
/// dimension of every product; reductions that are not a multiple of 8 or 16 in every product
/// (k = 24 is a multiple of 8, not of 16); the widest head (640 -> 100, batch 128).
const CASES: [[usize; 3]; 7] =
    [[1, 1, 1], [3, 64, 10], [65, 63, 65], [63, 65, 63], [9, 24, 7], [33, 37, 17], [128, 640, 100]];

/// Small integers at these sizes: every operand, product and fp32 sum is exact in either format,
/// so each product equals the CPU path's bit for bit.
const EXACT: [usize; 3] = [65, 37, 66];

/// Against the fp32 CPU path: the rounding of the operands to `p` over a sum of `k` products of
/// N(0, 1) values (the derivation is in the module comment), plus fp32 summation in another order.
pub fn rounding_dot(p: Precision, k: usize) -> Tol {
    let unit = 2.0 * p.unit_roundoff();
    Tol { atol: 3.0 * unit * (k as f32).sqrt() + 1e-6 * k as f32, rtol: unit }
}

/// The kernel of precision `p`, named with the product it ran.
fn kernel(p: Precision, product: LinearProduct) -> &'static str {
    match (p, product) {
        (Precision::Bf16, Forward) => "gemm_bf16 (linear forward)",
        (Precision::Bf16, BackwardData) => "gemm_bf16 (linear dx)",
        (Precision::Bf16, BackwardWeight) => "gemm_bf16 (linear dw)",
        (_, Forward) => "gemm_tf32 (linear forward)",
        (_, BackwardData) => "gemm_tf32 (linear dx)",
        (_, BackwardWeight) => "gemm_tf32 (linear dw)",
    }
}

/// `[y, dx, dw]` of the linear layer of sizes `g` with `x`, `w` and `dy` rounded to `p` first,
/// summed in f64 (`y` with the unrounded bias), laid out as `cpu` lays them out.
fn rounded_reference(p: Precision, g: &Sizes, [x, w, b, dy]: [&[f32]; 4]) -> [Vec<f32>; 3] {
    let r = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| f64::from(p.round(v))).collect() };
    let t = |v: &[f64], rows: usize| -> Vec<f64> {
        let cols = v.len() / rows;
        (0..cols * rows).map(|i| v[i % rows * cols + i / rows]).collect()
    };
    let (x, w, dy, b) = (r(x), r(w), r(dy), b.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    let y = reference::linear(&x, g.n, &w, g.m, Some(&b));
    let dx = reference::linear(&dy, g.n, &t(&w, g.m), g.k, None);
    let dw = reference::linear(&t(&dy, g.n), g.m, &t(&x, g.n), g.k, None);
    [y, dx, dw].map(|v| v.into_iter().map(|v| v as f32).collect())
}

/// Every product at TF32 and bf16 on every case, against the fp32 CPU path and the rounded
/// reference; then the exact small-integer case. The generator's state is restored afterwards, so
/// the suites after this one draw the inputs they would without it.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let saved = cx.rng.clone();
    let result = CASES.into_iter().try_for_each(|case| run_case(cx, case)).and_then(|()| exact(cx));
    cx.rng = saved;
    result
}

fn run_case<E: Exec>(cx: &mut Ctx<'_, E>, [n, k, m]: [usize; 3]) -> Result<()> {
    let g = Sizes { n, k, m };
    let (x, w, b, dy) = (cx.normal(n * k), cx.normal(m * k), cx.normal(m), cx.normal(n * m));
    let (xb, wb, bb, dyb) = (cx.up(&x)?, cx.up(&w)?, cx.up(&b)?, cx.up(&dy)?);
    let fp32 = [
        cpu::forward(&g, &x, &w, Some(&b)),
        cpu::backward_data(&g, &dy, &w),
        cpu::backward_weight(&g, &x, &dy),
    ];
    for p in [Precision::Tf32, Precision::Bf16] {
        let case = format!("x[{n},{k}] w[{m},{k}]");
        let rounded = rounded_reference(p, &g, [&x, &w, &b, &dy]);
        let runs = [
            (Forward, [&xb, &wb], Some(&bb), k),
            (BackwardData, [&dyb, &wb], None, m),
            (BackwardWeight, [&dyb, &xb], None, n),
        ];
        for (((product, [a, bm], bias, len), want), exact) in runs.into_iter().zip(&fp32).zip(&rounded) {
            let got = linear_tc(cx.e, p, product, [n, k, m], a, bm, bias)?;
            cx.compare(kernel(p, product), &case, &got, want, rounding_dot(p, len))?;
            cx.compare(kernel(p, product), &format!("{case} rounded"), &got, exact, sum_order(len))?;
        }
    }
    Ok(())
}

/// Small integers in `[-2, 2]`, a pattern that `seed` shifts.
pub(super) fn small_ints(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 5) as f32 - 2.0).collect()
}

/// The [`EXACT`] case: each product bit for bit the CPU path's, at both precisions.
fn exact<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let [n, k, m] = EXACT;
    let g = Sizes { n, k, m };
    let (x, w, b, dy) = (small_ints(n * k, 1), small_ints(m * k, 2), small_ints(m, 3), small_ints(n * m, 4));
    let (xb, wb, bb, dyb) = (cx.up(&x)?, cx.up(&w)?, cx.up(&b)?, cx.up(&dy)?);
    let case = format!("x[{n},{k}] w[{m},{k}] small integers");
    for p in [Precision::Tf32, Precision::Bf16] {
        let y = linear_tc(cx.e, p, Forward, EXACT, &xb, &wb, Some(&bb))?;
        cx.compare(kernel(p, Forward), &case, &y, &cpu::forward(&g, &x, &w, Some(&b)), Tol::EXACT)?;
        let dx = linear_tc(cx.e, p, BackwardData, EXACT, &dyb, &wb, None)?;
        cx.compare(kernel(p, BackwardData), &case, &dx, &cpu::backward_data(&g, &dy, &w), Tol::EXACT)?;
        let dw = linear_tc(cx.e, p, BackwardWeight, EXACT, &dyb, &xb, None)?;
        cx.compare(kernel(p, BackwardWeight), &case, &dw, &cpu::backward_weight(&g, &x, &dy), Tol::EXACT)?;
    }
    Ok(())
}
