//! A whole training step on a device against the same step on the CPU: a ResNet-8 with option-A
//! shortcuts (every layer kind of the CIFAR networks: convolution, batch norm with ReLU and with
//! the residual add, the shortcut, pooling, the linear head, cross-entropy) trained for two SGD
//! steps with momentum, Nesterov and weight decay from the same initialisation on the same batch
//! of four 8x8 images. Compared: the loss and logits of each step, the gradient of every
//! parameter, and after the second update every parameter and running statistic.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Check, Tol, compare};
use crate::error::Result;
use crate::nn::{Arch, Network};
use crate::ops::loss::cross_entropy;
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
        let want = step(cpu_net.as_mut(), &mut cpu_sgd, &x, &labels)?;
        let got = step(dev_net.as_mut(), &mut dev_sgd, &x_dev, &labels)?;
        checks.push(compare("train step: loss", format!("step {s}"), &got.loss, &want.loss, OUTPUT));
        checks.push(compare("train step: logits", format!("step {s}"), &got.logits, &want.logits, OUTPUT));
        for ((name, g), (_, w)) in got.grads.iter().zip(&want.grads) {
            checks.push(compare("train step: gradient", format!("step {s} {name}"), g, w, GRADIENT));
        }
    }
    for ((name, g), (_, w)) in tensors(dev_net.as_mut())?.iter().zip(&tensors(cpu_net.as_mut())?) {
        checks.push(compare("train step: after update", name.clone(), g, w, GRADIENT));
    }
    Ok(checks)
}
