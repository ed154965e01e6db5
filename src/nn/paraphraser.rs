//! Factor Transfer's original paraphraser and translator (Kim et al., NeurIPS 2018), generalised
//! from 64/32 channels to `c_in`/`factor`.
//!
//! All layers are 3x3, stride 1, padding 1, with bias, each followed by LeakyReLU(0.1); no batch
//! norm. Paraphraser encoder: `conv0(c_in->c_in) -> conv1(c_in->factor) -> conv2(factor->factor)`;
//! decoder (transposed convolutions): `deconv0(factor->factor) -> deconv1(factor->c_in) ->
//! deconv2(c_in->c_in)`. Translator: `conv0 -> conv1 -> conv2` as the paraphraser's encoder.
//! Names and initialisation are those of the original PyTorch code (PyTorch's default: weight and
//! bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where a transposed convolution's fan_in is
//! `C_out * 9` because its weight is `[C_in, C_out, 3, 3]`).

use rand::Rng;

use super::coder::LEAKY_SLOPE;
use super::layers::Conv2d;
use super::{Module, TensorKind, join, visit_numbered};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// A 3x3 stride-1 padding-1 convolution with bias, initialised as PyTorch's default.
fn conv3x3(c_in: usize, c_out: usize, rng: &mut impl Rng) -> Conv2d {
    let bound = 1.0 / ((c_in * 9) as f32).sqrt();
    Conv2d {
        weight: Tensor::uniform(&[c_out, c_in, 3, 3], bound, rng).into_param(),
        bias: Some(Tensor::uniform(&[c_out], bound, rng).into_param()),
        stride: 1,
        pad: 1,
    }
}

/// A transposed convolution layer (`weight: [C_in, C_out, KH, KW]`, `bias: [C_out]`).
pub struct ConvTranspose2d {
    /// The kernel, in PyTorch's `ConvTranspose2d` layout.
    pub weight: Tensor,
    /// The bias.
    pub bias: Tensor,
    /// Stride in both directions.
    pub stride: usize,
    /// Padding in both directions.
    pub pad: usize,
}

impl ConvTranspose2d {
    /// A 3x3 stride-1 padding-1 transposed convolution with bias, initialised as PyTorch's default.
    pub fn new3x3(c_in: usize, c_out: usize, rng: &mut impl Rng) -> Self {
        let bound = 1.0 / ((c_out * 9) as f32).sqrt();
        ConvTranspose2d {
            weight: Tensor::uniform(&[c_in, c_out, 3, 3], bound, rng).into_param(),
            bias: Tensor::uniform(&[c_out], bound, rng).into_param(),
            stride: 1,
            pad: 1,
        }
    }

    /// The transposed convolution of channels-last `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv_transpose2d(x, &self.weight, Some(&self.bias), self.stride, self.pad)
    }
}

impl Module for ConvTranspose2d {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        f(&join(prefix, "weight"), &mut self.weight, TensorKind::Param);
        f(&join(prefix, "bias"), &mut self.bias, TensorKind::Param);
    }
}

/// The three convolutions of an encoder from `c_in` channels to a `factor`-channel factor:
/// `c_in -> c_in -> factor -> factor`, after checking both counts (`op` names the error).
fn encoder_convs(op: &'static str, c_in: usize, factor: usize, rng: &mut impl Rng) -> Result<[Conv2d; 3]> {
    if c_in == 0 || factor == 0 {
        return Err(Error::invalid(op, format!("channels {c_in} and factor {factor} must both be >= 1")));
    }
    Ok([conv3x3(c_in, c_in, rng), conv3x3(c_in, factor, rng), conv3x3(factor, factor, rng)])
}

/// `LReLU(conv2(LReLU(conv1(LReLU(conv0(x))))))`, after checking that `x` has `convs[0]`'s channels.
fn encode(op: &'static str, convs: &[Conv2d; 3], x: &Tensor) -> Result<Tensor> {
    x.expect_shape(op, "input", &[None, None, None, Some(convs[0].weight.shape()[1])])?;
    convs.iter().try_fold(x.clone(), |h, conv| ops::leaky_relu(&conv.forward(&h)?, LEAKY_SLOPE))
}

/// The paraphraser: an auto-encoder of the teacher feature without batch norm.
pub struct Paraphraser {
    convs: [Conv2d; 3],
    deconvs: [ConvTranspose2d; 3],
}

impl Paraphraser {
    /// A paraphraser for `c_in`-channel features with `factor`-channel factors (64 and 32 in the
    /// original), initialised from `rng`.
    pub fn new(c_in: usize, factor: usize, rng: &mut impl Rng) -> Result<Self> {
        Ok(Paraphraser {
            convs: encoder_convs("paraphraser", c_in, factor, rng)?,
            deconvs: [
                ConvTranspose2d::new3x3(factor, factor, rng),
                ConvTranspose2d::new3x3(factor, c_in, rng),
                ConvTranspose2d::new3x3(c_in, c_in, rng),
            ],
        })
    }

