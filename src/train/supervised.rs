//! Plain supervised training: cross-entropy and SGD on one network.

use super::{StepStats, Trainee};
use crate::checkpoint::Checkpoint;
use crate::cuda::graph::StepGraph;
use crate::data::Loader;
use crate::error::Result;
use crate::nn::{Module, Network, TensorKind, join};
use crate::ops::accuracy;
use crate::ops::loss::cross_entropy;
use crate::optim::{Sgd, SgdConfig};
use crate::tensor::autograd;
use crate::tensor::device::Device;
use crate::tensor::{Tensor, pack_scalars};

/// A network trained with cross-entropy and SGD.
pub struct Supervised {
    /// The network.
    pub net: Box<dyn Network>,
    /// Its optimiser.
    pub sgd: Sgd,
    /// The graph of its steps on a GPU (`None`: every kernel launched each step).
    graph: Option<StepGraph>,
}

impl Supervised {
    /// `net` with a fresh optimiser, trained where its parameters are.
    pub fn new(net: Box<dyn Network>, sgd: SgdConfig) -> Result<Self> {
        Ok(Supervised { net, sgd: Sgd::new(sgd)?, graph: Some(StepGraph::default()) })
    }
}

/// Top-1 hits of `logits: [N, K]` against `labels` ([`crate::ops::accuracy::count_correct`],
/// read back).
pub fn count_correct(logits: &Tensor, labels: &[usize]) -> Result<usize> {
    Ok(accuracy::count_correct(logits, labels)?.item()? as usize)
}

/// Mean cross-entropy and top-1 accuracy (percent) of `net` in evaluation mode over `test`.
pub fn evaluate(net: &mut dyn Network, test: &Loader) -> Result<(f64, f64)> {
    let _guard = autograd::no_grad();
    let device = net.device();
    let (mut loss, mut correct, mut seen) = (0.0, 0, 0);
    for batch in test.epoch(0) {
        let x = Tensor::from_vec(batch.images, &[batch.n, batch.h, batch.w, batch.c])?.to_device(&device)?;
        let logits = net.forward(&x, false)?.logits;
        loss += cross_entropy(&logits, &batch.labels)?.item()? as f64 * batch.n as f64;
        correct += count_correct(&logits, &batch.labels)?;
        seen += batch.n;
    }
    let seen = seen.max(1) as f64;
    Ok((loss / seen, 100.0 * correct as f64 / seen))
}

/// Adds `modules` to `ckpt`, each under `prefix.<module name>` (its bare name where `prefix` is
/// empty), then the momentum buffers of `sgd` over them under `momentum` (see [`save_momentum`]).
pub(crate) fn save_modules(
    ckpt: &mut Checkpoint,
    prefix: &str,
    mut modules: Vec<(&str, &mut dyn Module)>,
    momentum: &str,
    sgd: &Sgd,
) -> Result<()> {
    for (name, module) in &mut modules {
        ckpt.add_module(&join(prefix, name), &mut **module)?;
    }
    save_momentum(ckpt, momentum, modules, sgd)
}

/// Restores what [`save_modules`] wrote.
pub(crate) fn load_modules(
    ckpt: &Checkpoint,
    prefix: &str,
    mut modules: Vec<(&str, &mut dyn Module)>,
    momentum: &str,
    sgd: &mut Sgd,
) -> Result<()> {
    for (name, module) in &mut modules {
        ckpt.load_module(&join(prefix, name), &mut **module)?;
    }
    load_momentum(ckpt, momentum, modules, sgd);
    Ok(())
}

/// Adds the momentum buffers of `sgd`, whose parameters are those of `modules` in order, each
/// named `prefix.<module name>.<parameter name>`.
fn save_momentum(
    ckpt: &mut Checkpoint,
    prefix: &str,
    modules: Vec<(&str, &mut dyn Module)>,
    sgd: &Sgd,
) -> Result<()> {
    let mut buffers = sgd.export_state()?.into_iter();
    for (name, module) in modules {
        module.visit(&format!("{prefix}.{name}"), &mut |full, _, kind| {
            if kind == TensorKind::Param
                && let Some(Some(buf)) = buffers.next()
            {
                ckpt.tensors.insert(full.to_string(), (vec![buf.len()], buf));
            }
        });
    }
    Ok(())
}

/// Restores the momentum buffers written by [`save_momentum`].
fn load_momentum(ckpt: &Checkpoint, prefix: &str, modules: Vec<(&str, &mut dyn Module)>, sgd: &mut Sgd) {
    let mut buffers = Vec::new();
    for (name, module) in modules {
        module.visit(&format!("{prefix}.{name}"), &mut |full, _, kind| {
            if kind == TensorKind::Param {
                buffers.push(ckpt.get(full).map(<[f32]>::to_vec));
            }
        });
    }
    sgd.import_state(buffers);
}

impl Trainee for Supervised {
    fn train_step(&mut self, images: &Tensor, labels: &[usize], lr: f32) -> Result<StepStats> {
        self.sgd.set_lr(lr)?;
        let device = self.net.device();
        let images = images.to_device(&device)?;
        let (net, sgd) = (&mut self.net, &mut self.sgd);
        let values = device.step(self.graph.as_mut(), || {
            let out = net.forward(&images, true)?;
            let loss = cross_entropy(&out.logits, labels)?;
            let grads = autograd::backward(&loss)?;
            sgd.step(&mut net.params_mut(), &grads)?;
            let correct = accuracy::count_correct(&out.logits, labels)?;
            pack_scalars(&[&loss, &correct])
        })?;
        // One read back, after the whole step is queued.
        let values = values.read()?;
        Ok(StepStats {
            loss: values[0] as f64 * labels.len() as f64,
            correct: values[1] as usize,
            images: labels.len(),
            terms: Default::default(),
        })
    }

    fn use_graphs(&mut self, on: bool) {
        self.graph = on.then(StepGraph::default);
    }

    fn evaluate(&mut self, test: &Loader) -> Result<(f64, f64)> {
        evaluate(self.net.as_mut(), test)
    }

    fn to_device(&mut self, device: &Device) -> Result<()> {
        self.net.to_device(device)
    }

    fn save_state(&mut self, ckpt: &mut Checkpoint) -> Result<()> {
        save_modules(ckpt, "", vec![("model", self.net.as_mut() as &mut dyn Module)], "momentum", &self.sgd)
    }

    fn load_state(&mut self, ckpt: &Checkpoint) -> Result<()> {
        load_modules(
            ckpt,
            "",
            vec![("model", self.net.as_mut() as &mut dyn Module)],
            "momentum",
            &mut self.sgd,
        )
    }

    fn model(&mut self) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", self.net.as_mut())?;
        Ok(ckpt)
    }
}
