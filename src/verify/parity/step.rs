//! A whole training step on a device against the same step on the CPU: a ResNet-8 with option-A
//! shortcuts (every layer kind of the CIFAR networks: convolution, batch norm with ReLU and with
//! the residual add, the shortcut, pooling, the linear head, cross-entropy) trained for two SGD
//! steps with momentum, Nesterov and weight decay from the same initialisation on the same batch
//! of four 8x8 images. Compared: the loss and logits of each step, the gradient of every
//! parameter, and after the second update every parameter and running statistic; at fp32 and,
//! with the products on tensor cores on a device, at TF32 and bf16 ([`whole_step_at`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Check, Tol, compare};
use crate::error::Result;
use crate::nn::{Arch, Network};
use crate::ops::loss::cross_entropy;
use crate::ops::precision::{self, Precision};
use crate::optim::{Sgd, SgdConfig};
use crate::tensor::Tensor;
use crate::tensor::autograd::{self, Gradients};
use crate::tensor::device::Device;

/// Loss and logits after two layers of sums in another order.
const OUTPUT: Tol = Tol { atol: 1e-4, rtol: 1e-3 };
/// Gradients and updated weights: sums over the batch and pixels in another order, through the
/// whole network.
const GRADIENT: Tol = Tol { atol: 1e-4, rtol: 1e-3 };

const SGD: SgdConfig = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true };

/// Every named tensor of `net` (parameters and buffers), copied to the host.
fn tensors(net: &mut dyn Network) -> Result<Vec<(String, Vec<f32>)>> {
    let mut out = Vec::new();
    let mut result = Ok(());
    net.visit("", &mut |name, t, _| {
        if result.is_ok() {
            result = t.to_vec().map(|v| out.push((name.to_string(), v)));
        }
    });
    result.map(|()| out)
}

/// The gradient of every parameter, by name, on the host (zeros where none arrived).
fn gradients(net: &mut dyn Network, grads: &Gradients) -> Result<Vec<(String, Vec<f32>)>> {
    let mut out = Vec::new();
    let mut result = Ok(());
    net.visit("", &mut |name, t, kind| {
        if result.is_ok() && kind == crate::nn::TensorKind::Param {
            result = match grads.get(t) {
                Some(g) => g.to_vec().map(|v| out.push((name.to_string(), v))),
                None => {
                    out.push((name.to_string(), vec![0.0; t.numel()]));
                    Ok(())
                }
            };
        }
    });
    result.map(|()| out)
}

/// One training step: loss, logits and gradients on the host, then the update.
fn step(net: &mut dyn Network, sgd: &mut Sgd, x: &Tensor, labels: &[usize]) -> Result<StepOut> {
    let out = net.forward(x, true)?;
    let loss = cross_entropy(&out.logits, labels)?;
    let grads = autograd::backward(&loss)?;
    let named = gradients(net, &grads)?;
    sgd.step(&mut net.params_mut(), &grads)?;
    Ok(StepOut { loss: loss.to_vec()?, logits: out.logits.to_vec()?, grads: named })
}

struct StepOut {
    loss: Vec<f32>,
    logits: Vec<f32>,
    grads: Vec<(String, Vec<f32>)>,
}

/// Two training steps on `device` and on the CPU from the same start; one [`Check`] per loss,
/// logits, gradient, parameter and buffer.
pub fn whole_step(device: &Device, seed: u64) -> Result<Vec<Check>> {
    whole_step_at(device, seed, Precision::Fp32)
}

/// [`whole_step`] with the products at precision `p` on both sides. Both round the same operands
/// the same way, so in the first step only sums in another order differ, and such a difference
/// can move a later operand across a rounding boundary: one unit roundoff `u` of that operand,
/// carried through the network; the first step's tolerance is `8u`, absolute and relative. After
/// the first update the two sides' weights differ by the learning rate times those gradient
/// differences, and each weight so moved may round to the neighbouring value: many operands off
/// by one unit, amplified by the batch norms of the last stage (2x2 images: 16 values a channel);
/// the second step and the updated weights are held to `32u`.
pub fn whole_step_at(device: &Device, seed: u64, p: Precision) -> Result<Vec<Check>> {
    let _precision = precision::set(p);
    let tol = |units: f32| match p {
        Precision::Fp32 => [OUTPUT, GRADIENT],
        _ => [Tol { atol: units * p.unit_roundoff(), rtol: units * p.unit_roundoff() }; 2],
    };
    let arch: Arch = "resnet8".parse()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cpu_net = arch.build(3, 10, &mut ChaCha8Rng::seed_from_u64(seed))?;
    let mut dev_net = arch.build(3, 10, &mut ChaCha8Rng::seed_from_u64(seed))?;
    dev_net.to_device(device)?;
    let (mut cpu_sgd, mut dev_sgd) = (Sgd::new(SGD)?, Sgd::new(SGD)?);
    let x = Tensor::randn(&[4, 8, 8, 3], 1.0, &mut rng);
    let labels: Vec<usize> = (0..4).map(|_| rng.random_range(0..10)).collect();
    let x_dev = x.to_device(device)?;
    let mut checks = Vec::new();
    for s in 1..=2 {
        let [output, gradient] = tol(if s == 1 { 8.0 } else { 32.0 });
        let want = step(cpu_net.as_mut(), &mut cpu_sgd, &x, &labels)?;
        let got = step(dev_net.as_mut(), &mut dev_sgd, &x_dev, &labels)?;
        checks.push(compare("train step: loss", format!("{p} step {s}"), &got.loss, &want.loss, output));
        checks.push(compare(
            "train step: logits",
            format!("{p} step {s}"),
            &got.logits,
            &want.logits,
            output,
        ));
        for ((name, g), (_, w)) in got.grads.iter().zip(&want.grads) {
            checks.push(compare("train step: gradient", format!("{p} step {s} {name}"), g, w, gradient));
        }
    }
    let [_, gradient] = tol(32.0);
    for ((name, g), (_, w)) in tensors(dev_net.as_mut())?.iter().zip(&tensors(cpu_net.as_mut())?) {
        checks.push(compare("train step: after update", format!("{p} {name}"), g, w, gradient));
    }
    Ok(checks)
}
