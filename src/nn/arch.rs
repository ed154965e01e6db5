//! Architecture names as the command line spells them, and the networks they build.
//!
//! Accepted forms: `resnetN` (CIFAR ResNet, N = 6n+2, option-A shortcuts), `resnetNb` (option-B
//! shortcuts), `wrn-D-K` (wide ResNet, D = 6n+4, K >= 1), `vgg13` (VGG-13 with batch norm) and
//! `mobilenetv2` (MobileNetV2 at width 0.5, RepDistiller's `mobile_half`). Depths are capped at
//! [`MAX_DEPTH`] and widening factors at [`MAX_WIDTH`] so that a typo cannot ask for terabytes.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use super::Network;
use super::mobilenet::{self, MobileNetV2};
use super::resnet::{self, ResNet, Shortcut};
use super::vgg::{self, Vgg};
use super::wrn::WideResNet;
use crate::error::{Error, Result};

/// The deepest network accepted (ResNet-1202 fits).
pub const MAX_DEPTH: usize = 2000;
/// The widest WRN widening factor accepted.
pub const MAX_WIDTH: usize = 64;

/// A network architecture of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// CIFAR ResNet-`depth` with the given shortcut option.
    ResNet {
        /// 6n+2.
        depth: usize,
        /// Option A (zero padding) or B (1x1 convolution + BN).
        shortcut: Shortcut,
    },
    /// WRN-`depth`-`width`.
    Wrn {
        /// 6n+4.
        depth: usize,
        /// The widening factor k.
        width: usize,
    },
    /// VGG-13 with batch norm for CIFAR (RepDistiller's `vgg13`).
    Vgg13,
    /// MobileNetV2 at width 0.5, expansion 6, CIFAR strides (RepDistiller's `mobile_half`).
    MobileNetV2,
}

const FORMS: &str = "expected resnetN (N = 6n+2, e.g. resnet20, resnet56), resnetNb for option-B shortcuts \
                     (resnet56b), wrn-D-K (D = 6n+4, 1 <= K <= 64, e.g. wrn-16-2, wrn-40-2), vgg13 or mobilenetv2; \
                     depth at most 2000";

/// A decimal number of digits only (no sign, no spaces), at most [`MAX_DEPTH`].
fn number(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&v| v <= MAX_DEPTH)
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("arch", format!("unknown architecture '{s}': {FORMS}"));
        let arch = if s == "vgg13" {
            Arch::Vgg13
        } else if s == "mobilenetv2" {
            Arch::MobileNetV2
        } else if let Some(rest) = s.strip_prefix("resnet") {
            let (digits, shortcut) = match rest.strip_suffix('b') {
                Some(digits) => (digits, Shortcut::B),
                None => (rest, Shortcut::A),
            };
            let depth = number(digits).ok_or_else(bad)?;
            if depth < 8 || (depth - 2) % 6 != 0 {
                return Err(bad());
            }
            Arch::ResNet { depth, shortcut }
        } else if let Some(rest) = s.strip_prefix("wrn-") {
            let (d, k) = rest.split_once('-').ok_or_else(bad)?;
            let (depth, width) = (number(d).ok_or_else(bad)?, number(k).ok_or_else(bad)?);
            if depth < 10 || (depth - 4) % 6 != 0 || width == 0 || width > MAX_WIDTH {
                return Err(bad());
            }
            Arch::Wrn { depth, width }
        } else {
            return Err(bad());
        };
        Ok(arch)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Arch::ResNet { depth, shortcut: Shortcut::A } => write!(f, "resnet{depth}"),
            Arch::ResNet { depth, shortcut: Shortcut::B } => write!(f, "resnet{depth}b"),
            Arch::Wrn { depth, width } => write!(f, "wrn-{depth}-{width}"),
            Arch::Vgg13 => write!(f, "vgg13"),
            Arch::MobileNetV2 => write!(f, "mobilenetv2"),
        }
    }
}

/// One convolution of a network: input and output channels, kernel size, output pixels, groups
/// (1, or the channels of a depthwise convolution).
struct ConvShape {
    c_in: usize,
    c_out: usize,
    k: usize,
    pixels: usize,
    groups: usize,
}

