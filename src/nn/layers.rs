//! Conv2d, BatchNorm2d and Linear: parameters, initialisation, and forward in train or eval mode.

use rand::Rng;

use super::{Module, TensorKind, join};
use crate::error::Result;
use crate::ops;
pub use crate::ops::batchnorm::After;
use crate::tensor::Tensor;

/// A 2-D convolution layer (`weight: [C_out, C_in, KH, KW]`, optional `bias: [C_out]`).
pub struct Conv2d {
    /// The kernel.
    pub weight: Tensor,
    /// The bias, when the layer has one.
    pub bias: Option<Tensor>,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding in both directions.
    pub pad: usize,
}

impl Conv2d {
    /// A square `k x k` convolution whose weights are drawn from N(0, std^2); bias, when asked
    /// for, from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch does.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
        std: f32,
        rng: &mut impl Rng,
    ) -> Self {
        let fan_in = (c_in * k * k) as f32;
        Conv2d {
            weight: Tensor::randn(&[c_out, c_in, k, k], std, rng).into_param(),
            bias: bias.then(|| Tensor::uniform(&[c_out], 1.0 / fan_in.sqrt(), rng).into_param()),
            stride,
            pad,
        }
    }

    /// He (Kaiming) normal initialisation for ReLU networks: std = sqrt(2 / fan_in).
    pub fn kaiming(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let std = (2.0 / (c_in * k * k) as f32).sqrt();
        Conv2d::new(c_in, c_out, k, stride, pad, false, std, rng)
    }

    /// `conv(x)` for channels-last `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(x, &self.weight, self.bias.as_ref(), self.stride, self.pad)
    }
}

impl Module for Conv2d {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        f(&join(prefix, "weight"), &mut self.weight, TensorKind::Param);
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b, TensorKind::Param);
        }
    }
}

/// Batch normalisation over the channel axis, with PyTorch's running statistics
/// (momentum 0.1, unbiased running variance, eps 1e-5).
pub struct BatchNorm2d {
    /// Scale (gamma), initialised to 1.
    pub weight: Tensor,
    /// Shift (beta), initialised to 0.
    pub bias: Tensor,
    /// Running mean, initialised to 0.
    pub running_mean: Tensor,
    /// Running (unbiased) variance, initialised to 1.
    pub running_var: Tensor,
    /// Batches seen in training mode (PyTorch's `num_batches_tracked`).
    pub num_batches_tracked: Tensor,
}

impl BatchNorm2d {
    /// Momentum of the running statistics.
    pub const MOMENTUM: f32 = ops::batchnorm::DEFAULT_MOMENTUM;
    /// Added to the variance before the square root.
    pub const EPS: f32 = ops::batchnorm::DEFAULT_EPS;

    /// A batch norm over `channels` channels.
    pub fn new(channels: usize) -> Self {
        BatchNorm2d {
            weight: Tensor::full(&[channels], 1.0).into_param(),
            bias: Tensor::zeros(&[channels]).into_param(),
            running_mean: Tensor::zeros(&[channels]),
            running_var: Tensor::full(&[channels], 1.0),
            num_batches_tracked: Tensor::zeros(&[1]),
        }
    }

    /// Normalises `x` (batch statistics when `train`, updating the running ones; running
    /// statistics otherwise), then applies `after`.
    pub fn forward(&mut self, x: &Tensor, train: bool, after: After) -> Result<Tensor> {
        use ops::batchnorm as bn;
        if !train {
            let (mean, var) = (&self.running_mean, &self.running_var);
            return bn::batch_norm_eval(x, after, &self.weight, &self.bias, mean, var, Self::EPS);
        }
        let (gamma, beta, running) = self.train_parts();
        let (y, _) = bn::batch_norm_train(x, after, gamma, beta, Self::EPS, Some(running))?;
        self.count_batch()?;
        Ok(y)
    }

    /// `self.forward(&conv.forward(x)?, train, after)` as one op ([`ops::conv_bn`]): the same
    /// values, in fewer launches on a device (the convolution computes the batch statistics, or
    /// in evaluation without gradients applies the whole normalisation, in its epilogue).
    pub fn forward_conv(&mut self, conv: &Conv2d, x: &Tensor, train: bool, after: After) -> Result<Tensor> {
        if conv.bias.is_some() {
            return self.forward(&conv.forward(x)?, train, after);
        }
        let c = ops::conv_bn::Conv { weight: &conv.weight, stride: conv.stride, pad: conv.pad };
        if !train {
            let n = ops::conv_bn::Norm { gamma: &self.weight, beta: &self.bias, eps: Self::EPS, after };
            return ops::conv2d_batch_norm_eval(x, c, n, [&self.running_mean, &self.running_var]);
        }
        let (gamma, beta, running) = self.train_parts();
        let n = ops::conv_bn::Norm { gamma, beta, eps: Self::EPS, after };
        let y = ops::conv2d_batch_norm_train(x, c, n, Some(running))?;
        self.count_batch()?;
        Ok(y)
    }

    /// What a training-mode forward reads (gamma, beta) and updates (the running statistics).
    fn train_parts(&mut self) -> (&Tensor, &Tensor, ops::batchnorm::RunningStats<'_>) {
        let running = ops::batchnorm::RunningStats {
            mean: &mut self.running_mean,
            var: &mut self.running_var,
            momentum: Self::MOMENTUM,
        };
        (&self.weight, &self.bias, running)
    }

    /// Counts one training batch (`num_batches_tracked`).
    fn count_batch(&mut self) -> Result<()> {
        self.num_batches_tracked.host_mut()?[0] += 1.0;
        Ok(())
    }
}

impl Module for BatchNorm2d {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        f(&join(prefix, "weight"), &mut self.weight, TensorKind::Param);
        f(&join(prefix, "bias"), &mut self.bias, TensorKind::Param);
        f(&join(prefix, "running_mean"), &mut self.running_mean, TensorKind::Buffer);
        f(&join(prefix, "running_var"), &mut self.running_var, TensorKind::Buffer);
        f(&join(prefix, "num_batches_tracked"), &mut self.num_batches_tracked, TensorKind::Counter);
    }
}

/// A fully connected layer: `y = x W^T + b`, `W: [out, in]`.
pub struct Linear {
    /// The weight, `[out, in]`.
    pub weight: Tensor,
    /// The bias, `[out]`.
    pub bias: Tensor,
}

impl Linear {
    /// He-normal weight (std = sqrt(2 / in)), bias from U(-1/sqrt(in), 1/sqrt(in)).
    pub fn new(inputs: usize, outputs: usize, rng: &mut impl Rng) -> Self {
        let fan_in = inputs as f32;
        Linear {
            weight: Tensor::randn(&[outputs, inputs], (2.0 / fan_in).sqrt(), rng).into_param(),
            bias: Tensor::uniform(&[outputs], 1.0 / fan_in.sqrt(), rng).into_param(),
        }
    }

    /// `x W^T + b` for `x: [N, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::linear::linear(x, &self.weight, Some(&self.bias))
    }
}

impl Module for Linear {
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind)) {
        f(&join(prefix, "weight"), &mut self.weight, TensorKind::Param);
        f(&join(prefix, "bias"), &mut self.bias, TensorKind::Param);
    }
}
