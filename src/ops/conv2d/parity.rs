//! Parity of the convolution kernels, and of the column sums that give the bias gradient, with
//! [`cpu`]; the batch-norm epilogues with the CPU batch norm after [`cpu::forward`].

use super::launch::ConvProduct::{BackwardData, BackwardWeight, Forward};
use super::launch::{
    conv2d, conv2d_backward, conv2d_backward_data_into, conv2d_forward_bn, conv2d_forward_stats,
};
use super::{ConvGeometry, cpu};
use crate::cuda::exec::Exec;
use crate::cuda::launch::builtin::column_sums;
use crate::error::Result;
use crate::ops::batchnorm::cpu as bn;
use crate::ops::batchnorm::launch::{BnAffine, Trained};
use crate::ops::check::parity::{Ctx, Tol};

/// The batch statistics against the CPU's: sums over the pixels in another order.
const STATS: Tol = Tol { atol: 1e-4, rtol: 1e-4 };
/// `eps` of the evaluation epilogue's normalisation.
const EPS: f32 = 1e-5;

/// `[N, H, W, C_in]`, `[C_out, KH (= KW)]`, stride, padding: sizes 1; odd channels with H != W;
/// an exact 64 x 64 x 16 tile; tile - 1 (63 pixels, 63 = K); tile + 1 (65 pixels, 65 channels,
/// K = 153); stride 2 with batch 3; 768 pixels (three weight-gradient splits); a strided 1x1.
pub(super) const CASES: [([usize; 4], [usize; 2], usize, usize); 8] = [
    ([1, 1, 1, 1], [1, 1], 1, 0),
    ([2, 9, 7, 3], [5, 3], 1, 1),
    ([1, 8, 8, 16], [64, 1], 1, 0),
    ([1, 9, 7, 7], [63, 3], 1, 1),
    ([1, 5, 13, 17], [65, 3], 1, 1),
    ([3, 11, 10, 5], [7, 3], 2, 1),
    ([3, 16, 16, 5], [6, 3], 1, 1),
    ([2, 8, 6, 4], [3, 1], 2, 0),
];

/// Forward (with and without bias), backward data (also added into a gradient), backward weight
/// and the bias gradient on every case.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for ([n, h, w, ci], [co, k], stride, pad) in CASES {
        let g = ConvGeometry::new("parity", &[n, h, w, ci], &[co, ci, k, k], stride, pad)?;
        let case = format!("x[{n},{h},{w},{ci}] w[{co},{ci},{k},{k}] s{stride} p{pad}");
        let (x, wt, b) = (cx.normal(n * h * w * ci), cx.normal(co * ci * k * k), cx.normal(co));
        let dy = cx.normal(n * g.out_image_len());
        let (xb, wb, bb, dyb) = (cx.up(&x)?, cx.up(&wt)?, cx.up(&b)?, cx.up(&dy)?);
        let rows = n * g.h_out * g.w_out;

        let y = conv2d(cx.e, &g, Forward, [&xb, &wb], Some(&bb))?;
        cx.compare("conv2d_forward", &case, &y, &cpu::forward(&g, &x, &wt, Some(&b)), Tol::dot(g.k()))?;
        let y = conv2d(cx.e, &g, Forward, [&xb, &wb], None)?;
        cx.compare(
            "conv2d_forward",
            &format!("{case} no bias"),
            &y,
            &cpu::forward(&g, &x, &wt, None),
            Tol::dot(g.k()),
        )?;
        let dx = conv2d(cx.e, &g, BackwardData, [&dyb, &wb], None)?;
        let want_dx = cpu::backward_data(&g, &dy, &wt);
        cx.compare("conv2d_backward_data", &case, &dx, &want_dx, Tol::dot(k * k * co))?;
        // Added into a gradient so far: x, which has dx's shape.
        let mut sum = cx.up(&x)?;
        conv2d_backward_data_into(cx.e, &g, [&dyb, &wb], &mut sum)?;
        let want: Vec<f32> = x.iter().zip(&want_dx).map(|(a, d)| a + d).collect();
        cx.compare("conv2d_backward_data", &format!("{case} +="), &sum, &want, Tol::dot(k * k * co))?;
        let dw = conv2d(cx.e, &g, BackwardWeight, [&xb, &dyb], None)?;
        let want_dw = cpu::backward_weight(&g, &x, &dy);
        cx.compare("conv2d_backward_weight", &case, &dw, &want_dw, Tol::dot(rows))?;
        // Both gradients in one launch, the data gradient added into x.
        let mut sum = cx.up(&x)?;
        let dw = conv2d_backward(cx.e, &g, [&xb, &dyb, &wb], &mut sum, true)?;
        cx.compare("conv2d_backward", &format!("{case} dx +="), &sum, &want, Tol::dot(k * k * co))?;
        cx.compare("conv2d_backward", &format!("{case} dw"), &dw, &want_dw, Tol::dot(rows))?;
        epilogues(cx, &g, &case, [&x, &wt], [&xb, &wb])?;
        let db = column_sums(cx.e, rows, co, 1.0, &dyb)?;
        cx.compare(
            "column_sums (conv bias)",
            &case,
            &db,
            &crate::cpu::reduce::column_sums(co, &dy),
            Tol::dot(rows),
        )?;
    }
    Ok(())
}

