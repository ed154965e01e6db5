//! MobileNetV2 for CIFAR as RepDistiller's `mobile_half` (`models/mobilenetv2.py`,
//! `mobilenetv2_T_w(T = 6, W = 0.5)`): a 3x3 stride-2 stem 3 -> 16 + BN + ReLU; seven stages of
//! inverted residual blocks `(t, c, n, s)` = (1, 8, 1, 1), (6, 12, 2, 1), (6, 16, 3, 2),
//! (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2), (6, 160, 1, 1) (the paper's channels halved; the
//! CIFAR strides); a 1x1 convolution 160 -> 1280 + BN + ReLU; global average pooling and a linear
//! classifier 1280 -> classes. No convolution has a bias. 697,546 parameters for 10 classes,
//! 812,836 for 100.
//!
//! A block is `1x1 expand (C -> tC) + BN + ReLU -> 3x3 depthwise (stride s) + BN + ReLU -> 1x1
//! project (tC -> C') + BN`, plus the input when `s = 1` and `C = C'`; the expansion convolution is
//! there even for t = 1, as in RepDistiller. Its activation is ReLU, as RepDistiller's (torchvision's
//! MobileNetV2 uses ReLU6, [`crate::ops::relu6`]). RepDistiller's `AvgPool2d(2, ceil_mode=True)`
//! is global average pooling on 32x32 images (2x2 maps) and is taken as such on every size.
//!
//! Names follow RepDistiller: `conv1.0` / `conv1.1`, `blocks.{stage}.{i}.conv.{0,1,3,4,6,7}`,
//! `conv2.0` / `conv2.1`, `classifier.0`. Initialisation as its `_initialize_weights`:
//! convolutions N(0, 2 / (k * k * C_out)), BN weight 1 and bias 0, classifier N(0, 0.01^2), bias 0.
//!
//! Distillation outputs: the groups are the outputs of stages 2 and 4 (RepDistiller's `f2` and `f3`:
//! 16 and 48 channels at 8x8 and 4x4 on CIFAR; linear bottlenecks, so not post-ReLU) and of the
//! final 1x1 convolution after its ReLU (1280 channels at 2x2), the feature before pooling.
//! The pre-ReLU stage features ([`Network::forward_pre_relu`], Overhaul distillation) are, for
//! stages 2 and 4, those outputs themselves (a linear bottleneck has no ReLU; the last block of
//! stage 2 adds its input to its projection's batch norm), with the margins from the last block's
//! projection batch norm (`blocks.2.2.conv.7`, `blocks.4.2.conv.7`, as RepDistiller's
//! `get_bn_before_relu`); for the last, the output of the final batch norm `conv2.1` before its
//! ReLU, with its margin from `conv2.1`.

use rand::Rng;

use super::layers::{After, BatchNorm2d, Conv2d, Linear};
use super::{Module, Network, Output, TensorKind, join};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// The stages `(expansion t, output channels c, blocks n, stride s)` at width 0.5.
pub const STAGES: [(usize, usize, usize, usize); 7] =
    [(1, 8, 1, 1), (6, 12, 2, 1), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2), (6, 160, 1, 1)];
/// Channels of the stem.
pub const STEM: usize = 16;
/// Channels of the final 1x1 convolution: the distillation feature.
pub const LAST: usize = 1280;

/// A convolution initialised as RepDistiller's MobileNetV2: N(0, 2 / (k * k * C_out)), where C_out
/// counts the depthwise filters too.
fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, rng: &mut impl Rng) -> Conv2d {
    Conv2d::new(c_in, c_out, k, stride, k / 2, false, (2.0 / (k * k * c_out) as f32).sqrt(), rng)
}

struct InvertedResidual {
    expand: Conv2d,
    bn1: BatchNorm2d,
    depthwise: Conv2d,
    bn2: BatchNorm2d,
    project: Conv2d,
    bn3: BatchNorm2d,
    residual: bool,
}

impl InvertedResidual {
    fn new(c_in: usize, c_out: usize, stride: usize, t: usize, rng: &mut impl Rng) -> Self {
        let hidden = c_in * t;
        let expand = conv(c_in, hidden, 1, 1, rng);
        // The depthwise filter `[C, 1, 3, 3]` has the shape of a convolution 1 -> C.
        let depthwise = conv(1, hidden, 3, stride, rng);
        InvertedResidual {
            expand,
            bn1: BatchNorm2d::new(hidden),
            depthwise,
            bn2: BatchNorm2d::new(hidden),
            project: conv(hidden, c_out, 1, 1, rng),
            bn3: BatchNorm2d::new(c_out),
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.bn1.forward_conv(&self.expand, x, train, After::Relu)?;
        let dw = &self.depthwise;
        let h = self.bn2.forward(
            &ops::depthwise_conv2d(&h, &dw.weight, dw.stride, dw.pad)?,
            train,
            After::Relu,
        )?;
        let h = self.project.forward(&h)?;
        if self.residual {
            self.bn3.forward(&h, train, After::Identity).and_then(|h| ops::add(x, &h))
        } else {
            self.bn3.forward(&h, train, After::Identity)
        }
    }
}

impl Module for InvertedResidual {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.expand.visit(&join(prefix, "conv.0"), f);
        self.bn1.visit(&join(prefix, "conv.1"), f);
        self.depthwise.visit(&join(prefix, "conv.3"), f);
        self.bn2.visit(&join(prefix, "conv.4"), f);
        self.project.visit(&join(prefix, "conv.6"), f);
        self.bn3.visit(&join(prefix, "conv.7"), f);
    }
}

/// MobileNetV2 at width 0.5 with expansion 6 (RepDistiller's `mobile_half`).
pub struct MobileNetV2 {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    stages: Vec<Vec<InvertedResidual>>,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    classifier: Linear,
}

