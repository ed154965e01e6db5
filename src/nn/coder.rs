//! The factor encoders of IE-KD: [`Coder`] and the teacher's [`AutoEncoder`].
//!
//! `Coder(cin, cout)`, all convolutions 3x3, stride 1, padding 1, no bias, LReLU = LeakyReLU(0.1):
//! `LReLU -> conv1(cin->cin) -> bn1 -> LReLU -> conv2(cin->cout) -> bn2 -> LReLU -> conv3(cout->cout)
//! -> bn3 -> LReLU`. Convolutions are drawn from N(0, 2 / (9 * c_out)) (fan-out He init, as the
//! authors' code does), batch norms start at weight 1, bias 0. Spatial size is preserved.
//! Parameter names: `conv1.weight`, `bn1.{weight, bias, running_mean, running_var,
//! num_batches_tracked}`, likewise `conv2`, `bn2`, `conv3`, `bn3` (the authors' `nn.Sequential`
//! calls them `layers.1`, `layers.2`, `layers.4`, `layers.5`, `layers.7`, `layers.8`).

use rand::Rng;

use super::layers::{After, BatchNorm2d, Conv2d};
use super::{Module, TensorKind, join};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// Negative slope of the coders' LeakyReLU.
pub const LEAKY_SLOPE: f32 = 0.1;

/// Three conv-BN-LeakyReLU layers after a leading LeakyReLU: `[N, H, W, cin] -> [N, H, W, cout]`.
pub struct Coder {
    /// `(conv1, bn1)`, `(conv2, bn2)`, `(conv3, bn3)`.
    layers: [(Conv2d, BatchNorm2d); 3],
}

impl Coder {
    /// A coder from `cin` to `cout` channels, initialised from `rng`.
    pub fn new(cin: usize, cout: usize, rng: &mut impl Rng) -> Result<Self> {
        if cin == 0 || cout == 0 {
            return Err(Error::invalid("coder", format!("channels {cin} -> {cout} must both be >= 1")));
        }
        let layer = |c_in: usize, c_out: usize, rng: &mut _| {
            let conv = Conv2d::new(c_in, c_out, 3, 1, 1, false, (2.0 / (9 * c_out) as f32).sqrt(), rng);
            (conv, BatchNorm2d::new(c_out))
        };
        Ok(Coder { layers: [layer(cin, cin, rng), layer(cin, cout, rng), layer(cout, cout, rng)] })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.layers[0].0.weight.shape()[1]
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.layers[2].0.weight.shape()[0]
    }

    /// The coder applied to channels-last `x: [N, H, W, cin]`; batch norm uses (and updates)
    /// batch statistics when `train`.
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        x.expect_shape("coder", "input", &[None, None, None, Some(self.in_channels())])?;
        let mut h = ops::leaky_relu(x, LEAKY_SLOPE)?;
        for (conv, bn) in &mut self.layers {
            h = ops::leaky_relu(&bn.forward_conv(conv, &h, train, After::Identity)?, LEAKY_SLOPE)?;
        }
        Ok(h)
    }
}

impl Module for Coder {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        for (i, (conv, bn)) in self.layers.iter_mut().enumerate() {
            conv.visit(&join(prefix, &format!("conv{}", i + 1)), f);
            bn.visit(&join(prefix, &format!("bn{}", i + 1)), f);
        }
    }
}

/// The teacher's auto-encoder: `encoder = Coder(C_T, c)` makes the factor, `decoder = Coder(c, C_T)`
/// reconstructs the feature from it. Names: `encoder.*`, `decoder.*`.
pub struct AutoEncoder {
    /// Feature to factor.
    pub encoder: Coder,
    /// Factor back to feature.
    pub decoder: Coder,
}

impl AutoEncoder {
    /// An auto-encoder for `feature_channels`-channel features and `factor_channels`-channel factors.
    pub fn new(feature_channels: usize, factor_channels: usize, rng: &mut impl Rng) -> Result<Self> {
        Ok(AutoEncoder {
            encoder: Coder::new(feature_channels, factor_channels, rng)?,
            decoder: Coder::new(factor_channels, feature_channels, rng)?,
        })
    }