    /// The factor of `x: [N, H, W, c_in]`, `[N, H, W, factor]` (the original's mode 1).
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        encode("paraphraser", &self.convs, x)
    }

    /// The feature rebuilt from `factor: [N, H, W, factor]` (the original's mode 2).
    pub fn decode(&self, factor: &Tensor) -> Result<Tensor> {
        factor.expect_shape(
            "paraphraser",
            "factor",
            &[None, None, None, Some(self.deconvs[0].weight.shape()[0])],
        )?;
        self.deconvs.iter().try_fold(factor.clone(), |h, d| ops::leaky_relu(&d.forward(&h)?, LEAKY_SLOPE))
    }

    /// The factor of `x` and the reconstruction of `x` from it (the original's mode 0).
    pub fn reconstruct(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let factor = self.encode(x)?;
        let reconstruction = self.decode(&factor)?;
        Ok((factor, reconstruction))
    }
}

impl Module for Paraphraser {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        visit_numbered(&mut self.convs, prefix, |i| format!("conv{i}"), f);
        visit_numbered(&mut self.deconvs, prefix, |i| format!("deconv{i}"), f);
    }
}

/// The translator: maps the student feature to the teacher's factor space.
pub struct Translator {
    convs: [Conv2d; 3],
}

impl Translator {
    /// A translator from `c_in`-channel student features to `factor`-channel factors.
    pub fn new(c_in: usize, factor: usize, rng: &mut impl Rng) -> Result<Self> {
        Ok(Translator { convs: encoder_convs("translator", c_in, factor, rng)? })
    }

    /// The student's factor of `x: [N, H, W, c_in]`, `[N, H, W, factor]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        encode("translator", &self.convs, x)
    }
}

impl Module for Translator {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        visit_numbered(&mut self.convs, prefix, |i| format!("conv{i}"), f);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::tensor::autograd;

    fn assert_all_params_get_gradients(m: &mut impl Module, grads: &autograd::Gradients) {
        m.visit("", &mut |name, t, kind| {
            assert_eq!(kind, TensorKind::Param);
            let g = grads.get(t).unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(g.host().unwrap().iter().any(|v| *v != 0.0), "zero gradient for {name}");
        });
    }

    #[test]
    fn parameter_counts_of_the_original_64_32_modules() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Encoder (64*64 + 64*32 + 32*32) * 9 + 64 + 32 + 32 = 64,640; the decoder mirrors it
        // with biases 32 + 64 + 64.
        assert_eq!(Paraphraser::new(64, 32, &mut rng).unwrap().num_params(), 64_640 + 64_672);
        assert_eq!(Translator::new(64, 32, &mut rng).unwrap().num_params(), 64_640);
    }

    #[test]
    fn names_follow_the_original_code() {
        let mut p = Paraphraser::new(64, 32, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let mut names = Vec::new();
        p.visit("paraphraser", &mut |name, t, _| names.push((name.to_string(), t.shape().to_vec())));
        for (want, shape) in [
            ("paraphraser.conv0.weight", vec![64, 64, 3, 3]),
            ("paraphraser.conv1.bias", vec![32]),
            ("paraphraser.deconv1.weight", vec![32, 64, 3, 3]),
            ("paraphraser.deconv2.bias", vec![64]),
        ] {
            assert!(names.iter().any(|(n, s)| *n == want && *s == shape), "missing {want} {shape:?}");
        }
    }

    #[test]
    fn shapes_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut p = Paraphraser::new(6, 3, &mut rng).unwrap();
        let x = Tensor::randn(&[3, 5, 4, 6], 1.0, &mut rng);
        let (factor, recon) = p.reconstruct(&x).unwrap();
        assert_eq!(factor.shape(), &[3, 5, 4, 3]);
        assert_eq!(recon.shape(), x.shape());
        assert!(recon.host().unwrap().iter().all(|v| v.is_finite()));
        let grads = autograd::backward_with(&recon, Tensor::randn(recon.shape(), 1.0, &mut rng)).unwrap();
        assert_all_params_get_gradients(&mut p, &grads);

        let mut t = Translator::new(6, 3, &mut rng).unwrap();
        let y = t.forward(&x).unwrap();
        assert_eq!(y.shape(), &[3, 5, 4, 3]);
        let grads = autograd::backward_with(&y, Tensor::randn(y.shape(), 1.0, &mut rng)).unwrap();
        assert_all_params_get_gradients(&mut t, &grads);
    }

    #[test]
    fn rejects_wrong_channels() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let p = Paraphraser::new(8, 4, &mut rng).unwrap();
        let err = p.encode(&Tensor::zeros(&[1, 4, 4, 4])).err().unwrap();
        assert!(err.to_string().starts_with("paraphraser:"), "{err}");
        assert!(p.decode(&Tensor::zeros(&[1, 4, 4, 8])).is_err());
        assert!(Translator::new(8, 0, &mut rng).is_err());
    }
}