/// The forward with the batch statistics of its output (against [`cpu::forward`] then the CPU
/// batch norm's statistics), and the forward with an evaluation-mode batch norm, residual add and
/// ReLU (against [`cpu::forward`] then the CPU normalisation).
fn epilogues<E: Exec>(
    cx: &mut Ctx<'_, E>,
    g: &ConvGeometry,
    case: &str,
    [x, wt]: [&[f32]; 2],
    [xb, wb]: [&E::Buf<f32>; 2],
) -> Result<()> {
    let z = cpu::forward(g, x, wt, None);
    let got = conv2d_forward_stats(cx.e, g, [xb, wb])?;
    compare_trained(cx, "conv2d_forward_stats", case, &got, &z, g.c_out, Tol::dot(g.k()))?;
    let norm = EvalNorm::new(cx, &z, g.c_out)?;
    let got = conv2d_forward_bn(cx.e, g, [xb, wb], &norm.affine(), norm.stats())?;
    // The convolution's rounding, scaled by the normalisation.
    let tol = Tol { atol: Tol::dot(g.k()).atol * norm.max_scale, rtol: 1e-5 };
    cx.compare("conv2d_forward_bn", &format!("{case} +residual relu"), &got, &norm.want, tol)
}

/// Compares a forward with batch statistics with the convolution output `z` of `c` channels
/// (within `y_tol`) and the CPU batch norm's statistics of `z` (within [`STATS`]).
pub(super) fn compare_trained<E: Exec>(
    cx: &mut Ctx<'_, E>,
    kernel: &'static str,
    case: &str,
    got: &Trained<E::Buf<f32>>,
    z: &[f32],
    c: usize,
    y_tol: Tol,
) -> Result<()> {
    cx.compare(kernel, case, &got.y, z, y_tol)?;
    let (mean, var) = bn::stats(z, c);
    cx.compare(kernel, &format!("{case} mean"), &got.mean, &mean, STATS)?;
    cx.compare(kernel, &format!("{case} var"), &got.var, &var, STATS)
}

/// An evaluation batch norm with residual and ReLU after a convolution output `z`: random scale,
/// shift, residual and running statistics on the device, and the CPU's result on `z`.
pub(super) struct EvalNorm<B> {
    gamma: B,
    beta: B,
    residual: B,
    mean: B,
    var: B,
    /// The CPU batch norm of `z`.
    pub want: Vec<f32>,
    /// The largest `|gamma / sqrt(var + eps)|`, at least 1.
    pub max_scale: f32,
}

impl<B> EvalNorm<B> {
    /// The case for `z` with `c` channels, its inputs drawn from `cx`.
    pub fn new<E: Exec<Buf<f32> = B>>(cx: &mut Ctx<'_, E>, z: &[f32], c: usize) -> Result<Self> {
        let (gamma, beta, residual) = (cx.normal(c), cx.normal(c), cx.normal(z.len()));
        let run_var: Vec<f32> = cx.normal(c).iter().map(|v| 0.5 + v.abs()).collect();
        let run_mean = cx.normal(c);
        let scale: Vec<f32> = gamma.iter().zip(&run_var).map(|(g, v)| g * (1.0 / (v + EPS).sqrt())).collect();
        let want = bn::forward(z, c, &run_mean, &scale, &beta, Some(&residual), true);
        Ok(EvalNorm {
            gamma: cx.up(&gamma)?,
            beta: cx.up(&beta)?,
            residual: cx.up(&residual)?,
            mean: cx.up(&run_mean)?,
            var: cx.up(&run_var)?,
            want,
            max_scale: scale.iter().fold(1f32, |m, s| m.max(s.abs())),
        })
    }

    /// Scale, shift, eps, the residual and the ReLU.
    pub fn affine(&self) -> BnAffine<'_, B> {
        BnAffine {
            gamma: &self.gamma,
            beta: &self.beta,
            eps: EPS,
            residual: Some(&self.residual),
            relu: true,
        }
    }

    /// The running statistics `[mean, var]`.
    pub fn stats(&self) -> [&B; 2] {
        [&self.mean, &self.var]
    }
}
