use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::ops::{activation, arith};
use crate::tensor::autograd::{self, Gradients};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
    }
}

#[test]
fn running_stats_follow_pytorch_by_hand() {
    // Channel 0 holds 1, 2, 3, 6: mean 3, biased variance 14/4, unbiased 14/3.
    // Channel 1 holds 0, 0, 0, 4: mean 1, biased variance 12/4, unbiased 4.
    let x = t(&[1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 6.0, 4.0], &[1, 2, 2, 2]);
    let (mut rm, mut rv) = (t(&[0.0, 10.0], &[2]), t(&[1.0, 2.0], &[2]));
    let running = RunningStats { mean: &mut rm, var: &mut rv, momentum: DEFAULT_MOMENTUM };
    let (gamma, beta) = (Tensor::full(&[2], 1.0), Tensor::zeros(&[2]));
    let (_, stats) =
        batch_norm_train(&x, After::Identity, &gamma, &beta, DEFAULT_EPS, Some(running)).unwrap();
    assert_eq!(stats.count, 4);
    close(&stats.mean.to_vec().unwrap(), &[3.0, 1.0], 1e-6);
    close(&stats.var_biased.to_vec().unwrap(), &[3.5, 3.0], 1e-6);
    close(&rm.to_vec().unwrap(), &[0.3, 9.1], 1e-6);
    close(&rv.to_vec().unwrap(), &[0.9 + 0.1 * 14.0 / 3.0, 1.8 + 0.4], 1e-6);
}

#[test]
fn running_stats_reject_bad_arguments() {
    let x = Tensor::zeros(&[2, 1, 1, 2]);
    let (g, b) = (Tensor::full(&[2], 1.0), Tensor::zeros(&[2]));
    let (mut rm, mut rv) = (Tensor::zeros(&[2]), Tensor::zeros(&[2]));
    let running = RunningStats { mean: &mut rm, var: &mut rv, momentum: 1.5 };
    let err = batch_norm_train(&x, After::Identity, &g, &b, 1e-5, Some(running)).unwrap_err().to_string();
    assert!(err.starts_with("batch_norm_train:") && err.contains("momentum"), "{err}");
    let mut short = Tensor::zeros(&[3]);
    let running = RunningStats { mean: &mut short, var: &mut rv, momentum: 0.1 };
    let err = batch_norm_train(&x, After::Relu, &g, &b, 1e-5, Some(running)).unwrap_err().to_string();
    assert!(err.starts_with("batch_norm_relu_train:") && err.contains("running mean"), "{err}");
    assert!(err.contains("[3]"), "{err}");
    assert_eq!((rm.to_vec().unwrap(), rv.to_vec().unwrap()), (vec![0.0; 2], vec![0.0; 2]));
}

#[test]
fn eval_mode_uses_running_stats_and_their_gradients_by_hand() {
    let x = t(&[1.0, 0.0, 4.0, 1.0], &[1, 1, 2, 2]).into_param();
    let gamma = t(&[2.0, 1.0], &[2]).into_param();
    let beta = t(&[0.5, -1.0], &[2]).into_param();
    let (rm, rv) = (t(&[1.0, 0.0], &[2]), t(&[3.0, 0.25], &[2]));
    let y = batch_norm_eval(&x, After::Identity, &gamma, &beta, &rm, &rv, 1e-5).unwrap();
    let (i0, i1) = (1.0 / (3.0f32 + 1e-5).sqrt(), 1.0 / (0.25f32 + 1e-5).sqrt());
    close(&y.to_vec().unwrap(), &[0.5, -1.0, 2.0 * 3.0 * i0 + 0.5, i1 - 1.0], 1e-6);
    let g = autograd::backward_with(&y, t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2])).unwrap();
    close(&g.get(&x).unwrap().to_vec().unwrap(), &[2.0 * i0, 2.0 * i1, 6.0 * i0, 4.0 * i1], 1e-6);
    close(&g.get(&gamma).unwrap().to_vec().unwrap(), &[9.0 * i0, 4.0 * i1], 1e-6);
    close(&g.get(&beta).unwrap().to_vec().unwrap(), &[4.0, 6.0], 1e-6);
}