impl ConvShape {
    fn dense(c_in: usize, c_out: usize, k: usize, pixels: usize) -> Self {
        ConvShape { c_in, c_out, k, pixels, groups: 1 }
    }

    /// Weights of the convolution (no bias).
    fn weights(&self) -> usize {
        self.c_in / self.groups * self.c_out * self.k * self.k
    }
}

impl Arch {
    /// The network for `in_channels`-channel images and `classes` classes, initialised from `rng`.
    pub fn build(&self, in_channels: usize, classes: usize, rng: &mut impl Rng) -> Result<Box<dyn Network>> {
        Ok(match *self {
            Arch::ResNet { depth, shortcut } => {
                Box::new(ResNet::new(depth, in_channels, classes, shortcut, rng)?)
            }
            Arch::Wrn { depth, width } => Box::new(WideResNet::new(depth, width, in_channels, classes, rng)?),
            Arch::Vgg13 => Box::new(Vgg::vgg13(in_channels, classes, rng)?),
            Arch::MobileNetV2 => Box::new(MobileNetV2::half(in_channels, classes, rng)?),
        })
    }

    /// Channels of the distillation feature.
    pub fn feature_channels(&self) -> usize {
        match *self {
            Arch::ResNet { .. } => resnet::WIDTHS[2],
            Arch::Wrn { width, .. } => WideResNet::widths(width)[3],
            Arch::Vgg13 => vgg::WIDTHS[4],
            Arch::MobileNetV2 => mobilenet::LAST,
        }
    }

    /// Every convolution of the network on a `height x width` input, in forward order.
    fn convs(&self, in_channels: usize, height: usize, width: usize) -> Vec<ConvShape> {
        let (n, conv_shortcut, widths) = match *self {
            Arch::ResNet { depth, shortcut } => {
                let [a, b, c] = resnet::WIDTHS;
                ((depth - 2) / 6, shortcut == Shortcut::B, [a, a, b, c])
            }
            Arch::Wrn { depth, width: k } => ((depth - 4) / 6, true, WideResNet::widths(k)),
            Arch::Vgg13 => return vgg_convs(in_channels, height, width),
            Arch::MobileNetV2 => return mobilenet_convs(in_channels, height, width),
        };
        let mut convs = vec![ConvShape::dense(in_channels, widths[0], 3, height * width)];
        let (mut c, mut h, mut w) = (widths[0], height, width);
        for g in 0..3 {
            for i in 0..n {
                let stride = if g > 0 && i == 0 { 2 } else { 1 };
                let c_out = widths[g + 1];
                (h, w) = (h.div_ceil(stride), w.div_ceil(stride));
                let pixels = h * w;
                convs.push(ConvShape::dense(c, c_out, 3, pixels));
                convs.push(ConvShape::dense(c_out, c_out, 3, pixels));
                if conv_shortcut && c != c_out {
                    convs.push(ConvShape::dense(c, c_out, 1, pixels));
                }
                c = c_out;
            }
        }
        convs
    }

    /// Multiply-accumulates of one forward pass on one `in_channels x height x width` image:
    /// convolutions and the classifier (batch norm, activations and pooling not counted).
    pub fn macs_per_image(&self, in_channels: usize, classes: usize, height: usize, width: usize) -> usize {
        let convs: usize =
            self.convs(in_channels, height, width).iter().map(|c| c.pixels * c.weights()).sum();
        convs + self.feature_channels() * classes
    }
}

/// VGG-13's convolutions: two per block, a 2x2 max pool after blocks 0-2 (and 3 on 64x64 inputs).
fn vgg_convs(in_channels: usize, height: usize, width: usize) -> Vec<ConvShape> {
    let (mut c, mut h, mut w, mut convs) = (in_channels, height, width, Vec::new());
    for (b, c_out) in vgg::WIDTHS.into_iter().enumerate() {
        convs.push(ConvShape::dense(c, c_out, 3, h * w));
        convs.push(ConvShape::dense(c_out, c_out, 3, h * w));
        c = c_out;
        if b < 3 || (b == 3 && height == 64) {
            (h, w) = (h / 2, w / 2);
        }
    }
    convs
}

