//! Parity of the linear layer's tensor-core GEMM (`kernels/gemm_tc.cu`), each of its three
//! products at TF32 and at bf16, twice over: with the fp32 CPU path (`cpu`) within the operand
//! rounding's tolerance ([`rounding_dot`]), and with an f64 reference on operands rounded to the
//! format first ([`Precision::round`]) within the tolerance of another order of the fp32 sums
//! ([`sum_order`]), which shows the only error beyond the operand rounding is that order.
//!
//! The tolerances and their derivation: [`mod@crate::ops::precision::parity`]. The reduction
//! is `k` inputs in the forward, `m` outputs in the data gradient and the batch `n` in the weight
//! gradient.

use super::cpu::{self, Sizes};
use super::launch::LinearProduct::{self, BackwardData, BackwardWeight, Forward};
use super::reference;
use super::tensor_core::linear_tc;
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};
use crate::ops::precision::Precision;
use crate::ops::precision::parity::{rounding_dot, sum_order};

/// `[n, k, m]`: sizes 1; a classifier head (64 -> 10, batch 3); tile - 1 and + 1 in every
/// dimension of every product; reductions that are not a multiple of 8 or 16 in every product
/// (k = 24 is a multiple of 8, not of 16); the widest head (640 -> 100, batch 128).
const CASES: [[usize; 3]; 7] =
    [[1, 1, 1], [3, 64, 10], [65, 63, 65], [63, 65, 63], [9, 24, 7], [33, 37, 17], [128, 640, 100]];

/// Small integers at these sizes: every operand, product and fp32 sum is exact in either format,
/// so each product equals the CPU path's bit for bit.
const EXACT: [usize; 3] = [65, 37, 66];

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