    /// The factor of `x: [N, H, W, C_T]`, `[N, H, W, c]`.
    pub fn encode(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.encoder.forward(x, train)
    }

    /// The factor of `x` and the reconstruction of `x` from it.
    pub fn reconstruct(&mut self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let factor = self.encoder.forward(x, train)?;
        let reconstruction = self.decoder.forward(&factor, train)?;
        Ok((factor, reconstruction))
    }
}

impl Module for AutoEncoder {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.encoder.visit(&join(prefix, "encoder"), f);
        self.decoder.visit(&join(prefix, "decoder"), f);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::tensor::autograd;

    fn names(m: &mut impl Module) -> Vec<String> {
        let mut names = Vec::new();
        m.visit("", &mut |name, _, _| names.push(name.to_string()));
        names
    }

    #[test]
    fn coder_64_to_32_has_64768_parameters() {
        let mut coder = Coder::new(64, 32, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(coder.num_params(), 64_768);
        let mut ae = AutoEncoder::new(64, 32, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(
            ae.num_params(),
            64_768 + Coder::new(32, 64, &mut ChaCha8Rng::seed_from_u64(0)).unwrap().num_params()
        );
    }

    #[test]
    fn names_and_initialisation() {
        let mut ae = AutoEncoder::new(64, 32, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let names = names(&mut ae);
        for want in
            ["encoder.conv1.weight", "encoder.bn3.running_var", "decoder.conv3.weight", "decoder.bn1.bias"]
        {
            assert!(names.iter().any(|n| n == want), "missing {want}");
        }
        assert!(!names.iter().any(|n| n.ends_with("conv1.bias")));
        // conv2 of the encoder: 64 -> 32, std sqrt(2 / (9 * 32)) = 0.0833.
        let w = ae.encoder.layers[1].0.weight.to_vec().unwrap();
        let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
        assert!((std - (2.0f32 / 288.0).sqrt()).abs() < 0.005, "std {std}");
        assert!(ae.encoder.layers[1].1.weight.host().unwrap().iter().all(|v| *v == 1.0));
        assert!(ae.encoder.layers[1].1.bias.host().unwrap().iter().all(|v| *v == 0.0));
    }

    #[test]
    fn coder_output_is_finite_with_the_right_shape() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut ae = AutoEncoder::new(64, 32, &mut rng).unwrap();
        let x = Tensor::randn(&[4, 8, 8, 64], 1.0, &mut rng);
        for train in [true, false] {
            let _guard = autograd::no_grad();
            let (factor, recon) = ae.reconstruct(&x, train).unwrap();
            assert_eq!(factor.shape(), &[4, 8, 8, 32]);
            assert_eq!(recon.shape(), &[4, 8, 8, 64]);
            assert!(factor.host().unwrap().iter().chain(recon.host().unwrap()).all(|v| v.is_finite()));
            assert_eq!(ae.encode(&x, train).unwrap().shape(), &[4, 8, 8, 32]);
        }
        // Train-mode batch norm then LeakyReLU(0.1): each channel has mean 0 before the
        // activation, so the output cannot be all positive or all negative.
        let (factor, _) = ae.reconstruct(&x, true).unwrap();
        autograd::clear_tape();
        assert!(
            factor.host().unwrap().iter().any(|v| *v > 0.0)
                && factor.host().unwrap().iter().any(|v| *v < 0.0)
        );
    }

    #[test]
    fn gradients_reach_every_parameter() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut ae = AutoEncoder::new(6, 3, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 5, 4, 6], 1.0, &mut rng);
        let (_, recon) = ae.reconstruct(&x, true).unwrap();
        crate::nn::assert_gradients_reach_every_param(&mut ae, &recon, &mut rng);
    }

    #[test]
    fn rejects_wrong_channels() {
        let mut coder = Coder::new(8, 4, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let err = coder.forward(&Tensor::zeros(&[1, 4, 4, 6]), false).err().unwrap();
        assert!(err.to_string().starts_with("coder:"), "{err}");
        assert!(Coder::new(0, 4, &mut ChaCha8Rng::seed_from_u64(0)).is_err());
    }
}