impl MobileNetV2 {
    /// `mobile_half` for `in_channels`-channel images and `classes` classes, initialised from `rng`.
    pub fn half(in_channels: usize, classes: usize, rng: &mut impl Rng) -> Result<Self> {
        if in_channels == 0 || classes == 0 {
            return Err(Error::invalid(
                "mobilenetv2",
                format!("{in_channels} input channels and {classes} classes must both be >= 1"),
            ));
        }
        let conv1 = conv(in_channels, STEM, 3, 2, rng);
        let mut c_in = STEM;
        let stages = STAGES
            .iter()
            .map(|&(t, c, n, s)| {
                (0..n)
                    .map(|i| {
                        let block = InvertedResidual::new(c_in, c, if i == 0 { s } else { 1 }, t, rng);
                        c_in = c;
                        block
                    })
                    .collect()
            })
            .collect();
        let conv2 = conv(c_in, LAST, 1, 1, rng);
        let classifier = Linear {
            weight: Tensor::randn(&[classes, LAST], 0.01, rng).into_param(),
            bias: Tensor::zeros(&[classes]).into_param(),
        };
        Ok(MobileNetV2 {
            conv1,
            bn1: BatchNorm2d::new(STEM),
            stages,
            conv2,
            bn2: BatchNorm2d::new(LAST),
            classifier,
        })
    }
}

/// The stages whose outputs are the first two distillation groups and pre-ReLU stages.
const GROUP_STAGES: [usize; 2] = [2, 4];

impl Network for MobileNetV2 {
    /// The pre-ReLU stages are groups 0 and 1 themselves and the final batch norm's output (see
    /// the module doc).
    fn forward_with(&mut self, x: &Tensor, train: bool, pre_relu: bool) -> Result<(Output, Vec<Tensor>)> {
        let mut h = self.bn1.forward_conv(&self.conv1, x, train, After::Relu)?;
        let mut outs = Vec::with_capacity(STAGES.len());
        for stage in &mut self.stages {
            for block in stage.iter_mut() {
                h = block.forward(&h, train)?;
            }
            outs.push(h.clone());
        }
        let h = self.conv2.forward(&h)?;
        let (feature, pre) = if pre_relu {
            let pre = self.bn2.forward(&h, train, After::Identity)?;
            (ops::relu(&pre)?, Some(pre))
        } else {
            (self.bn2.forward(&h, train, After::Relu)?, None)
        };
        let logits = self.classifier.forward(&ops::pool::global_avg_pool(&feature)?)?;
        let [a, b] = GROUP_STAGES.map(|s| outs[s].clone());
        let stages = pre.map(|last| vec![a.clone(), b.clone(), last]).unwrap_or_default();
        Ok((Output { logits, groups: [a, b, feature] }, stages))
    }

    fn pre_relu_bns(&self) -> Result<[&BatchNorm2d; 3]> {
        match GROUP_STAGES.map(|s| self.stages[s].last().map(|b| &b.bn3)) {
            [Some(a), Some(b)] => Ok([a, b, &self.bn2]),
            _ => Err(Error::invalid("mobilenetv2", "a stage without blocks")),
        }
    }

    fn feature_channels(&self) -> usize {
        LAST
    }

    fn group_channels(&self) -> [usize; 3] {
        [STAGES[2].1, STAGES[4].1, LAST]
    }

    fn name(&self) -> String {
        "mobilenetv2".into()
    }
}

impl Module for MobileNetV2 {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.conv1.visit(&join(prefix, "conv1.0"), f);
        self.bn1.visit(&join(prefix, "conv1.1"), f);
        for (s, stage) in self.stages.iter_mut().enumerate() {
            for (i, block) in stage.iter_mut().enumerate() {
                block.visit(&join(prefix, &format!("blocks.{s}.{i}")), f);
            }
        }
        self.conv2.visit(&join(prefix, "conv2.0"), f);
        self.bn2.visit(&join(prefix, "conv2.1"), f);
        self.classifier.visit(&join(prefix, "classifier.0"), f);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// CIFAR shapes; the pre-ReLU stages are the bottlenecks and the last batch norm's output;
    /// gradients reach every parameter.
    #[test]
    fn cifar_stages_pre_relu_outputs_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut net = MobileNetV2::half(3, 10, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 32, 32, 3], 1.0, &mut rng);
        let plain = net.forward(&x, true).unwrap();
        let (out, pre) = net.forward_pre_relu(&x, true).unwrap();
        assert_eq!(out.logits.shape(), &[2, 10]);
        let stages = [[2, 8, 8, 16], [2, 4, 4, 48], [2, 2, 2, 1280]];
        assert_eq!(out.groups.each_ref().map(|g| g.shape().to_vec()), stages);
        assert_eq!(pre.each_ref().map(|p| p.shape().to_vec()), stages);
        for (g, (p, group)) in pre.iter().zip(&out.groups).take(2).enumerate() {
            assert_eq!(p.to_vec().unwrap(), group.to_vec().unwrap(), "group {g}");
        }
        let relu: Vec<f32> = pre[2].to_vec().unwrap().iter().map(|v| v.max(0.0)).collect();
        assert_eq!(relu, out.groups[2].to_vec().unwrap());
        for p in &pre {
            assert!(p.to_vec().unwrap().iter().any(|v| *v < 0.0), "{:?} has no negative value", p.shape());
        }
        let (a, b) = (plain.logits.to_vec().unwrap(), out.logits.to_vec().unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-5));
        assert_eq!(net.pre_relu_bns().unwrap().map(|bn| bn.weight.numel()), net.group_channels());
        crate::nn::assert_gradients_reach_every_param(&mut net, &out.logits, &mut rng);
    }
}