#[test]
fn bad_shapes_and_arguments_name_the_op() {
    let x = Tensor::zeros(&[2, 3, 3, 4]);
    let (g, b) = (Tensor::full(&[4], 1.0), Tensor::zeros(&[4]));
    let expect = |r: Result<(Tensor, BatchStats)>, op: &str, needle: &str| {
        let err = r.unwrap_err().to_string();
        assert!(err.starts_with(&format!("{op}:")) && err.contains(needle), "{err}");
    };
    expect(
        batch_norm_train(&x, After::Identity, &Tensor::zeros(&[3]), &b, 1e-5, None),
        "batch_norm_train",
        "gamma",
    );
    expect(
        batch_norm_train(&Tensor::zeros(&[2, 4]), After::Identity, &g, &b, 1e-5, None),
        "batch_norm_train",
        "[2, 4]",
    );
    expect(
        batch_norm_train(&Tensor::zeros(&[0, 3, 3, 4]), After::Identity, &g, &b, 1e-5, None),
        "batch_norm_train",
        "empty",
    );
    expect(
        batch_norm_train(&Tensor::zeros(&[1, 1, 1, 4]), After::Identity, &g, &b, 1e-5, None),
        "batch_norm_train",
        "one value",
    );
    expect(batch_norm_train(&x, After::Relu, &g, &b, 0.0, None), "batch_norm_relu_train", "eps");
    let r = Tensor::zeros(&[2, 3, 4, 4]);
    expect(
        batch_norm_train(&x, After::AddRelu(&r), &g, &b, 1e-5, None),
        "batch_norm_add_relu_train",
        "[2, 3, 4, 4]",
    );
    let err = batch_norm_eval(&x, After::Identity, &g, &b, &Tensor::zeros(&[5]), &Tensor::zeros(&[4]), 1e-5)
        .unwrap_err();
    assert!(err.to_string().starts_with("batch_norm_eval:") && err.to_string().contains("running mean"));
    let err = batch_norm_eval(&x, After::Relu, &g, &b, &Tensor::zeros(&[4]), &Tensor::full(&[4], -1.0), 1e-5)
        .unwrap_err();
    assert!(err.to_string().starts_with("batch_norm_relu_eval:"), "{err}");
}

#[test]
fn statistics_survive_a_large_mean() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let noise = Tensor::randn(&[4, 9, 9, 3], 0.1, &mut rng).to_vec().unwrap();
    let x: Vec<f32> = noise.iter().map(|v| 1000.0 + v).collect();
    let (mean, var) = cpu::stats(&x, 3);
    let (rmean, rvar) = reference::batch_stats(&x.iter().map(|&v| v as f64).collect::<Vec<_>>(), 3);
    for ch in 0..3 {
        assert!((mean[ch] as f64 - rmean[ch]).abs() < 1e-4, "{} vs {}", mean[ch], rmean[ch]);
        assert!(((var[ch] as f64) / rvar[ch] - 1.0).abs() < 1e-4, "{} vs {}", var[ch], rvar[ch]);
    }
}

/// Runs `f` on fresh leaves made from `inputs` and back-propagates `seed`: the output and the
/// gradient of each input (`None` where none reached it).
fn forward_backward(inputs: &[Tensor], seed: &Tensor, f: Op) -> (Vec<f32>, Vec<Option<Vec<f32>>>) {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().into_param()).collect();
    let y = f(&leaves);
    let g: Gradients = autograd::backward_with(&y, seed.clone()).unwrap();
    (y.to_vec().unwrap(), leaves.iter().map(|l| g.get(l).map(|t| t.to_vec().unwrap())).collect())
}

/// An op on `[x, residual, gamma, beta, running_mean, running_var]`.
type Op = fn(&[Tensor]) -> Tensor;

const FUSED_AND_UNFUSED: [(&str, Op, Op); 4] = [
    (
        "relu_train",
        |t| batch_norm_train(&t[0], After::Relu, &t[2], &t[3], DEFAULT_EPS, None).unwrap().0,
        |t| {
            activation::relu(
                &batch_norm_train(&t[0], After::Identity, &t[2], &t[3], DEFAULT_EPS, None).unwrap().0,
            )
            .unwrap()
        },
    ),
    (
        "add_relu_train",
        |t| batch_norm_train(&t[0], After::AddRelu(&t[1]), &t[2], &t[3], DEFAULT_EPS, None).unwrap().0,
        |t| {
            let z = arith::add(
                &batch_norm_train(&t[0], After::Identity, &t[2], &t[3], DEFAULT_EPS, None).unwrap().0,
                &t[1],
            )
            .unwrap();
            activation::relu(&z).unwrap()
        },
    ),
    (
        "relu_eval",
        |t| batch_norm_eval(&t[0], After::Relu, &t[2], &t[3], &t[4], &t[5], DEFAULT_EPS).unwrap(),
        |t| {
            activation::relu(
                &batch_norm_eval(&t[0], After::Identity, &t[2], &t[3], &t[4], &t[5], DEFAULT_EPS).unwrap(),
            )
            .unwrap()
        },
    ),
    (
        "add_relu_eval",
        |t| batch_norm_eval(&t[0], After::AddRelu(&t[1]), &t[2], &t[3], &t[4], &t[5], DEFAULT_EPS).unwrap(),
        |t| {
            let z = arith::add(
                &batch_norm_eval(&t[0], After::Identity, &t[2], &t[3], &t[4], &t[5], DEFAULT_EPS).unwrap(),
                &t[1],
            );
            activation::relu(&z.unwrap()).unwrap()
        },
    ),
];

