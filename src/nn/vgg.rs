//! VGG-13 with batch norm for CIFAR, as RepDistiller's `vgg13` (`models/vgg.py`, cfg `'B'`): five
//! blocks of 3x3 convolutions (with bias) + BN + ReLU, widths `[64, 64]`, `[128, 128]`,
//! `[256, 256]`, `[512, 512]`, `[512, 512]`; a 2x2 max pool after blocks 0, 1 and 2, and after
//! block 3 only for 64x64 inputs (RepDistiller's `if h == 64: x = self.pool3(x)`; on 32x32 CIFAR
//! images block 4 runs at 4x4); then global average pooling (`AdaptiveAvgPool2d(1)`) and a linear
//! classifier 512 -> classes. 9,416,010 parameters for 10 classes, 9,462,180 for 100.
//!
//! Names follow RepDistiller: `block{b}.{3i}` is the i-th convolution of block b and
//! `block{b}.{3i + 1}` its batch norm (the blocks are `Sequential`s of conv, BN, ReLU), and
//! `classifier`. Initialisation as its `_initialize_weights`: convolutions N(0, 2 / (9 * C_out))
//! with zero bias, BN weight 1 and bias 0, classifier N(0, 0.01^2) with zero bias.
//!
//! Distillation outputs: the groups are the outputs of blocks 1, 2 and 4 after their ReLU
//! (RepDistiller's `f1`, `f2`, `f4`: 128, 256 and 512 channels at 16x16, 8x8 and 4x4 on CIFAR),
//! the last being the feature before pooling. The pre-ReLU stage features
//! ([`Network::forward_pre_relu`], Overhaul distillation) are the same three blocks' outputs
//! before that ReLU: the output of their second batch norm (`block1.4`, `block2.4`, `block4.4`,
//! RepDistiller's `preact` features and `get_bn_before_relu`), 128, 256 and 512 channels at 16x16,
//! 8x8 and 4x4 on CIFAR; the margins come from those batch norms.

use rand::Rng;

use super::layers::{After, BatchNorm2d, Conv2d, Linear};
use super::{Module, Network, Output, PreRelu, TensorKind, join, run_stage};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// The widths of the five blocks (two convolutions each).
pub const WIDTHS: [usize; 5] = [64, 128, 256, 512, 512];

/// The input height at which block 3 is followed by a max pool (RepDistiller's rule).
const POOL3_HEIGHT: usize = 64;

struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl ConvBn {
    fn new(c_in: usize, c_out: usize, rng: &mut impl Rng) -> Self {
        let mut conv = Conv2d::new(c_in, c_out, 3, 1, 1, false, (2.0 / (9 * c_out) as f32).sqrt(), rng);
        conv.bias = Some(Tensor::zeros(&[c_out]).into_param());
        ConvBn { conv, bn: BatchNorm2d::new(c_out) }
    }
}

impl PreRelu for ConvBn {
    fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_conv(&self.conv, x, train, After::Relu)
    }

    /// The output and the batch norm's output before the ReLU (batch norm and ReLU unfused).
    fn forward_pre_relu(&mut self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let pre = self.bn.forward_conv(&self.conv, x, train, After::Identity)?;
        Ok((ops::relu(&pre)?, pre))
    }
}

/// The blocks whose outputs are the distillation groups and pre-ReLU stages.
const GROUP_BLOCKS: [usize; 3] = [1, 2, 4];

/// VGG-13 with batch norm (RepDistiller's `vgg13`).
pub struct Vgg {
    blocks: [Vec<ConvBn>; 5],
    classifier: Linear,
}

impl Vgg {
    /// VGG-13 for `in_channels`-channel images and `classes` classes, initialised from `rng`.
    pub fn vgg13(in_channels: usize, classes: usize, rng: &mut impl Rng) -> Result<Self> {
        if in_channels == 0 || classes == 0 {
            return Err(Error::invalid(
                "vgg13",
                format!("{in_channels} input channels and {classes} classes must both be >= 1"),
            ));
        }
        let mut c_in = in_channels;
        let blocks = WIDTHS.map(|c_out| {
            (0..2)
                .map(|_| {
                    let layer = ConvBn::new(c_in, c_out, rng);
                    c_in = c_out;
                    layer
                })
                .collect()
        });
        let classifier = Linear {
            weight: Tensor::randn(&[classes, WIDTHS[4]], 0.01, rng).into_param(),
            bias: Tensor::zeros(&[classes]).into_param(),
        };
        Ok(Vgg { blocks, classifier })
    }
}

