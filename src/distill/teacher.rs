//! The frozen teacher: a trained network and, optionally, its trained auto-encoder, run in
//! evaluation mode without recording, so that nothing of it is ever updated.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::encoder::{FactorAutoEncoder, load_autoencoder};
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::nn::{Arch, Module, Network};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// What the teacher says about a batch.
pub struct TeacherOutput {
    /// Class scores, `[N, classes]`.
    pub logits: Tensor,
    /// The three group outputs; the last is the distillation feature `F_T`.
    pub groups: [Tensor; 3],
    /// The factor `R_T = encoder(F_T)`, when the teacher has an auto-encoder.
    pub factor: Option<Tensor>,
    /// The three stages' pre-ReLU outputs, when asked for ([`FrozenTeacher::forward_pre_relu`]).
    pub pre_relu: Option<[Tensor; 3]>,
}

/// A trained network (and auto-encoder) that is only ever run forward, in evaluation mode.
pub struct FrozenTeacher {
    /// The teacher network.
    pub net: Box<dyn Network>,
    /// Its auto-encoder, for the factor-based recipes.
    pub autoencoder: Option<FactorAutoEncoder>,
}

impl FrozenTeacher {
    /// A teacher from already built parts.
    pub fn new(net: Box<dyn Network>, autoencoder: Option<FactorAutoEncoder>) -> Self {
        FrozenTeacher { net, autoencoder }
    }

    /// Loads the network `arch` from `model` (a model file of `iekd train`) and, when given, its
    /// auto-encoder from `autoencoder` (a model file of `iekd autoencoder`).
    pub fn load(
        arch: Arch,
        model: &Path,
        autoencoder: Option<&Path>,
        in_channels: usize,
        classes: usize,
    ) -> Result<Self> {
        let net = load_network(arch, model, in_channels, classes)?;
        let autoencoder = autoencoder.map(|p| load_autoencoder(p, arch.feature_channels())).transpose()?;
        Ok(FrozenTeacher { net, autoencoder })
    }

    /// Moves the network and its auto-encoder to `device`.
    pub fn to_device(&mut self, device: &crate::Device) -> Result<()> {
        self.net.to_device(device)?;
        self.autoencoder.as_mut().map_or(Ok(()), |ae| ae.to_device(device))
    }

    /// Logits, group outputs and factor of `images` (copied to the teacher's device), computed in evaluation mode without recording.
    pub fn forward(&mut self, images: &Tensor) -> Result<TeacherOutput> {
        self.run(images, false)
    }

    /// [`FrozenTeacher::forward`] with the pre-ReLU stage outputs (Overhaul distillation).
    pub fn forward_pre_relu(&mut self, images: &Tensor) -> Result<TeacherOutput> {
        self.run(images, true)
    }

    fn run(&mut self, images: &Tensor, pre_relu: bool) -> Result<TeacherOutput> {
        let _guard = autograd::no_grad();
        let images = images.to_device(&self.net.device())?;
        let (out, pre_relu) = if pre_relu {
            let (out, pre) = self.net.forward_pre_relu(&images, false)?;
            (out, Some(pre))
        } else {
            (self.net.forward(&images, false)?, None)
        };
        let factor = match &mut self.autoencoder {
            Some(ae) => Some(ae.encode(&out.groups[2], false)?),
            None => None,
        };
        Ok(TeacherOutput { logits: out.logits, groups: out.groups, factor, pre_relu })
    }

    /// The factor's channels, or an error naming `method` when there is no auto-encoder.
    pub fn factor_channels(&self, method: &str) -> Result<usize> {
        self.autoencoder.as_ref().map(FactorAutoEncoder::factor_channels).ok_or_else(|| {
            Error::invalid("distill", format!("{method} needs the teacher's auto-encoder (--autoencoder)"))
        })
    }
}

/// The network `arch` with the weights of the model file `path`.
pub fn load_network(arch: Arch, path: &Path, in_channels: usize, classes: usize) -> Result<Box<dyn Network>> {
    let mut net = arch.build(in_channels, classes, &mut ChaCha8Rng::seed_from_u64(0))?;
    Checkpoint::load(path)?.load_module("", net.as_mut()).map_err(|e| {
        Error::format(
            path,
            None,
            format!("is not a {arch} for {in_channels}-channel images and {classes} classes: {e}"),
        )
    })?;
    Ok(net)
}
