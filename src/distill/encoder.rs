//! The factor encoders, of either family: IE-KD's [`Coder`] with batch norm, or Factor Transfer's
//! paraphraser (teacher side) and translator (student side) without it.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::nn::{AutoEncoder, Coder, Module, Paraphraser, TensorKind, Translator};
use crate::tensor::Tensor;

/// Which family of encoders to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum EncoderKind {
    /// IE-KD's Coder (three conv-BN-LeakyReLU layers) for the auto-encoder and the students.
    Coder,
    /// Factor Transfer's paraphraser (teacher) and translator (student), no batch norm.
    Paraphraser,
}

impl EncoderKind {
    /// The name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            EncoderKind::Coder => "coder",
            EncoderKind::Paraphraser => "paraphraser",
        }
    }
}

enum AeInner {
    Coder(Box<AutoEncoder>),
    Paraphraser(Box<Paraphraser>),
}

/// A teacher's auto-encoder: feature `[N, H, W, C]` to factor `[N, H, W, c]` and back.
pub struct FactorAutoEncoder {
    inner: AeInner,
    factor_channels: usize,
}

impl FactorAutoEncoder {
    /// An auto-encoder of `kind` for `feature_channels`-channel features and `factor_channels`-channel
    /// factors, initialised from `rng`.
    pub fn new(
        kind: EncoderKind,
        feature_channels: usize,
        factor_channels: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let inner = match kind {
            EncoderKind::Coder => {
                AeInner::Coder(Box::new(AutoEncoder::new(feature_channels, factor_channels, rng)?))
            }
            EncoderKind::Paraphraser => {
                AeInner::Paraphraser(Box::new(Paraphraser::new(feature_channels, factor_channels, rng)?))
            }
        };
        Ok(FactorAutoEncoder { inner, factor_channels })
    }

    /// The encoder family.
    pub fn kind(&self) -> EncoderKind {
        match self.inner {
            AeInner::Coder(_) => EncoderKind::Coder,
            AeInner::Paraphraser(_) => EncoderKind::Paraphraser,
        }
    }

    /// Channels of the factor.
    pub fn factor_channels(&self) -> usize {
        self.factor_channels
    }

    /// The factor of `x` (batch norm in training mode when `train`).
    pub fn encode(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &mut self.inner {
            AeInner::Coder(ae) => ae.encode(x, train),
            AeInner::Paraphraser(p) => p.encode(x),
        }
    }

    /// The factor of `x` and the reconstruction of `x` from it.
    pub fn reconstruct(&mut self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        match &mut self.inner {
            AeInner::Coder(ae) => ae.reconstruct(x, train),
            AeInner::Paraphraser(p) => p.reconstruct(x),
        }
    }
}

impl Module for FactorAutoEncoder {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        match &mut self.inner {
            AeInner::Coder(ae) => ae.visit(prefix, f),
            AeInner::Paraphraser(p) => p.visit(prefix, f),
        }
    }
}

/// Reads an auto-encoder written by `iekd autoencoder` (its `model.safetensors`) for a teacher
/// with `feature_channels` channels. The family and the factor width are read from the tensors:
/// `encoder.conv3.weight: [c, c, 3, 3]` for a Coder, `conv2.weight: [c, c, 3, 3]` beside
/// `deconv0.weight` for a paraphraser.
pub fn load_autoencoder(path: &Path, feature_channels: usize) -> Result<FactorAutoEncoder> {
    let ckpt = Checkpoint::load(path)?;
    let shape = |name: &str| ckpt.tensors.get(name).map(|(s, _)| s.clone());
    let (kind, factor) = match (shape("encoder.conv3.weight"), shape("conv2.weight"), shape("deconv0.weight"))
    {
        (Some(s), _, _) => (EncoderKind::Coder, s[0]),
        (None, Some(s), Some(_)) => (EncoderKind::Paraphraser, s[0]),
        _ => {
            return Err(Error::format(path, None, "not an auto-encoder written by `iekd autoencoder`"));
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ae = FactorAutoEncoder::new(kind, feature_channels, factor, &mut rng)?;
    ckpt.load_module("", &mut ae).map_err(|e| Error::format(path, None, e.to_string()))?;
    Ok(ae)
}

/// A student-side encoder: maps (part of) the student's feature to the factor space.
pub enum StudentEncoder {
    /// IE-KD's `Coder(C_in, c)`.
    Coder(Box<Coder>),
    /// Factor Transfer's translator.
    Translator(Box<Translator>),
}

impl StudentEncoder {
    /// An encoder of `kind` from `c_in` channels to `factor` channels, initialised from `rng`.
    pub fn new(kind: EncoderKind, c_in: usize, factor: usize, rng: &mut impl Rng) -> Result<Self> {
        Ok(match kind {
            EncoderKind::Coder => StudentEncoder::Coder(Box::new(Coder::new(c_in, factor, rng)?)),
            EncoderKind::Paraphraser => {
                StudentEncoder::Translator(Box::new(Translator::new(c_in, factor, rng)?))
            }
        })
    }

    /// The factor of `x` (batch norm in training mode when `train`).
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            StudentEncoder::Coder(c) => c.forward(x, train),
            StudentEncoder::Translator(t) => t.forward(x),
        }
    }
}

impl Module for StudentEncoder {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        match self {
            StudentEncoder::Coder(c) => c.visit(prefix, f),
            StudentEncoder::Translator(t) => t.visit(prefix, f),
        }
    }
}
