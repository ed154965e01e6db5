//! Stage 1: the teacher's auto-encoder, trained to rebuild the frozen teacher's feature.
//!
//! Per batch: `F_T` = the teacher's distillation feature (evaluation mode, not recorded);
//! `loss = mean |F_T - D(E(F_T))|` (`Recon::L1`, the authors' code) or
//! `mean (F_T - D(E(F_T)))^2` (`Recon::L2`, the paper's formula), over all elements.
//!
//! What the loop's columns mean for this trainee: `train_loss` and `test_loss` are the
//! reconstruction loss (the term `recon` repeats the training one); `train_acc` and `test_acc` are
//! the frozen teacher's top-1 accuracy, constant on the test set (a check that the intended
//! teacher was loaded).

use super::encoder::FactorAutoEncoder;
use super::teacher::FrozenTeacher;
use super::{count_correct, load_modules, save_modules};
use crate::checkpoint::Checkpoint;
use crate::cuda::graph::StepGraph;
use crate::data::Loader;
use crate::error::{Error, Result};
use crate::ops::accuracy;
use crate::ops::loss::{l1_loss, mse_loss};
use crate::optim::{Sgd, SgdConfig};
use crate::tensor::autograd;
use crate::tensor::{Tensor, pack_scalars};
use crate::train::{StepStats, Trainee};

/// The reconstruction loss of the auto-encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Recon {
    /// Mean absolute error (the authors' code).
    L1,
    /// Mean squared error (the paper's formula).
    L2,
}

impl Recon {
    /// The loss between a reconstruction and its target.
    pub fn loss(self, reconstruction: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            Recon::L1 => l1_loss(reconstruction, target),
            Recon::L2 => mse_loss(reconstruction, target),
        }
    }
}

/// The auto-encoder of a frozen teacher, trained on the reconstruction loss.
pub struct AutoEncoderTrainee {
    /// The frozen teacher (its own `autoencoder` field is not used).
    pub teacher: FrozenTeacher,
    /// The auto-encoder being trained.
    pub autoencoder: FactorAutoEncoder,
    /// The reconstruction loss.
    pub recon: Recon,
    /// The optimiser of the auto-encoder.
    pub sgd: Sgd,
    /// The graph of its steps on a GPU (`None`: every kernel launched each step).
    graph: Option<StepGraph>,
}

impl AutoEncoderTrainee {
    /// Trains `autoencoder` on `teacher`'s feature; the channel counts must agree.
    pub fn new(
        teacher: FrozenTeacher,
        autoencoder: FactorAutoEncoder,
        recon: Recon,
        sgd: SgdConfig,
    ) -> Result<Self> {
        Ok(AutoEncoderTrainee {
            teacher,
            autoencoder,
            recon,
            sgd: Sgd::new(sgd)?,
            graph: Some(StepGraph::default()),
        })
    }

    /// The teacher's feature of `images` and its logits, not recorded.
    fn feature(&mut self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let _guard = autograd::no_grad();
        let images = images.to_device(&self.teacher.net.device())?;
        let out = self.teacher.net.forward(&images, false)?;
        let [_, _, feature] = out.groups;
        Ok((feature, out.logits))
    }
}

impl Trainee for AutoEncoderTrainee {
    fn train_step(&mut self, images: &Tensor, labels: &[usize], lr: f32) -> Result<StepStats> {
        self.sgd.set_lr(lr)?;
        let device = self.teacher.net.device();
        let images = images.to_device(&device)?;
        let mut graph = self.graph.take();
        let packed = device.step(graph.as_mut(), || {
            let (feature, logits) = self.feature(&images)?;
            let (_, rebuilt) = self.autoencoder.reconstruct(&feature, true)?;
            let loss = self.recon.loss(&rebuilt, &feature)?;
            let grads = autograd::backward(&loss)?;
            self.sgd.step(&mut crate::nn::Module::params_mut(&mut self.autoencoder), &grads)?;
            pack_scalars(&[&loss, &accuracy::count_correct(&logits, labels)?])
        });
        self.graph = graph;
        // One read back, after the whole step is queued.
        let v = packed?.read()?;
        let value = v[0] as f64 * labels.len() as f64;
        Ok(StepStats {
            loss: value,
            correct: v[1] as usize,
            images: labels.len(),
            terms: [("recon".to_string(), value)].into(),
        })
    }

    fn use_graphs(&mut self, on: bool) {
        self.graph = on.then(StepGraph::default);
    }

    fn evaluate(&mut self, test: &Loader) -> Result<(f64, f64)> {
        let _guard = autograd::no_grad();
        let (mut loss, mut correct, mut seen) = (0.0, 0, 0);
        for batch in test.epoch(0) {
            let x = Tensor::from_vec(batch.images, &[batch.n, batch.h, batch.w, batch.c])?;
            let (feature, logits) = self.feature(&x)?;
            let (_, rebuilt) = self.autoencoder.reconstruct(&feature, false)?;
            loss += self.recon.loss(&rebuilt, &feature)?.item()? as f64 * batch.n as f64;
            correct += count_correct(&logits, &batch.labels)?;
            seen += batch.n;
        }
        if seen == 0 {
            return Err(Error::invalid("autoencoder", "the test set is empty"));
        }
        Ok((loss / seen as f64, 100.0 * correct as f64 / seen as f64))
    }

    fn to_device(&mut self, device: &crate::Device) -> Result<()> {
        self.teacher.to_device(device)?;
        crate::nn::Module::to_device(&mut self.autoencoder, device)
    }

    fn save_state(&mut self, ckpt: &mut Checkpoint) -> Result<()> {
        save_modules(ckpt, "", vec![("autoencoder", &mut self.autoencoder)], "momentum", &self.sgd)
    }

    fn load_state(&mut self, ckpt: &Checkpoint) -> Result<()> {
        load_modules(ckpt, "", vec![("autoencoder", &mut self.autoencoder)], "momentum", &mut self.sgd)
    }

    fn model(&mut self) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", &mut self.autoencoder)?;
        ckpt.metadata.insert("encoder".into(), self.autoencoder.kind().name().into());
        ckpt.metadata.insert("factor_channels".into(), self.autoencoder.factor_channels().to_string());
        ckpt.metadata.insert("teacher_arch".into(), self.teacher.net.name());
        Ok(ckpt)
    }
}
