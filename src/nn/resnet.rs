//! The CIFAR ResNet-(6n+2) of He et al.: a 3x3 stem with 16 channels, three groups of n basic
//! blocks with 16/32/64 channels and strides 1/2/2, global average pooling and a linear classifier.
//! Parameter names follow the common PyTorch CIFAR ResNet (`conv1`, `bn1`, `layer1.0.conv1`,
//! `layer2.0.shortcut.0` for option B, `fc`).

use rand::Rng;

use super::layers::{After, BatchNorm2d, Conv2d, Linear};
use super::{Module, Network, PreRelu, TensorKind, join, run_stage, visit_numbered};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// How a block matches shapes when it changes width and resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Subsample by 2 and pad channels with zeros (no parameters).
    A,
    /// A 1x1 stride-2 convolution followed by batch norm.
    B,
}

/// The outputs of a forward pass.
pub struct Output {
    /// The class scores, `[N, classes]`.
    pub logits: Tensor,
    /// The output of each of the three groups (post-ReLU); the last is the distillation feature.
    pub groups: [Tensor; 3],
}

struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    shortcut: BlockShortcut,
}

enum BlockShortcut {
    Identity,
    PadA { out_channels: usize },
    ConvB(Box<(Conv2d, BatchNorm2d)>),
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, kind: Shortcut, rng: &mut impl Rng) -> Self {
        let shortcut = if stride == 1 && c_in == c_out {
            BlockShortcut::Identity
        } else {
            match kind {
                Shortcut::A => BlockShortcut::PadA { out_channels: c_out },
                Shortcut::B => BlockShortcut::ConvB(Box::new((
                    Conv2d::kaiming(c_in, c_out, 1, stride, 0, rng),
                    BatchNorm2d::new(c_out),
                ))),
            }
        };
        BasicBlock {
            conv1: Conv2d::kaiming(c_in, c_out, 3, stride, 1, rng),
            bn1: BatchNorm2d::new(c_out),
            conv2: Conv2d::kaiming(c_out, c_out, 3, 1, 1, rng),
            bn2: BatchNorm2d::new(c_out),
            shortcut,
        }
    }
}

impl PreRelu for BasicBlock {
    fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (h, residual) = self.body(x, train)?;
        self.bn2.forward_conv(&self.conv2, &h, train, After::AddRelu(&residual))
    }

    /// The block's output and its pre-ReLU value `bn2(conv2(...)) + residual` (batch norm and sum
    /// unfused, the ReLU applied to their result).
    fn forward_pre_relu(&mut self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (h, residual) = self.body(x, train)?;
        let pre = ops::add(&self.bn2.forward_conv(&self.conv2, &h, train, After::Identity)?, &residual)?;
        Ok((ops::relu(&pre)?, pre))
    }
}

impl BasicBlock {
    /// `relu(bn1(conv1(x)))`, the input of `conv2`, and the residual, what the block's last batch
    /// norm adds.
    fn body(&mut self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let out = self.bn1.forward_conv(&self.conv1, x, train, After::Relu)?;
        let residual = match &mut self.shortcut {
            BlockShortcut::Identity => x.clone(),
            BlockShortcut::PadA { out_channels } => ops::channels::shortcut_a(x, *out_channels)?,
            BlockShortcut::ConvB(b) => {
                let (conv, bn) = &mut **b;
                bn.forward_conv(conv, x, train, After::Identity)?
            }
        };
        Ok((out, residual))
    }
}

impl Module for BasicBlock {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
        if let BlockShortcut::ConvB(b) = &mut self.shortcut {
            let (conv, bn) = &mut **b;
            conv.visit(&join(prefix, "shortcut.0"), f);
            bn.visit(&join(prefix, "shortcut.1"), f);
        }
    }
}

/// A CIFAR ResNet of depth 6n+2.
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    groups: [Vec<BasicBlock>; 3],
    fc: Linear,
    depth: usize,
    shortcut: Shortcut,
}

/// Channels of the three groups.
pub const WIDTHS: [usize; 3] = [16, 32, 64];

