//! The connector of Overhaul feature distillation: a 1x1 convolution (no bias) and a batch norm
//! taking a student feature to the teacher's width. Initialised as `build_feature_connector` of
//! the authors' code: convolution N(0, 2 / C_out) (He-normal with fan-out), batch norm scale 1 and
//! shift 0. Names follow its `nn.Sequential`: `0.weight`, `1.weight`, `1.bias`, ...

use rand::Rng;

use super::layers::{After, BatchNorm2d, Conv2d};
use super::{Module, TensorKind, join};
use crate::error::Result;
use crate::tensor::Tensor;

/// `bn(conv1x1(x))` from `c_in` to `c_out` channels.
pub struct Connector {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl Connector {
    /// A connector from `c_in` to `c_out` channels, drawn from `rng`.
    pub fn new(c_in: usize, c_out: usize, rng: &mut impl Rng) -> Self {
        let std = (2.0 / c_out as f32).sqrt();
        Connector { conv: Conv2d::new(c_in, c_out, 1, 1, 0, false, std, rng), bn: BatchNorm2d::new(c_out) }
    }

    /// `bn(conv(x))` for channels-last `x`, batch statistics when `train`.
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_conv(&self.conv, x, train, After::Identity)
    }
}

impl Module for Connector {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        self.conv.visit(&join(prefix, "0"), f);
        self.bn.visit(&join(prefix, "1"), f);
    }
}
