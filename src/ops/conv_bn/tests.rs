//! The fused convolution and batch norm on the emulated device against the separate ops: values,
//! running statistics and gradients, and the launches saved; at each precision (the fp32 kernels,
//! then the TF32 and bf16 tensor-core ones).

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Conv, Norm, conv2d_batch_norm_eval, conv2d_batch_norm_train};
use crate::cuda::exec::Exec;
use crate::cuda::gpu::Gpu;
use crate::ops::batchnorm::{After, RunningStats, batch_norm_eval, batch_norm_train};
use crate::ops::conv2d;
use crate::ops::precision::{self, Precision};
use crate::tensor::Tensor;
use crate::tensor::autograd::{self, backward_with};
use crate::tensor::device::Device;

fn close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let (got, want) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
    }
}

/// A layer's tensors on `device`: input, weight, gamma, beta, residual and a seed gradient.
struct Layer {
    x: Tensor,
    w: Tensor,
    gamma: Tensor,
    beta: Tensor,
    residual: Tensor,
    seed: Tensor,
}

fn layer(device: &Device, x: [usize; 4], w: [usize; 4], out: [usize; 4], seed: u64) -> Layer {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = |shape: &[usize]| Tensor::randn(shape, 1.0, &mut rng).to_device(device).unwrap();
    Layer {
        x: t(&x).into_param(),
        w: t(&w).into_param(),
        gamma: t(&[w[0]]).into_param(),
        beta: t(&[w[0]]).into_param(),
        residual: t(&out).into_param(),
        seed: t(&out),
    }
}

/// Odd channels, stride 2, batch 1, several tiles per column (eight), and two groups of tiles
/// whose statistics are merged (48 tiles: 32 and 16).
/// The precisions the fused kernels have versions for.
const PRECISIONS: [Precision; 3] = [Precision::Fp32, Precision::Tf32, Precision::Bf16];

const SHAPES: [([usize; 4], [usize; 4], usize, usize); 4] = [
    ([3, 11, 13, 5], [67, 5, 3, 3], 2, 1),
    ([1, 9, 7, 3], [5, 3, 3, 3], 1, 1),
    ([2, 16, 16, 3], [16, 3, 3, 3], 1, 1),
    ([3, 32, 32, 2], [3, 2, 1, 1], 1, 0),
];

#[test]
fn training_matches_the_separate_ops_in_two_launches() {
    let gpu = Arc::new(Gpu::emulated());
    let device = Device::Cuda(Arc::clone(&gpu));
    for (i, (xs, ws, stride, pad)) in SHAPES.into_iter().enumerate() {
        for p in PRECISIONS {
            let _precision = precision::set(p);
            let probe = conv2d(&Tensor::zeros(&xs), &Tensor::zeros(&ws), None, stride, pad).unwrap();
            let out: [usize; 4] = probe.shape().try_into().unwrap();
            let l = layer(&device, xs, ws, out, 10 + i as u64);
            let run = |fused: bool| {
                let (mut rm, mut rv) = (Tensor::zeros(&[ws[0]]), Tensor::full(&[ws[0]], 1.0));
                rm = rm.to_device(&device).unwrap();
                rv = rv.to_device(&device).unwrap();
                let running = RunningStats { mean: &mut rm, var: &mut rv, momentum: 0.1 };
                let after = After::AddRelu(&l.residual);
                let before = gpu.counts();
                let y = if fused {
                    let conv = Conv { weight: &l.w, stride, pad };
                    let norm = Norm { gamma: &l.gamma, beta: &l.beta, eps: 1e-5, after };
                    conv2d_batch_norm_train(&l.x, conv, norm, Some(running)).unwrap()
                } else {
                    let z = conv2d(&l.x, &l.w, None, stride, pad).unwrap();
                    batch_norm_train(&z, after, &l.gamma, &l.beta, 1e-5, Some(running)).unwrap().0
                };
                let launches = (gpu.counts() - before).launches;
                let grads = backward_with(&y, l.seed.clone()).unwrap();
                let g = |t: &Tensor| grads.get(t).expect("a gradient").clone();
                (launches, y, rm, rv, [g(&l.x), g(&l.w), g(&l.gamma), g(&l.beta), g(&l.residual)])
            };
            let (fused_launches, y, rm, rv, grads) = run(true);
            let (launches, want_y, want_rm, want_rv, want_grads) = run(false);
            assert_eq!((fused_launches, launches), (2, 3), "{p} shape {i}");
            close("y", &y, &want_y, 1e-4);
            close("running mean", &rm, &want_rm, 1e-5);
            close("running var", &rv, &want_rv, 1e-5);
            let tickets = gpu.with_tickets(8, |t| gpu.download(t)).unwrap();
            assert!(tickets.iter().all(|&t| t == 0), "tickets left {tickets:?}");
            for (name, (got, want)) in
                ["dx", "dw", "dgamma", "dbeta", "dresidual"].iter().zip(grads.iter().zip(&want_grads))
            {
                close(name, got, want, 2e-3);
            }
        }
    }
}