#[test]
fn fused_ops_match_the_unfused_composition() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // 330 rows of 64 channels: more than one rayon task and a partial block of rows.
    let shape = [3, 10, 11, 64];
    let running_var =
        Tensor::uniform(&[64], 1.0, &mut rng).to_vec().unwrap().iter().map(|v| v + 1.5).collect();
    let inputs = [
        Tensor::randn(&shape, 1.5, &mut rng),
        Tensor::randn(&shape, 1.0, &mut rng),
        Tensor::randn(&[64], 1.0, &mut rng),
        Tensor::randn(&[64], 0.5, &mut rng),
        Tensor::randn(&[64], 0.3, &mut rng),
        Tensor::from_vec(running_var, &[64]).unwrap(),
    ];
    let seed = Tensor::randn(&shape, 1.0, &mut rng);
    for (name, fused, unfused) in FUSED_AND_UNFUSED {
        let (yf, gf) = forward_backward(&inputs, &seed, fused);
        let (yu, gu) = forward_backward(&inputs, &seed, unfused);
        close(&yf, &yu, 1e-5);
        for (i, (a, b)) in gf.iter().zip(&gu).enumerate() {
            assert_eq!(a.is_some(), b.is_some(), "{name}: input {i}");
            if let (Some(a), Some(b)) = (a, b) {
                let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let norm = |v: &[f32]| v.iter().map(|v| v / scale).collect::<Vec<_>>();
                close(&norm(a), &norm(b), 1e-5);
            }
        }
    }
}

/// A training-mode normalisation with the residual add and ReLU on a device: the forward (the
/// running statistics' update included) and its backward take at most two launches each, the
/// evaluation forward one (and its backward at most two).
#[cfg(feature = "cuda-emulation")]
#[test]
fn a_device_pass_takes_at_most_two_launches() {
    use std::sync::Arc;

    use crate::cuda::gpu::Gpu;
    use crate::tensor::device::Device;

    // A device of its own: the tests sharing `Device::emulated()` would add to its counts.
    let gpu = Arc::new(Gpu::emulated());
    let device = Device::Cuda(Arc::clone(&gpu));
    let on = |t: Tensor| t.to_device(&device).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // 162 rows (four row splits) of 40 channels (two channel tiles).
    let shape = [2, 9, 9, 40];
    let x = on(Tensor::randn(&shape, 1.0, &mut rng)).into_param();
    let residual = on(Tensor::randn(&shape, 1.0, &mut rng)).into_param();
    let gamma = on(Tensor::randn(&[40], 1.0, &mut rng)).into_param();
    let beta = on(Tensor::randn(&[40], 1.0, &mut rng)).into_param();
    let (mut rm, mut rv) = (on(Tensor::zeros(&[40])), on(Tensor::full(&[40], 1.0)));
    let seed = on(Tensor::randn(&shape, 1.0, &mut rng));
    let after = After::AddRelu(&residual);
    let launches = || gpu.counts().launches;

    let start = launches();
    let running = RunningStats { mean: &mut rm, var: &mut rv, momentum: DEFAULT_MOMENTUM };
    let (y, _) = batch_norm_train(&x, after, &gamma, &beta, DEFAULT_EPS, Some(running)).unwrap();
    let forward = launches() - start;
    let start = launches();
    let g = autograd::backward_with(&y, seed.clone()).unwrap();
    let backward = launches() - start;
    assert!([&x, &residual, &gamma, &beta].iter().all(|t| g.get(t).is_some()));
    assert!(forward <= 2 && backward <= 2, "training: {forward} launches forward, {backward} backward");
    assert!(rm.to_vec().unwrap().iter().any(|&m| m != 0.0), "the running mean was updated");

    let start = launches();
    let y = batch_norm_eval(&x, after, &gamma, &beta, &rm, &rv, DEFAULT_EPS).unwrap();
    assert_eq!(launches() - start, 1, "the evaluation forward");
    let start = launches();
    autograd::backward_with(&y, seed).unwrap();
    assert!(launches() - start <= 2, "evaluation: {} launches backward", launches() - start);
}