impl ResNet {
    /// ResNet-`depth` (20, 32, 56, 110, ...: any 6n+2) for `in_channels`-channel images and
    /// `classes` classes, He-normal initialised from `rng`.
    pub fn new(
        depth: usize,
        in_channels: usize,
        classes: usize,
        shortcut: Shortcut,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(Error::invalid("resnet", format!("depth {depth} is not 6n+2 with n >= 1")));
        }
        let n = (depth - 2) / 6;
        let conv1 = Conv2d::kaiming(in_channels, WIDTHS[0], 3, 1, 1, rng);
        let mut c_in = WIDTHS[0];
        let groups = [0, 1, 2].map(|g| {
            (0..n)
                .map(|i| {
                    let stride = if g > 0 && i == 0 { 2 } else { 1 };
                    let block = BasicBlock::new(c_in, WIDTHS[g], stride, shortcut, rng);
                    c_in = WIDTHS[g];
                    block
                })
                .collect()
        });
        Ok(ResNet {
            conv1,
            bn1: BatchNorm2d::new(WIDTHS[0]),
            groups,
            fc: Linear::new(WIDTHS[2], classes, rng),
            depth,
            shortcut,
        })
    }
}

impl Network for ResNet {
    /// The pre-ReLU outputs are the last block's `bn2(...) + residual` of each group, as the
    /// CIFAR ResNet of the Overhaul code (its blocks apply the ReLU at their input instead).
    fn forward_with(&mut self, x: &Tensor, train: bool, pre_relu: bool) -> Result<(Output, Vec<Tensor>)> {
        let mut h = self.bn1.forward_conv(&self.conv1, x, train, After::Relu)?;
        let (mut outs, mut pre) = (Vec::with_capacity(3), Vec::new());
        for group in &mut self.groups {
            let unfused = pre_relu.then(|| group.len() - 1);
            h = run_stage(group, &h, train, unfused, &mut pre)?;
            outs.push(h.clone());
        }
        let pooled = ops::pool::global_avg_pool(&h)?;
        let logits = self.fc.forward(&pooled)?;
        let groups = [outs[0].clone(), outs[1].clone(), outs[2].clone()];
        Ok((Output { logits, groups }, pre))
    }

    fn pre_relu_bns(&self) -> Result<[&BatchNorm2d; 3]> {
        match self.groups.each_ref().map(|g| g.last().map(|b| &b.bn2)) {
            [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
            _ => Err(Error::invalid("resnet", "a group without blocks")),
        }
    }

    fn feature_channels(&self) -> usize {
        WIDTHS[2]
    }

    fn group_channels(&self) -> [usize; 3] {
        WIDTHS
    }

    fn name(&self) -> String {
        let suffix = if self.shortcut == Shortcut::B { "b" } else { "" };
        format!("resnet{}{suffix}", self.depth)
    }
}

impl Module for ResNet {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        for (g, group) in self.groups.iter_mut().enumerate() {
            visit_numbered(group, prefix, |i| format!("layer{}.{i}", g + 1), f);
        }
        self.fc.visit(&join(prefix, "fc"), f);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn pre_relu_outputs_are_the_groups_before_their_relu() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut net = ResNet::new(14, 3, 10, Shortcut::B, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 8, 8, 3], 1.0, &mut rng);
        let plain = net.forward(&x, false).unwrap();
        let (out, pre) = net.forward_pre_relu(&x, false).unwrap();
        for (g, p) in pre.iter().enumerate() {
            let relu: Vec<f32> = p.to_vec().unwrap().iter().map(|v| v.max(0.0)).collect();
            let want = out.groups[g].to_vec().unwrap();
            assert!(relu.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5), "group {g}");
            assert!(p.to_vec().unwrap().iter().any(|v| *v < 0.0), "group {g} has no negative value");
        }
        let (a, b) = (plain.logits.to_vec().unwrap(), out.logits.to_vec().unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-5));
        assert_eq!(net.pre_relu_bns().unwrap().map(|bn| bn.weight.numel()), WIDTHS);
    }

    #[test]
    fn rejects_depths_that_are_not_6n_plus_2() {
        let err = ResNet::new(21, 3, 10, Shortcut::A, &mut ChaCha8Rng::seed_from_u64(0)).err().unwrap();
        assert!(err.to_string().contains("6n+2"));
    }
}
