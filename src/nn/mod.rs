//! Network building blocks and the networks of the paper, with PyTorch-style parameter names.

pub mod arch;
pub mod coder;
pub mod connector;
pub mod layers;
pub mod mobilenet;
pub mod paraphraser;
pub mod resnet;
pub mod vgg;
pub mod wrn;

use crate::tensor::Tensor;

pub use arch::Arch;
pub use coder::{AutoEncoder, Coder};
pub use connector::Connector;
pub use layers::{BatchNorm2d, Conv2d, Linear};
pub use mobilenet::MobileNetV2;
pub use paraphraser::{ConvTranspose2d, Paraphraser, Translator};
pub use resnet::{Output, ResNet, Shortcut};
pub use vgg::Vgg;
pub use wrn::WideResNet;

/// Whether a tensor of a module is trained or only carried along (batch-norm running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Trained by the optimiser.
    Param,
    /// Saved in checkpoints but not trained.
    Buffer,
    /// A count saved in checkpoints and kept on the host (batch norm's `num_batches_tracked`).
    Counter,
}

/// Anything with named tensors: layers, blocks, networks.
pub trait Module {
    /// Calls `f` with the full PyTorch-style name (`prefix` + local name), the tensor and its kind,
    /// for every parameter and buffer, in a fixed order.
    fn visit<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind));

    /// The trainable tensors, in visiting order (what the optimiser updates).
    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        let mut params = Vec::new();
        self.visit("", &mut |_, t, kind| {
            if kind == TensorKind::Param {
                params.push(t);
            }
        });
        params
    }

    /// Moves every parameter and buffer to `device` in place (counters stay on the host).
    fn to_device(&mut self, device: &crate::Device) -> crate::Result<()> {
        let mut result = Ok(());
        self.visit("", &mut |_, t, kind| {
            if result.is_ok() && kind != TensorKind::Counter {
                result = t.move_to(device);
            }
        });
        result
    }

    /// The device of the first parameter (the CPU for a module without any).
    fn device(&mut self) -> crate::Device {
        let mut device = None;
        self.visit("", &mut |_, t, kind| {
            if device.is_none() && kind == TensorKind::Param {
                device = Some(t.device());
            }
        });
        device.unwrap_or(crate::Device::Cpu)
    }

    /// The number of trainable scalars.
    fn num_params(&mut self) -> usize {
        let mut n = 0;
        self.visit("", &mut |_, t, kind| {
            if kind == TensorKind::Param {
                n += t.numel();
            }
        });
        n
    }
}