#[test]
fn evaluation_without_gradients_is_one_launch_with_the_same_values() {
    let gpu = Arc::new(Gpu::emulated());
    let device = Device::Cuda(Arc::clone(&gpu));
    let (xs, ws, stride, pad) = SHAPES[0];
    let probe = conv2d(&Tensor::zeros(&xs), &Tensor::zeros(&ws), None, stride, pad).unwrap();
    let out: [usize; 4] = probe.shape().try_into().unwrap();
    let l = layer(&device, xs, ws, out, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mean = Tensor::randn(&[ws[0]], 1.0, &mut rng).to_device(&device).unwrap();
    let var = Tensor::full(&[ws[0]], 0.7).to_device(&device).unwrap();
    for (p, after) in PRECISIONS
        .into_iter()
        .flat_map(|p| [After::Identity, After::Relu, After::AddRelu(&l.residual)].map(|a| (p, a)))
    {
        let _precision = precision::set(p);
        let conv = Conv { weight: &l.w, stride, pad };
        let norm = Norm { gamma: &l.gamma, beta: &l.beta, eps: 1e-5, after };
        let _guard = autograd::no_grad();
        let before = gpu.counts();
        let y = conv2d_batch_norm_eval(&l.x, conv, norm, [&mean, &var]).unwrap();
        assert_eq!((gpu.counts() - before).launches, 1, "{p} {after:?}");
        let z = conv2d(&l.x, &l.w, None, stride, pad).unwrap();
        let want = batch_norm_eval(&z, after, &l.gamma, &l.beta, &mean, &var, 1e-5).unwrap();
        // The same operations in the same order: equal values (a zero may differ in sign).
        assert_eq!(y.to_vec().unwrap(), want.to_vec().unwrap(), "{p} {after:?}");
    }
    // Recording gradients, the separate ops run (two launches) and the gradient reaches x.
    let conv = Conv { weight: &l.w, stride, pad };
    let norm = Norm { gamma: &l.gamma, beta: &l.beta, eps: 1e-5, after: After::Relu };
    let before = gpu.counts();
    let y = conv2d_batch_norm_eval(&l.x, conv, norm, [&mean, &var]).unwrap();
    assert_eq!((gpu.counts() - before).launches, 2);
    let grads = backward_with(&y, l.seed.clone()).unwrap();
    assert!(grads.get(&l.x).is_some());
}

#[test]
fn bad_inputs_name_the_op_before_anything_runs() {
    let gpu = Arc::new(Gpu::emulated());
    let device = Device::Cuda(Arc::clone(&gpu));
    let l = layer(&device, [2, 5, 5, 3], [4, 3, 3, 3], [2, 5, 5, 4], 30);
    let short = Tensor::zeros(&[3]).to_device(&device).unwrap();
    let (mut rm, mut rv) = (short.clone(), short.clone());
    let running = RunningStats { mean: &mut rm, var: &mut rv, momentum: 0.1 };
    let conv = Conv { weight: &l.w, stride: 1, pad: 1 };
    let norm = Norm { gamma: &l.gamma, beta: &l.beta, eps: 1e-5, after: After::Relu };
    let err = conv2d_batch_norm_train(&l.x, conv, norm, Some(running)).unwrap_err().to_string();
    assert!(err.starts_with("batch_norm_relu_train:") && err.contains("running mean"), "{err}");
    let norm = Norm { gamma: &short, ..norm };
    let _guard = autograd::no_grad();
    let err = conv2d_batch_norm_eval(&l.x, conv, norm, [&l.beta, &l.beta]).unwrap_err().to_string();
    assert!(err.starts_with("batch_norm_relu_eval:") && err.contains("gamma"), "{err}");
}
