//! Parity of the batch-norm kernels with the CPU path (`cpu`).

use super::cpu;
use super::launch::{BnAffine, BnBackward, BnInput, Running, bn_backward, bn_forward, bn_forward_train};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;
/// Elementwise arithmetic in another order (or with a fused multiply-add).
const ELEMENTWISE: Tol = Tol { atol: 1e-6, rtol: 1e-5 };
/// Sums over the rows in another order.
const REDUCTION: Tol = Tol { atol: 1e-4, rtol: 1e-4 };

/// `[rows, c]`: the fewest rows training accepts with one channel; a 2x9x9 batch of 3 channels
/// (six row splits in the reductions); 33 channels (one past a 32-channel tile) over 300 rows; 64
/// channels over 513 rows (eleven row splits, the last one short).
const CASES: [[usize; 2]; 4] = [[2, 1], [162, 3], [300, 33], [513, 64]];

/// The training forward (statistics, running update, output: plain, with ReLU, with the residual
/// add and ReLU), the evaluation forward and the backward of both, on every case; composed as
/// [`super`] composes them. The statistics are compared with the CPU's; the running update and
/// the output with the CPU's given the device's statistics, so that each comparison has the
/// tolerance of the arithmetic it checks.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for [rows, c] in CASES {
        // A mean far from zero exercises the shifted sums.
        let x: Vec<f32> = cx.normal(rows * c).iter().map(|v| 3.0 + 2.0 * v).collect();
        let (gamma, beta, residual, dy) =
            (cx.normal(c), cx.normal(c), cx.normal(rows * c), cx.normal(rows * c));
        let running_var: Vec<f32> = cx.normal(c).iter().map(|v| 0.5 + v.abs()).collect();
        let running_mean = cx.normal(c);
        let shape = format!("x[{rows},{c}]");
        let (xb, gb, bb) = (cx.up(&x)?, cx.up(&gamma)?, cx.up(&beta)?);
        let (mean, var) = cpu::stats(&x, c);

        for training in [true, false] {
            let (center, v) = if training { (&mean, &var) } else { (&running_mean, &running_var) };
            let inv_std: Vec<f32> = v.iter().map(|v| 1.0 / (v + EPS).sqrt()).collect();
            let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, i)| g * i).collect();
            let (cb, vb) = (cx.up(center)?, cx.up(v)?);
            let mode = if training { "train" } else { "eval" };

            for (relu, add) in [(false, false), (true, false), (true, true)] {
                let case = format!("{shape} {mode} relu={relu} add={add}");
                let res = add.then_some(residual.as_slice());
                let res_b = res.map(|r| cx.up(r)).transpose()?;
                let affine = BnAffine { gamma: &gb, beta: &bb, eps: EPS, residual: res_b.as_ref(), relu };
                let n = BnInput { x: &xb, affine };
                let y = cpu::forward(&x, c, center, &scale, &beta, res, relu);
                if training {
                    // The plain case also updates running statistics; the others go without.
                    let (mut rm, mut rv) = (cx.up(&running_mean)?, cx.up(&running_var)?);
                    let running =
                        (!relu).then_some(Running { mean: &mut rm, var: &mut rv, momentum: MOMENTUM });
                    let got = bn_forward_train(cx.e, [rows, c], &n, running)?;
                    let (m, v) = (cx.e.download(&got.mean)?, cx.e.download(&got.var)?);
                    if !relu {
                        let name = "bn_forward_train";
                        cx.compare(name, &format!("{shape} mean"), &got.mean, &mean, REDUCTION)?;
                        cx.compare(name, &format!("{shape} var"), &got.var, &var, REDUCTION)?;
                        let (mut rm_want, mut rv_want) = (running_mean.clone(), running_var.clone());
                        cpu::update_running([&mut rm_want, &mut rv_want], [&m, &v], rows, MOMENTUM);
                        cx.compare(name, &format!("{shape} running mean"), &rm, &rm_want, ELEMENTWISE)?;
                        cx.compare(name, &format!("{shape} running var"), &rv, &rv_want, ELEMENTWISE)?;
                    }
                    let s: Vec<f32> =
                        gamma.iter().zip(&v).map(|(g, v)| g * (1.0 / (v + EPS).sqrt())).collect();
                    let want = cpu::forward(&x, c, &m, &s, &beta, res, relu);
                    cx.compare("bn_forward_train", &case, &got.y, &want, ELEMENTWISE)?;
                    // The batch statistics given (a convolution's epilogue computed them), folded
                    // into the running ones.
                    let (mut rm, mut rv) = (cx.up(&running_mean)?, cx.up(&running_var)?);
                    let running = Running { mean: &mut rm, var: &mut rv, momentum: MOMENTUM };
                    let got = bn_forward(cx.e, [rows, c], &n, [&cb, &vb], Some(running))?;
                    let given = format!("{case} given statistics");
                    cx.compare("bn_forward", &given, &got, &y, ELEMENTWISE)?;
                    let (mut rm_want, mut rv_want) = (running_mean.clone(), running_var.clone());
                    cpu::update_running([&mut rm_want, &mut rv_want], [&mean, &var], rows, MOMENTUM);
                    cx.compare("bn_forward", &format!("{given} running mean"), &rm, &rm_want, ELEMENTWISE)?;
                    cx.compare("bn_forward", &format!("{given} running var"), &rv, &rv_want, ELEMENTWISE)?;
                } else {
                    let got = bn_forward(cx.e, [rows, c], &n, [&cb, &vb], None)?;
                    cx.compare("bn_forward", &case, &got, &y, ELEMENTWISE)?;
                }

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
                    center: &cb,
                    var: &vb,
                    gamma: &gb,
                    eps: EPS,
                    training,
                    want_dz: add,
                };
                let grads = bn_backward(cx.e, [rows, c], &inputs)?;
                let name = "bn_backward_data";
                cx.compare(name, &format!("{case} dgamma"), &grads.dgamma, &dgamma, REDUCTION)?;
                cx.compare(name, &format!("{case} dbeta"), &grads.dbeta, &dbeta, REDUCTION)?;
                cx.compare(name, &format!("{case} dx"), &grads.dx, &dx, REDUCTION)?;
                if let (Some(got), Some(want)) = (&grads.dz, &dz) {
                    cx.compare(name, &format!("{case} dz"), got, want, ELEMENTWISE)?;
                }
            }
        }
    }
    Ok(())
}
