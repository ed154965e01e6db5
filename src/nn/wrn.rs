//! The wide residual network WRN-d-k of Zagoruyko and Komodakis for CIFAR: a 3x3 stem with 16
//! channels, three groups of n = (d-4)/6 pre-activation blocks with 16k/32k/64k channels and
//! strides 1/2/2, a final BN + ReLU, global average pooling and a linear classifier.
//!
//! A block is `BN-ReLU -> conv3x3(stride) -> BN-ReLU -> conv3x3`; when the width changes, a 1x1
//! convolution (no BN) fed by the first BN-ReLU output is the shortcut, otherwise the block input.
//! No convolution has a bias, the classifier has one: this is what gives the spec's parameter
//! counts (WRN-16-1 175,066 ... WRN-40-2 2,243,546). Names follow the common PyTorch WRN code
//! (`conv1`, `block1.layer.0.bn1`, `block1.layer.0.convShortcut`, `bn1`, `fc`), and so does the
//! initialisation: He-normal with fan-out for convolutions, PyTorch's default U(-1/sqrt(in),
//! 1/sqrt(in)) for the classifier weight, zero classifier bias.

use rand::Rng;

use super::layers::{After, BatchNorm2d, Conv2d, Linear};
use super::{Module, Network, Output, PreRelu, TensorKind, join, run_stage, visit_numbered};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// He-normal (fan-out) `k x k` convolution without bias, as the PyTorch WRN code initialises it.
fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, rng: &mut impl Rng) -> Conv2d {
    let std = (2.0 / (c_out * k * k) as f32).sqrt();
    Conv2d::new(c_in, c_out, k, stride, k / 2, false, std, rng)
}

struct Block {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl Block {
    fn new(c_in: usize, c_out: usize, stride: usize, rng: &mut impl Rng) -> Self {
        Block {
            bn1: BatchNorm2d::new(c_in),
            conv1: conv(c_in, c_out, 3, stride, rng),
            bn2: BatchNorm2d::new(c_out),
            conv2: conv(c_out, c_out, 3, 1, rng),
            shortcut: (c_in != c_out).then(|| conv(c_in, c_out, 1, stride, rng)),
        }
    }
}

impl PreRelu for Block {
    fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let act = self.bn1.forward(x, train, After::Relu)?;
        self.tail(x, &act, train)
    }

    /// The block's output and the output of its first batch norm before the ReLU (batch norm and
    /// ReLU unfused).
    fn forward_pre_relu(&mut self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let pre = self.bn1.forward(x, train, After::Identity)?;
        let out = self.tail(x, &ops::relu(&pre)?, train)?;
        Ok((out, pre))
    }
}

impl Block {
    /// Everything after the first BN-ReLU, whose output is `act`.
    fn tail(&mut self, x: &Tensor, act: &Tensor, train: bool) -> Result<Tensor> {
        let out = self.bn2.forward_conv(&self.conv1, act, train, After::Relu)?;
        let out = self.conv2.forward(&out)?;
        let residual = match &self.shortcut {
            Some(shortcut) => shortcut.forward(act)?,
            None => x.clone(),
        };
        ops::add(&residual, &out)
    }
}

impl Module for Block {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        if let Some(shortcut) = &mut self.shortcut {
            shortcut.visit(&join(prefix, "convShortcut"), f);
        }
    }
}

/// A wide residual network WRN-`depth`-`width` (depth 6n+4).
pub struct WideResNet {
    conv1: Conv2d,
    groups: [Vec<Block>; 3],
    bn1: BatchNorm2d,
    fc: Linear,
    depth: usize,
    width: usize,
}

impl WideResNet {
    /// Channels of the stem and of the three groups for widening factor `width`.
    pub fn widths(width: usize) -> [usize; 4] {
        [16, 16 * width, 32 * width, 64 * width]
    }

    /// WRN-`depth`-`width` (depth 6n+4 with n >= 1, width >= 1) for `in_channels`-channel images
    /// and `classes` classes, initialised from `rng`.
    pub fn new(
        depth: usize,
        width: usize,
        in_channels: usize,
        classes: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if depth < 10 || !(depth - 4).is_multiple_of(6) {
            return Err(Error::invalid("wrn", format!("depth {depth} is not 6n+4 with n >= 1")));
        }
        if width == 0 || in_channels == 0 || classes == 0 {
            return Err(Error::invalid(
                "wrn",
                format!("width {width}, {in_channels} input channels and {classes} classes must all be >= 1"),
            ));
        }
        let n = (depth - 4) / 6;
        let widths = Self::widths(width);
        let conv1 = conv(in_channels, widths[0], 3, 1, rng);
        let mut c_in = widths[0];
        let groups = [0, 1, 2].map(|g| {
            (0..n)
                .map(|i| {
                    let stride = if g > 0 && i == 0 { 2 } else { 1 };
                    let block = Block::new(c_in, widths[g + 1], stride, rng);
                    c_in = widths[g + 1];
                    block
                })
                .collect()
        });
        let features = widths[3];
        let bound = 1.0 / (features as f32).sqrt();
        let fc = Linear {
            weight: Tensor::uniform(&[classes, features], bound, rng).into_param(),
            bias: Tensor::zeros(&[classes]).into_param(),
        };
        Ok(WideResNet { conv1, groups, bn1: BatchNorm2d::new(features), fc, depth, width })
    }
}

