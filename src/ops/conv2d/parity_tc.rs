//! Parity of the tensor-core convolution kernels (`kernels/conv2d_tf32.cu`,
//! `kernels/conv2d_bf16.cu`) twice over: with the fp32 CPU path ([`cpu`]) within an operand
//! rounding tolerance ([`rounding_dot`]), and with an f64 reference on operands rounded to the
//! precision first ([`rounded_reference`]) within an accumulation-order tolerance ([`sum_order`]),
//! which shows the only error beyond the operand rounding is the order of the fp32 sums.
//!
//! The tolerances and their derivation: [`mod@crate::ops::precision::parity`].
//! Backward data counts `k = KH * KW * C_out` and backward weight `k = N * H_out * W_out`
//! (padding and stride only shorten the sums).

use super::launch::ConvProduct::{BackwardData, BackwardWeight, Forward};
use super::parity::{CASES, EvalNorm, compare_trained};
use super::tensor_core::{
    conv2d_backward_data_into_tc, conv2d_backward_tc, conv2d_forward_bn_tc, conv2d_forward_stats_tc,
    conv2d_tc,
};
use super::{ConvGeometry, cpu};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};
use crate::ops::precision::Precision;
use crate::ops::precision::parity::{rounding_dot, sum_order};

/// After the fp32 kernels' awkward shapes ([`CASES`]: sizes 1, odd channels, a 64-wide tile,
/// tile - 1 and + 1, stride 2 with batch 3, 768 pixels, a strided 1x1), the ResNet-20 widths 16,
/// 32 and 64 at small spatial sizes: the stem (3 -> 16), each width's 3x3 stride 1,
/// the stride-2 3x3 and 1x1 of the downsampling blocks, and 512 pixels at width 16 (two weight
/// gradient slices on the vector path).
const RESNET_CASES: [([usize; 4], [usize; 2], usize, usize); 7] = [
    ([1, 8, 8, 3], [16, 3], 1, 1),
    ([2, 8, 8, 16], [16, 3], 1, 1),
    ([2, 8, 8, 16], [32, 3], 2, 1),
    ([2, 8, 8, 16], [32, 1], 2, 0),
    ([2, 6, 6, 32], [32, 3], 1, 1),
    ([2, 6, 6, 32], [64, 3], 2, 1),
    ([2, 4, 4, 64], [64, 3], 1, 1),
];

/// `[y, dx, dw]` of the convolution of geometry `g` (no bias) with `x`, `w` and `dy` rounded to
/// precision `p` first, summed in f64: `y` as [`cpu::forward`], `dx` as [`cpu::backward_data`], `dw` as
/// [`cpu::backward_weight`] lay them out.
pub fn rounded_reference(g: &ConvGeometry, p: Precision, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f32>; 3] {
    let r = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| f64::from(p.round(v))).collect() };
    let (x, w, dy) = (r(x), r(w), r(dy));
    let (mut y, mut dx, mut dw) =
        (vec![0f64; g.n * g.out_image_len()], vec![0f64; g.n * g.in_image_len()], vec![0f64; w.len()]);
    let taps = g.kh * g.kw;
    for n in 0..g.n {
        for (oh, ow) in (0..g.h_out).flat_map(|oh| (0..g.w_out).map(move |ow| (oh, ow))) {
            let out = ((n * g.h_out + oh) * g.w_out + ow) * g.c_out;
            for (kh, kw) in (0..g.kh).flat_map(|kh| (0..g.kw).map(move |kw| (kh, kw))) {
                let (ih, iw) =
                    ((oh * g.stride + kh).wrapping_sub(g.pad), (ow * g.stride + kw).wrapping_sub(g.pad));
                if ih >= g.h || iw >= g.w {
                    continue;
                }
                let at = ((n * g.h + ih) * g.w + iw) * g.c_in;
                for co in 0..g.c_out {
                    for ci in 0..g.c_in {
                        let wi = (co * g.c_in + ci) * taps + kh * g.kw + kw;
                        y[out + co] += x[at + ci] * w[wi];
                        dx[at + ci] += dy[out + co] * w[wi];
                        dw[wi] += dy[out + co] * x[at + ci];
                    }
                }
            }
        }
    }
    [y, dx, dw].map(|v| v.into_iter().map(|v| v as f32).collect())
}