impl Network for Vgg {
    /// The pre-ReLU stages are blocks 1, 2 and 4's last batch norm outputs (see the module doc).
    fn forward_with(&mut self, x: &Tensor, train: bool, pre_relu: bool) -> Result<(Output, Vec<Tensor>)> {
        let pool3 = x.shape().get(1) == Some(&POOL3_HEIGHT);
        let mut h = x.clone();
        let (mut outs, mut pre) = (Vec::with_capacity(5), Vec::new());
        for (b, block) in self.blocks.iter_mut().enumerate() {
            let unfused = (pre_relu && GROUP_BLOCKS.contains(&b)).then(|| block.len() - 1);
            h = run_stage(block, &h, train, unfused, &mut pre)?;
            outs.push(h.clone());
            if b < 3 || (b == 3 && pool3) {
                h = ops::max_pool2d(&h)?;
            }
        }
        let logits = self.classifier.forward(&ops::pool::global_avg_pool(&outs[4])?)?;
        let groups = GROUP_BLOCKS.map(|b| outs[b].clone());
        Ok((Output { logits, groups }, pre))
    }

    fn pre_relu_bns(&self) -> Result<[&BatchNorm2d; 3]> {
        match GROUP_BLOCKS.map(|b| self.blocks[b].last().map(|l| &l.bn)) {
            [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
            _ => Err(Error::invalid("vgg13", "a block without layers")),
        }
    }

    fn feature_channels(&self) -> usize {
        WIDTHS[4]
    }

    fn group_channels(&self) -> [usize; 3] {
        [WIDTHS[1], WIDTHS[2], WIDTHS[4]]
    }

    fn name(&self) -> String {
        "vgg13".into()
    }
}

impl Module for Vgg {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        for (b, block) in self.blocks.iter_mut().enumerate() {
            for (i, layer) in block.iter_mut().enumerate() {
                layer.conv.visit(&join(prefix, &format!("block{b}.{}", 3 * i)), f);
                layer.bn.visit(&join(prefix, &format!("block{b}.{}", 3 * i + 1)), f);
            }
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::tensor::autograd;

    #[test]
    fn cifar_shapes_and_the_pool3_rule() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = Vgg::vgg13(3, 10, &mut rng).unwrap();
        let _guard = autograd::no_grad();
        let out = net.forward(&Tensor::randn(&[1, 32, 32, 3], 1.0, &mut rng), false).unwrap();
        assert_eq!(out.logits.shape(), &[1, 10]);
        assert_eq!(out.groups[0].shape(), &[1, 16, 16, 128]);
        assert_eq!(out.groups[1].shape(), &[1, 8, 8, 256]);
        assert_eq!(out.groups[2].shape(), &[1, 4, 4, 512]);
        let out = net.forward(&Tensor::randn(&[1, 64, 64, 3], 1.0, &mut rng), false).unwrap();
        assert_eq!(out.groups[2].shape(), &[1, 4, 4, 512]);
    }

    #[test]
    fn pre_relu_stages_are_the_groups_before_their_relu() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut net = Vgg::vgg13(1, 10, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 16, 16, 1], 1.0, &mut rng);
        let plain = net.forward(&x, true).unwrap();
        let (out, pre) = net.forward_pre_relu(&x, true).unwrap();
        assert_eq!(
            pre.each_ref().map(|p| p.shape().to_vec()),
            [[2, 8, 8, 128], [2, 4, 4, 256], [2, 2, 2, 512]]
        );
        for (g, p) in pre.iter().enumerate() {
            let relu: Vec<f32> = p.to_vec().unwrap().iter().map(|v| v.max(0.0)).collect();
            assert_eq!(relu, out.groups[g].to_vec().unwrap(), "group {g}");
            assert!(p.to_vec().unwrap().iter().any(|v| *v < 0.0), "group {g} has no negative value");
        }
        let (a, b) = (plain.logits.to_vec().unwrap(), out.logits.to_vec().unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-5));
        assert_eq!(net.pre_relu_bns().unwrap().map(|bn| bn.weight.numel()), net.group_channels());
    }
}