/// `prefix.name`, or `name` at the top level.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// Visits `modules` in order, module `i` under `prefix.name(i)`.
pub(crate) fn visit_numbered<'a, M: Module + 'a>(
    modules: impl IntoIterator<Item = &'a mut M>,
    prefix: &str,
    name: impl Fn(usize) -> String,
    f: &mut dyn FnMut(&str, &'a mut Tensor, TensorKind),
) {
    for (i, module) in modules.into_iter().enumerate() {
        module.visit(&join(prefix, &name(i)), f);
    }
}

/// A classification network that exposes its distillation features.
pub trait Network: Module + Send {
    /// Logits and group outputs for channels-last images `x: [N, H, W, C]`; batch norm uses (and
    /// updates) batch statistics when `train`. With `pre_relu`, also the three stages'
    /// pre-ReLU outputs (see [`Network::forward_pre_relu`]; empty for a network without them),
    /// computed unfused where needed; without, those layers run fused and the list is empty.
    fn forward_with(
        &mut self,
        x: &Tensor,
        train: bool,
        pre_relu: bool,
    ) -> crate::Result<(Output, Vec<Tensor>)>;

    /// Logits and group outputs ([`Network::forward_with`] without the pre-ReLU outputs).
    fn forward(&mut self, x: &Tensor, train: bool) -> crate::Result<Output> {
        Ok(self.forward_with(x, train, false)?.0)
    }

    /// Channels of the distillation feature (the last group's output).
    fn feature_channels(&self) -> usize;

    /// Channels of the three group outputs (attention transfer's maps).
    fn group_channels(&self) -> [usize; 3];

    /// The architecture's name as the command line spells it (`resnet20`, `wrn-16-2`).
    fn name(&self) -> String;

    /// [`Network::forward`] that also returns the three stages' pre-ReLU outputs (Overhaul
    /// distillation's features), each the output of the batch norm [`Network::pre_relu_bns`]
    /// names (plus the residual, in a post-activation block) before its ReLU; an error naming a
    /// network without them.
    fn forward_pre_relu(&mut self, x: &Tensor, train: bool) -> crate::Result<(Output, [Tensor; 3])> {
        let (out, pre) = self.forward_with(x, train, true)?;
        let stages: [Tensor; 3] = pre.try_into().map_err(|_| no_pre_relu(&self.name()))?;
        Ok((out, stages))
    }

    /// The batch norms whose outputs are the pre-ReLU stage features (their scale and shift give
    /// the teacher's margins). The default: an error naming the network.
    fn pre_relu_bns(&self) -> crate::Result<[&BatchNorm2d; 3]> {
        Err(no_pre_relu(&self.name()))
    }
}

/// A layer of a network stage that can also run with its last batch norm and ReLU unfused,
/// giving the pre-ReLU value too (Overhaul distillation's feature).
pub(crate) trait PreRelu {
    /// The output.
    fn forward(&mut self, x: &Tensor, train: bool) -> crate::Result<Tensor>;

    /// The output and its value before the ReLU.
    fn forward_pre_relu(&mut self, x: &Tensor, train: bool) -> crate::Result<(Tensor, Tensor)>;
}

/// Runs the `layers` of a stage on `x`; the layer at index `unfused`, if any, runs unfused and its
/// pre-ReLU value is pushed to `pre`.
pub(crate) fn run_stage<L: PreRelu>(
    layers: &mut [L],
    x: &Tensor,
    train: bool,
    unfused: Option<usize>,
    pre: &mut Vec<Tensor>,
) -> crate::Result<Tensor> {
    let mut h = x.clone();
    for (i, layer) in layers.iter_mut().enumerate() {
        if Some(i) == unfused {
            let (out, p) = layer.forward_pre_relu(&h, train)?;
            pre.push(p);
            h = out;
        } else {
            h = layer.forward(&h, train)?;
        }
    }
    Ok(h)
}

/// The error of a network without pre-ReLU stage outputs.
fn no_pre_relu(name: &str) -> crate::Error {
    crate::Error::invalid("od", format!("{name} does not expose its pre-ReLU stage outputs"))
}

/// The names of every tensor of `module`, in visiting order.
#[cfg(test)]
pub(crate) fn tensor_names(module: &mut dyn Module) -> Vec<String> {
    let mut names = Vec::new();
    module.visit("", &mut |name, _, _| names.push(name.to_string()));
    names
}

/// Asserts that `module` has a tensor of each name of `want`.
#[cfg(test)]
pub(crate) fn assert_has_names(module: &mut dyn Module, want: &[&str]) {
    let names = tensor_names(module);
    for want in want {
        assert!(names.iter().any(|n| n == want), "missing {want}");
    }
}

/// Asserts that back-propagating a random seed (drawn from `rng`) from `output` gives every
/// parameter of `module` a gradient that is not all zero.
#[cfg(test)]
pub(crate) fn assert_gradients_reach_every_param(
    module: &mut impl Module,
    output: &Tensor,
    rng: &mut impl rand::Rng,
) {
    let seed = Tensor::randn(output.shape(), 1.0, rng);
    let grads = crate::tensor::autograd::backward_with(output, seed).unwrap();
    module.visit("", &mut |name, t, kind| {
        if kind == TensorKind::Param {
            let g = grads.get(t).unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(g.host().unwrap().iter().any(|v| *v != 0.0), "zero gradient for {name}");
        }
    });
}