/// 2 304 output pixels: 36 row tiles, two groups of the statistics' merge.
const TWO_GROUPS: ([usize; 4], [usize; 2], usize, usize) = ([2, 36, 32, 4], [8, 3], 1, 1);

/// Every tensor-core convolution kernel, TF32 and bf16, on every case: the forward with and
/// without bias, the data gradient written and added into a gradient, the weight gradient; each
/// against the fp32 CPU path and the rounded reference; the fused forwards against the plain
/// forward's output and the CPU batch norm on it. The generator's state is restored
/// afterwards, so the suites after this one draw the inputs they would without it.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let saved = cx.rng.clone();
    let result = [Precision::Tf32, Precision::Bf16].into_iter().try_for_each(|p| {
        CASES.into_iter().chain(RESNET_CASES).try_for_each(|case| run_case(cx, p, case))?;
        let ([n, h, w, ci], [co, k], stride, pad) = TWO_GROUPS;
        let g = ConvGeometry::new("parity", &[n, h, w, ci], &[co, ci, k, k], stride, pad)?;
        let (x, wt) = (cx.normal(n * h * w * ci), cx.normal(co * ci * k * k));
        let (xb, wb) = (cx.up(&x)?, cx.up(&wt)?);
        epilogues(cx, p, &g, "two statistics groups", [&xb, &wb])
    });
    cx.rng = saved;
    result
}

/// The kernel names of precision `p`: forward, backward data, backward weight, forward with
/// statistics, forward with batch norm, both gradients.
fn kernel_names(p: Precision) -> [&'static str; 6] {
    const TF32: [&str; 6] = [
        "conv2d_forward_tf32",
        "conv2d_backward_data_tf32",
        "conv2d_backward_weight_tf32",
        "conv2d_forward_stats_tf32",
        "conv2d_forward_bn_tf32",
        "conv2d_backward_tf32",
    ];
    const BF16: [&str; 6] = [
        "conv2d_forward_bf16",
        "conv2d_backward_data_bf16",
        "conv2d_backward_weight_bf16",
        "conv2d_forward_stats_bf16",
        "conv2d_forward_bn_bf16",
        "conv2d_backward_bf16",
    ];
    if p == Precision::Bf16 { BF16 } else { TF32 }
}