/// MobileNetV2's convolutions: the stride-2 stem, expand / depthwise / project per block, the
/// final 1x1.
fn mobilenet_convs(in_channels: usize, height: usize, width: usize) -> Vec<ConvShape> {
    let (mut h, mut w) = (height.div_ceil(2), width.div_ceil(2));
    let mut convs = vec![ConvShape::dense(in_channels, mobilenet::STEM, 3, h * w)];
    let mut c = mobilenet::STEM;
    for (t, c_out, n, s) in mobilenet::STAGES {
        for i in 0..n {
            let hidden = c * t;
            convs.push(ConvShape::dense(c, hidden, 1, h * w));
            if i == 0 {
                (h, w) = (h.div_ceil(s), w.div_ceil(s));
            }
            convs.push(ConvShape { c_in: hidden, c_out: hidden, k: 3, pixels: h * w, groups: hidden });
            convs.push(ConvShape::dense(hidden, c_out, 1, h * w));
            c = c_out;
        }
    }
    convs.push(ConvShape::dense(c, mobilenet::LAST, 1, h * w));
    convs
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::nn::TensorKind;
    use crate::tensor::Tensor;
    use crate::tensor::autograd;

    #[test]
    fn parses_and_round_trips_good_names() {
        for (s, want) in [
            ("resnet20", Arch::ResNet { depth: 20, shortcut: Shortcut::A }),
            ("resnet32", Arch::ResNet { depth: 32, shortcut: Shortcut::A }),
            ("resnet56b", Arch::ResNet { depth: 56, shortcut: Shortcut::B }),
            ("resnet110", Arch::ResNet { depth: 110, shortcut: Shortcut::A }),
            ("resnet8", Arch::ResNet { depth: 8, shortcut: Shortcut::A }),
            ("wrn-16-2", Arch::Wrn { depth: 16, width: 2 }),
            ("wrn-40-1", Arch::Wrn { depth: 40, width: 1 }),
            ("wrn-28-10", Arch::Wrn { depth: 28, width: 10 }),
            ("vgg13", Arch::Vgg13),
            ("mobilenetv2", Arch::MobileNetV2),
        ] {
            let arch: Arch = s.parse().unwrap();
            assert_eq!(arch, want, "{s}");
            assert_eq!(arch.to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_names_with_the_accepted_forms() {
        assert!(
            FORMS.contains(&format!("K <= {MAX_WIDTH}")) && FORMS.contains(&format!("at most {MAX_DEPTH}"))
        );
        for s in [
            "",
            "resnet",
            "resnet21",
            "resnet2",
            "resnet20a",
            "resnet+20",
            "resnet 20",
            "ResNet20",
            "resnet56bb",
            "wrn-16",
            "wrn-16-0",
            "wrn-18-2",
            "wrn-16-2-1",
            "wrn-4-1",
            "wrn--2",
            "wrn-16-65",
            "wrn16-2",
            "vgg11",
            "vgg13bn",
            "mobilenet",
            "MobileNetV2",
            "resnet99999999999999999999",
            "resnet2006",
        ] {
            let err = s.parse::<Arch>().err().unwrap_or_else(|| panic!("accepted {s:?}"));
            let msg = err.to_string();
            assert!(msg.starts_with("arch: unknown architecture"), "{msg}");
            assert!(
                msg.contains("resnetN") && msg.contains("wrn-D-K") && msg.contains("mobilenetv2"),
                "{msg}"
            );
            assert!(!msg.contains('\n'));
        }
    }

    #[test]
    fn built_networks_have_the_spec_parameter_counts_and_names() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // The paper's table for the ResNets and WRNs, RepDistiller's networks for the others.
        for (s, classes, want) in [
            ("resnet20", 10, 269_722),
            ("resnet20b", 10, 272_474),
            ("resnet32", 10, 464_154),
            ("resnet56", 10, 853_018),
            ("resnet56b", 10, 855_770),
            ("resnet110", 10, 1_727_962),
            ("wrn-16-1", 10, 175_066),
            ("wrn-16-2", 10, 691_674),
            ("wrn-40-1", 10, 563_930),
            ("wrn-40-2", 10, 2_243_546),
            ("vgg13", 10, 9_416_010),
            ("vgg13", 100, 9_462_180),
            ("mobilenetv2", 10, 697_546),
            ("mobilenetv2", 100, 812_836),
        ] {
            let arch: Arch = s.parse().unwrap();
            let mut net = arch.build(3, classes, &mut rng).unwrap();
            assert_eq!(net.num_params(), want, "{s}, {classes} classes");
            assert_eq!(net.name(), s);
            assert_eq!(net.feature_channels(), arch.feature_channels());
        }
    }

    #[test]
    fn built_networks_use_the_reference_implementations_names() {
        // PyTorch's CIFAR ResNet (option B shortcuts), RepDistiller's vgg13 and mobile_half.
        let cases: [(&str, &[&str]); 3] = [
            (
                "resnet20b",
                &[
                    "conv1.weight",
                    "bn1.running_mean",
                    "layer1.0.conv1.weight",
                    "layer2.0.shortcut.0.weight",
                    "layer3.2.bn2.num_batches_tracked",
                    "fc.bias",
                ],
            ),
            (
                "vgg13",
                &[
                    "block0.0.weight",
                    "block0.0.bias",
                    "block0.1.running_var",
                    "block0.3.weight",
                    "block4.4.num_batches_tracked",
                    "classifier.weight",
                ],
            ),
            (
                "mobilenetv2",
                &[
                    "conv1.0.weight",
                    "conv1.1.running_mean",
                    "blocks.0.0.conv.0.weight",
                    "blocks.3.3.conv.3.weight",
                    "blocks.6.0.conv.7.bias",
                    "conv2.0.weight",
                    "classifier.0.bias",
                ],
            ),
        ];
        for (s, names) in cases {
            let mut net = s.parse::<Arch>().unwrap().build(3, 10, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
            crate::nn::assert_has_names(net.as_mut(), names);
        }
    }

    #[test]
    fn macs_per_image_match_the_spec() {
        for (s, millions) in
            [("resnet20", 40.6), ("resnet56", 125.5), ("wrn-16-2", 101.1), ("wrn-40-2", 327.6)]
        {
            let macs = s.parse::<Arch>().unwrap().macs_per_image(3, 10, 32, 32) as f64 / 1e6;
            assert!((macs - millions).abs() < 0.05, "{s}: {macs:.2} M, spec {millions} M");
        }
    }

    #[test]
    fn counted_convolutions_are_those_of_the_built_network() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for s in ["resnet20", "resnet20b", "wrn-16-1", "wrn-16-2", "wrn-22-3", "vgg13", "mobilenetv2"] {
            let arch: Arch = s.parse().unwrap();
            let counted: usize = arch.convs(3, 32, 32).iter().map(ConvShape::weights).sum();
            let mut net = arch.build(3, 10, &mut rng).unwrap();
            let mut built = 0;
            net.visit("", &mut |_, t, kind| {
                if kind == TensorKind::Param && t.rank() == 4 {
                    built += t.numel();
                }
            });
            assert_eq!(counted, built, "{s}");
        }
    }

    #[test]
    fn every_architecture_runs_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = Tensor::randn(&[2, 32, 32, 3], 1.0, &mut rng);
        for s in ["resnet8", "resnet8b", "wrn-10-2"] {
            let arch: Arch = s.parse().unwrap();
            let mut net = arch.build(3, 10, &mut rng).unwrap();
            {
                let _guard = autograd::no_grad();
                let out = net.forward(&x, false).unwrap();
                assert_eq!(out.logits.shape(), &[2, 10], "{s}");
                assert_eq!(out.groups[2].shape(), &[2, 8, 8, arch.feature_channels()], "{s}");
            }
            let out = net.forward(&x, true).unwrap();
            assert_eq!(out.groups[2].shape(), &[2, 8, 8, arch.feature_channels()], "{s}");
            let grads = autograd::backward_with(&out.logits, Tensor::randn(&[2, 10], 1.0, &mut rng)).unwrap();
            net.visit("", &mut |name, t, kind| {
                if kind == TensorKind::Param {
                    assert!(
                        grads.get(t).is_some_and(|g| g.host().unwrap().iter().any(|v| *v != 0.0)),
                        "{s}: {name}"
                    );
                }
            });
        }
    }
}
