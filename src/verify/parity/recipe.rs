//! Two training steps of every distillation recipe on a device against the same steps on the
//! CPU: IE-FT (Coder encoders), FT (the paraphraser and translator, so the transposed
//! convolution), KD, AT, IE-AT, DML, IE-DML (its online auto-encoder), OD and IE-OD (their
//! connectors, margins and partial L2 distances), each with ResNet-8
//! networks on four 8x8 images. Compared: each step's loss and loss terms, then every tensor of
//! the resume state (networks, encoders, running statistics, momentum buffers).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Check, Tol, compare};
use crate::checkpoint::Checkpoint;
use crate::distill::{
    DistillConfig, Distiller, EncoderKind, FactorAutoEncoder, FrozenTeacher, Mutual, Recon, SplitKind,
};
use crate::distill::{Method, resnet56_to_resnet20};
use crate::error::Result;
use crate::nn::{Arch, Network};
use crate::optim::SgdConfig;
use crate::tensor::Tensor;
use crate::tensor::device::Device;
use crate::train::Trainee;

/// Loss values and the trained tensors: sums in another order through two networks and steps.
const TOL: Tol = Tol { atol: 1e-4, rtol: 1e-3 };

pub(super) const SGD: SgdConfig = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true };
const FACTOR: usize = 8;

/// The recipes checked, with the encoder family each uses.
const RECIPES: [(Method, EncoderKind); 9] = [
    (Method::IeFt, EncoderKind::Coder),
    (Method::Ft, EncoderKind::Paraphraser),
    (Method::Kd, EncoderKind::Coder),
    (Method::At, EncoderKind::Coder),
    (Method::IeAt, EncoderKind::Coder),
    (Method::Dml, EncoderKind::Coder),
    (Method::IeDml, EncoderKind::Coder),
    (Method::Od, EncoderKind::Coder),
    (Method::IeOd, EncoderKind::Coder),
];

pub(super) fn net(seed: u64) -> Result<Box<dyn Network>> {
    "resnet8".parse::<Arch>()?.build(3, 10, &mut ChaCha8Rng::seed_from_u64(seed))
}

/// The trainee of `method`, built the same way on every call.
pub(super) fn trainee(method: Method, encoder: EncoderKind) -> Result<Box<dyn Trainee>> {
    let config = DistillConfig { encoder, split: SplitKind::Random, ..DistillConfig::new(method, SGD, 5) };
    if method.is_mutual() {
        return Ok(Box::new(Mutual::new(net(1)?, net(2)?, config, FACTOR, Recon::L1)?));
    }
    let ae = FactorAutoEncoder::new(encoder, 64, FACTOR, &mut ChaCha8Rng::seed_from_u64(3))?;
    let teacher = FrozenTeacher::new(net(4)?, Some(ae));
    Ok(Box::new(Distiller::new(net(1)?, Some(teacher), config)?))
}

/// Every tensor of the trainee's resume state, sorted by name.
pub(super) fn state(t: &mut dyn Trainee) -> Result<Vec<(String, Vec<f32>)>> {
    let mut ckpt = Checkpoint::new();
    t.save_state(&mut ckpt)?;
    Ok(ckpt.tensors.into_iter().map(|(name, (_, values))| (name, values)).collect())
}

/// The IE-FT step of the benchmarks on `device` and on the CPU: a ResNet-56 teacher with its
/// Coder(64, 32), a ResNet-20 student with two Coder(32, 32) encoders, `batch` 32x32 images. After
/// one step the momentum buffers hold `gradient + weight_decay * weight`, so comparing the resume
/// state compares every gradient, and the weights after the update. Too slow for the emulation;
/// for a GPU.
pub fn ie_ft_resnet56_step(device: &Device, batch: usize, seed: u64) -> Result<Vec<Check>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
    let x = Tensor::randn(&[batch, 32, 32, 3], 1.0, &mut rng);
    let labels: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let (mut cpu, mut dev) =
        (resnet56_to_resnet20(Method::IeFt, SGD, seed)?, resnet56_to_resnet20(Method::IeFt, SGD, seed)?);
    dev.to_device(device)?;
    let (want, got) = (cpu.train_step(&x, &labels, SGD.lr)?, dev.train_step(&x, &labels, SGD.lr)?);
    let mut checks =
        vec![compare("ie-ft r56->r20: loss", "step 1".into(), &[got.loss as f32], &[want.loss as f32], TOL)];
    for ((name, g), (_, w)) in got.terms.iter().zip(&want.terms) {
        checks.push(compare("ie-ft r56->r20: term", name.clone(), &[*g as f32], &[*w as f32], TOL));
    }
    for ((name, g), (_, w)) in state(&mut dev)?.iter().zip(&state(&mut cpu)?) {
        checks.push(compare("ie-ft r56->r20: after update", name.clone(), g, w, TOL));
    }
    Ok(checks)
}

/// Every recipe's two steps on `device` and on the CPU; one [`Check`] per step value and per
/// tensor of the final state.
pub fn recipe_steps(device: &Device, seed: u64) -> Result<Vec<Check>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Tensor::randn(&[4, 8, 8, 3], 1.0, &mut rng);
    let labels: Vec<usize> = (0..4).map(|_| rng.random_range(0..10)).collect();
    let mut checks = Vec::new();
    for (method, encoder) in RECIPES {
        let (mut cpu, mut dev) = (trainee(method, encoder)?, trainee(method, encoder)?);
        dev.to_device(device)?;
        for s in 1..=2 {
            let want = cpu.train_step(&x, &labels, SGD.lr)?;
            let got = dev.train_step(&x, &labels, SGD.lr)?;
            let case = format!("{} step {s} loss", method.name());
            checks.push(compare("recipe step: loss", case, &[got.loss as f32], &[want.loss as f32], TOL));
            for ((name, g), (_, w)) in got.terms.iter().zip(&want.terms) {
                let case = format!("{} step {s} {name}", method.name());
                checks.push(compare("recipe step: term", case, &[*g as f32], &[*w as f32], TOL));
            }
        }
        for ((name, g), (_, w)) in state(dev.as_mut())?.iter().zip(&state(cpu.as_mut())?) {
            let case = format!("{} {name}", method.name());
            checks.push(compare("recipe step: after update", case, g, w, TOL));
        }
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU check's own machinery, CPU against CPU: every tensor compared, all equal.
    #[test]
    fn ie_ft_resnet56_step_compares_every_tensor() {
        let checks = ie_ft_resnet56_step(&Device::Cpu, 2, 3).unwrap();
        let state = checks.iter().filter(|c| c.kernel.ends_with("after update")).count();
        assert!(state > 200, "{state} tensors compared");
        assert!(checks.iter().any(|c| c.case.contains("momentum.student.fc.weight")));
        assert!(checks.iter().all(|c| c.max_abs == 0.0), "the CPU against itself differs");
    }
}