fn run_case<E: Exec>(
    cx: &mut Ctx<'_, E>,
    p: Precision,
    ([n, h, w, ci], [co, k], stride, pad): ([usize; 4], [usize; 2], usize, usize),
) -> Result<()> {
    let g = ConvGeometry::new("parity", &[n, h, w, ci], &[co, ci, k, k], stride, pad)?;
    let case = format!("x[{n},{h},{w},{ci}] w[{co},{ci},{k},{k}] s{stride} p{pad}");
    let (x, wt, b) = (cx.normal(n * h * w * ci), cx.normal(co * ci * k * k), cx.normal(co));
    let dy = cx.normal(n * g.out_image_len());
    let (xb, wb, bb, dyb) = (cx.up(&x)?, cx.up(&wt)?, cx.up(&b)?, cx.up(&dy)?);
    let [ry, rdx, rdw] = rounded_reference(&g, p, &x, &wt, &dy);
    let (k_fwd, k_data, k_weight) = (g.k(), k * k * co, n * g.h_out * g.w_out);
    let dot = |k| rounding_dot(p, k);
    let [fwd, data, weight, .., both] = kernel_names(p);

    let y = conv2d_tc(cx.e, &g, p, Forward, [&xb, &wb], Some(&bb))?;
    cx.compare(fwd, &case, &y, &cpu::forward(&g, &x, &wt, Some(&b)), dot(k_fwd))?;
    let want: Vec<f32> = ry.iter().enumerate().map(|(i, v)| v + b[i % co]).collect();
    cx.compare(fwd, &format!("{case} rounded"), &y, &want, sum_order(k_fwd))?;
    let y = conv2d_tc(cx.e, &g, p, Forward, [&xb, &wb], None)?;
    cx.compare(fwd, &format!("{case} no bias"), &y, &cpu::forward(&g, &x, &wt, None), dot(k_fwd))?;
    cx.compare(fwd, &format!("{case} no bias rounded"), &y, &ry, sum_order(k_fwd))?;
    epilogues(cx, p, &g, &case, [&xb, &wb])?;

    let dx = conv2d_tc(cx.e, &g, p, BackwardData, [&dyb, &wb], None)?;
    let want_dx = cpu::backward_data(&g, &dy, &wt);
    cx.compare(data, &case, &dx, &want_dx, dot(k_data))?;
    cx.compare(data, &format!("{case} rounded"), &dx, &rdx, sum_order(k_data))?;
    // Added into a gradient so far: x, which has dx's shape.
    let mut sum = cx.up(&x)?;
    conv2d_backward_data_into_tc(cx.e, &g, p, [&dyb, &wb], &mut sum)?;
    let plus = |d: &[f32]| -> Vec<f32> { x.iter().zip(d).map(|(a, d)| a + d).collect() };
    cx.compare(data, &format!("{case} +="), &sum, &plus(&want_dx), dot(k_data))?;
    cx.compare(data, &format!("{case} += rounded"), &sum, &plus(&rdx), sum_order(k_data))?;

    let dw = conv2d_tc(cx.e, &g, p, BackwardWeight, [&xb, &dyb], None)?;
    cx.compare(weight, &case, &dw, &cpu::backward_weight(&g, &x, &dy), dot(k_weight))?;
    cx.compare(weight, &format!("{case} rounded"), &dw, &rdw, sum_order(k_weight))?;

    // Both gradients in one launch: the separate kernels' values bit for bit, written and added.
    let (want_dx, want_sum, want_dw) = (cx.e.download(&dx)?, cx.e.download(&sum)?, cx.e.download(&dw)?);
    let mut fresh = cx.up(&vec![f32::NAN; want_dx.len()])?;
    let dw_both = conv2d_backward_tc(cx.e, &g, p, [&xb, &dyb, &wb], &mut fresh, false)?;
    cx.compare(both, &format!("{case} dx"), &fresh, &want_dx, Tol::EXACT)?;
    cx.compare(both, &format!("{case} dw"), &dw_both, &want_dw, Tol::EXACT)?;
    let mut added = cx.up(&x)?;
    conv2d_backward_tc(cx.e, &g, p, [&xb, &dyb, &wb], &mut added, true)?;
    cx.compare(both, &format!("{case} dx +="), &added, &want_sum, Tol::EXACT)
}

/// The fused forwards at precision `p` against the plain tensor-core forward's output `z`: the
/// statistics kernel's `y` is `z` bit for bit (the same products in the same order) and its mean
/// and variance the CPU's of `z`; the evaluation batch norm (+ residual, ReLU) is the CPU's on `z`
/// up to the rounding of its few operations.
fn epilogues<E: Exec>(
    cx: &mut Ctx<'_, E>,
    p: Precision,
    g: &ConvGeometry,
    case: &str,
    [xb, wb]: [&E::Buf<f32>; 2],
) -> Result<()> {
    let z = cx.e.download(&conv2d_tc(cx.e, g, p, Forward, [xb, wb], None)?)?;
    let [.., stats_kernel, bn_kernel, _] = kernel_names(p);
    let got = conv2d_forward_stats_tc(cx.e, g, p, [xb, wb])?;
    compare_trained(cx, stats_kernel, case, &got, &z, g.c_out, Tol::EXACT)?;
    let norm = EvalNorm::new(cx, &z, g.c_out)?;
    let got = conv2d_forward_bn_tc(cx.e, g, p, [xb, wb], &norm.affine(), norm.stats())?;
    let tol = Tol { atol: 1e-6, rtol: 1e-6 };
    cx.compare(bn_kernel, &format!("{case} +residual relu"), &got, &norm.want, tol)
}