impl Network for WideResNet {
    /// Group outputs 1 and 2 are the raw block sums (pre-activation); group 3's is taken after
    /// the final BN + ReLU, the distillation feature of the method.
    /// The pre-ReLU features are the group outputs through the batch norm of the BN-ReLU that
    /// follows them (`block2.layer.0.bn1`, `block3.layer.0.bn1`, `bn1`), as the WRN of the
    /// Overhaul code; that code applies those batch norms a second time to get them, iekd keeps
    /// the values of the forward pass.
    fn forward_with(&mut self, x: &Tensor, train: bool, pre_relu: bool) -> Result<(Output, Vec<Tensor>)> {
        let mut h = self.conv1.forward(x)?;
        let (mut outs, mut pre) = (Vec::with_capacity(2), Vec::new());
        for (g, group) in self.groups.iter_mut().enumerate() {
            h = run_stage(group, &h, train, (pre_relu && g > 0).then_some(0), &mut pre)?;
            outs.push(h.clone());
        }
        let feature = if pre_relu {
            let p = self.bn1.forward(&h, train, After::Identity)?;
            let feature = ops::relu(&p)?;
            pre.push(p);
            feature
        } else {
            self.bn1.forward(&h, train, After::Relu)?
        };
        let logits = self.fc.forward(&ops::pool::global_avg_pool(&feature)?)?;
        Ok((Output { logits, groups: [outs[0].clone(), outs[1].clone(), feature] }, pre))
    }

    fn pre_relu_bns(&self) -> Result<[&BatchNorm2d; 3]> {
        match [self.groups[1].first(), self.groups[2].first()] {
            [Some(a), Some(b)] => Ok([&a.bn1, &b.bn1, &self.bn1]),
            _ => Err(Error::invalid("wrn", "a group without blocks")),
        }
    }

    fn feature_channels(&self) -> usize {
        Self::widths(self.width)[3]
    }

    fn group_channels(&self) -> [usize; 3] {
        let [_, a, b, c] = Self::widths(self.width);
        [a, b, c]
    }

    fn name(&self) -> String {
        format!("wrn-{}-{}", self.depth, self.width)
    }
}

impl Module for WideResNet {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        for (g, group) in self.groups.iter_mut().enumerate() {
            visit_numbered(group, prefix, |i| format!("block{}.layer.{i}", g + 1), f);
        }
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.fc.visit(&join(prefix, "fc"), f);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::tensor::autograd;

    #[test]
    fn names_follow_pytorch() {
        let mut net = WideResNet::new(16, 2, 3, 10, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        crate::nn::assert_has_names(
            &mut net,
            &[
                "conv1.weight",
                "block1.layer.0.bn1.weight",
                "block1.layer.0.conv1.weight",
                "block1.layer.0.convShortcut.weight",
                "block2.layer.1.bn2.running_var",
                "block3.layer.0.convShortcut.weight",
                "bn1.num_batches_tracked",
                "fc.weight",
                "fc.bias",
            ],
        );
        let names = crate::nn::tensor_names(&mut net);
        assert!(!names.iter().any(|n| n.starts_with("block2.layer.1.convShortcut")));
        assert!(!names.iter().any(|n| n.starts_with("conv1.bias")));
    }

    #[test]
    fn wrn_d_1_has_no_shortcut_conv_in_the_first_group() {
        let mut net = WideResNet::new(16, 1, 3, 10, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let names = crate::nn::tensor_names(&mut net);
        assert!(!names.iter().any(|n| n.starts_with("block1.layer.0.convShortcut")));
        assert!(names.iter().any(|n| n.starts_with("block2.layer.0.convShortcut")));
    }

    #[test]
    fn forward_shapes_in_train_and_eval_mode() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = WideResNet::new(16, 2, 3, 10, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 32, 32, 3], 1.0, &mut rng);
        for train in [true, false] {
            let _guard = autograd::no_grad();
            let out = net.forward(&x, train).unwrap();
            assert_eq!(out.logits.shape(), &[2, 10]);
            assert_eq!(out.groups[0].shape(), &[2, 32, 32, 32]);
            assert_eq!(out.groups[1].shape(), &[2, 16, 16, 64]);
            assert_eq!(out.groups[2].shape(), &[2, 8, 8, 128]);
            assert!(out.groups[2].host().unwrap().iter().all(|v| *v >= 0.0), "feature is post-ReLU");
            assert!(out.logits.host().unwrap().iter().all(|v| v.is_finite()));
        }
        assert_eq!(net.feature_channels(), 128);
    }

    #[test]
    fn pre_relu_outputs_are_the_batch_norms_after_each_group_and_gradients_reach_every_parameter() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut net = WideResNet::new(10, 1, 3, 10, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 8, 8, 3], 1.0, &mut rng);
        let plain = net.forward(&x, true).unwrap();
        let (out, pre) = net.forward_pre_relu(&x, true).unwrap();
        assert_eq!(pre.each_ref().map(|p| p.shape().to_vec()), [[2, 8, 8, 16], [2, 4, 4, 32], [2, 2, 2, 64]]);
        let relu: Vec<f32> = pre[2].to_vec().unwrap().iter().map(|v| v.max(0.0)).collect();
        assert_eq!(relu, out.groups[2].to_vec().unwrap());
        let (a, b) = (plain.logits.to_vec().unwrap(), out.logits.to_vec().unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-5));
        assert_eq!(net.pre_relu_bns().unwrap().map(|bn| bn.weight.numel()), [16, 32, 64]);
        crate::nn::assert_gradients_reach_every_param(&mut net, &out.logits, &mut rng);
    }

    #[test]
    fn rejects_bad_depth_and_width() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = WideResNet::new(18, 2, 3, 10, &mut rng).err().unwrap();
        assert!(err.to_string().contains("6n+4"), "{err}");
        assert!(WideResNet::new(4, 2, 3, 10, &mut rng).is_err());
        assert!(WideResNet::new(16, 0, 3, 10, &mut rng).is_err());
    }
}
