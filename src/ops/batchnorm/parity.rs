//! Parity of the batch-norm kernels with the CPU path (`cpu`).

use super::cpu;
use super::launch::{Affine, BnBackward, bn_backward, bn_forward, bn_running_update, bn_scale, bn_stats};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

const EPS: f32 = 1e-5;
/// Elementwise arithmetic in another order (or with a fused multiply-add).
const ELEMENTWISE: Tol = Tol { atol: 1e-6, rtol: 1e-5 };
/// Sums over the rows in another order.
const REDUCTION: Tol = Tol { atol: 1e-4, rtol: 1e-4 };

/// `[rows, c]`: the fewest rows training accepts with one channel; a 2x9x9 batch of 3 channels;
/// 33 channels (one past a 32-channel block) over 300 rows; 64 channels over 513 rows (three
/// row splits of 256).
const CASES: [[usize; 2]; 4] = [[2, 1], [162, 3], [300, 33], [513, 64]];

/// Statistics, running update, scale, forward (plain, with ReLU, with the residual add and ReLU)
/// and backward, in training and evaluation, on every case; composed as [`super`] composes them.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for [rows, c] in CASES {
        // A mean far from zero exercises the shifted sums.
        let x: Vec<f32> = cx.normal(rows * c).iter().map(|v| 3.0 + 2.0 * v).collect();
        let (gamma, beta, residual, dy) =
            (cx.normal(c), cx.normal(c), cx.normal(rows * c), cx.normal(rows * c));
        let running_var: Vec<f32> = cx.normal(c).iter().map(|v| 0.5 + v.abs()).collect();
        let running_mean = cx.normal(c);
        let case = format!("x[{rows},{c}]");
        let xb = cx.up(&x)?;

        let (mean, var) = cpu::stats(&x, c);
        let (mb, vb) = bn_stats(cx.e, rows, c, &xb)?;
        cx.compare("bn_stats_partial+finalize", &format!("{case} mean"), &mb, &mean, REDUCTION)?;
        cx.compare("bn_stats_partial+finalize", &format!("{case} var"), &vb, &var, REDUCTION)?;

        let (mut rm, mut rv) = (cx.up(&running_mean)?, cx.up(&running_var)?);
        bn_running_update(cx.e, 0.1, rows, [&cx.up(&mean)?, &cx.up(&var)?], &mut rm, &mut rv)?;
        let (mut rm_want, mut rv_want) = (running_mean.clone(), running_var.clone());
        cpu::update_running([&mut rm_want, &mut rv_want], [&mean, &var], rows, 0.1);
        cx.compare("bn_running_update", &format!("{case} mean"), &rm, &rm_want, ELEMENTWISE)?;
        cx.compare("bn_running_update", &format!("{case} var"), &rv, &rv_want, ELEMENTWISE)?;

        for training in [true, false] {
            let (center, v) = if training { (&mean, &var) } else { (&running_mean, &running_var) };
            let inv_std: Vec<f32> = v.iter().map(|v| 1.0 / (v + EPS).sqrt()).collect();
            let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, i)| g * i).collect();
            let (cb, sb, bb, vb_) = (cx.up(center)?, cx.up(&scale)?, cx.up(&beta)?, cx.up(v)?);
            let mode = if training { "train" } else { "eval" };
            let got = bn_scale(cx.e, c, EPS, &cx.up(&gamma)?, &vb_)?;
            cx.compare("bn_scale", &format!("{case} {mode}"), &got, &scale, ELEMENTWISE)?;

            for (relu, add) in [(false, false), (true, false), (true, true)] {
                let case = format!("{case} {mode} relu={relu} add={add}");
                let res = add.then_some(residual.as_slice());
                let y = cpu::forward(&x, c, center, &scale, &beta, res, relu);
                let affine = Affine { center: &cb, scale: &sb, beta: &bb };
                let res_b = res.map(|r| cx.up(r)).transpose()?;
                let got = bn_forward(cx.e, [rows, c], relu, &xb, &affine, res_b.as_ref())?;
                cx.compare("bn_forward", &case, &got, &y, ELEMENTWISE)?;

                let out = relu.then_some(y.as_slice());
                let n = rows as f64;
                let (s1, s2) = cpu::backward_sums(&x, &dy, out, c, center);
                let dgamma: Vec<f32> = s2.iter().zip(&inv_std).map(|(s, &i)| (s * i as f64) as f32).collect();
                let dbeta: Vec<f32> = s1.iter().map(|&s| s as f32).collect();
                let (k_mean, k_x): (Vec<f32>, Vec<f32>) = match training {
                    true => (
                        s1.iter().map(|s| (s / n) as f32).collect(),
                        s2.iter().zip(&inv_std).map(|(s, &i)| (s / n * (i as f64).powi(2)) as f32).collect(),
                    ),
                    false => (vec![0.0; c], vec![0.0; c]),
                };
                let k = cpu::DxCoefficients { center, scale: &scale, k_mean: &k_mean, k_x: &k_x };
                let (dx, dz) = cpu::backward_data(&x, &dy, out, c, &k, add);

                let yb = cx.up(&y)?;
                let inputs = BnBackward {
                    x: &xb,
                    dy: &cx.up(&dy)?,
                    relu_out: relu.then_some(&yb),
                    affine: Affine { center: &cb, scale: &sb, beta: &bb },
                    var: &vb_,
                    eps: EPS,
                    training,
                    want_dz: add,
                };
                let grads = bn_backward(cx.e, [rows, c], &inputs)?;
                let name = "bn_backward_partial+finalize";
                cx.compare(name, &format!("{case} dgamma"), &grads.dgamma, &dgamma, REDUCTION)?;
                cx.compare(name, &format!("{case} dbeta"), &grads.dbeta, &dbeta, REDUCTION)?;
                cx.compare("bn_backward_data", &format!("{case} dx"), &grads.dx, &dx, REDUCTION)?;
                if let (Some(got), Some(want)) = (&grads.dz, &dz) {
                    cx.compare("bn_backward_data", &format!("{case} dz"), got, want, ELEMENTWISE)?;
                }
            }
        }
    }
    Ok(())
}
