//! The training loop: epochs over a prepared loader, a learning-rate schedule, evaluation after
//! every epoch, per-epoch metrics, atomic checkpoints and exact resumption.
//!
//! What is trained and how each step's loss is made is a [`Trainee`]: plain supervised training
//! ([`Supervised`]) here, the distillation recipes elsewhere. The loop owns the rest.
//!
//! Files in the output folder: `metrics.jsonl` (one JSON object per finished epoch, rewritten
//! atomically), `checkpoint.safetensors` (everything needed to resume), `model.safetensors` (the
//! last network alone, PyTorch names) and `best.safetensors` (the network at its best validation
//! accuracy when images are held out with `--val-split`, else at its best test accuracy).

mod metrics;
mod progress;
mod schedule;
mod supervised;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use metrics::{EpochMetrics, StepStats};
pub use schedule::{Schedule, ScheduleKind};
pub use supervised::{Supervised, count_correct, evaluate};
pub(crate) use supervised::{load_modules, save_modules};

use crate::checkpoint::Checkpoint;
use crate::data::{Batch, Loader};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;
use crate::tensor::device::Device;
use progress::Progress;

/// Whether training steps on a GPU are replayed as one graph once they repeat (`--graph`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum GraphMode {
    /// Record each step's device work and launch it as one graph when it repeats.
    #[default]
    On,
    /// Launch every kernel of every step.
    Off,
}

impl GraphMode {
    /// Whether graphs are used.
    pub fn is_on(self) -> bool {
        self == GraphMode::On
    }
}

/// Something the loop can train: one model (or several) with its optimiser and loss recipe.
pub trait Trainee {
    /// One optimisation step on a batch at learning rate `lr`.
    fn train_step(&mut self, images: &Tensor, labels: &[usize], lr: f32) -> Result<StepStats>;

    /// On a GPU, whether steps are recorded and replayed as one graph once they repeat (`true`,
    /// the default) or launch every kernel each step; no effect on the CPU.
    fn use_graphs(&mut self, on: bool);

    /// Test loss and accuracy of the model being trained, in evaluation mode.
    fn evaluate(&mut self, test: &Loader) -> Result<(f64, f64)>;

    /// Moves every network and encoder to `device`, where the steps then run (the batches
    /// arrive on the host and are copied there).
    fn to_device(&mut self, device: &Device) -> Result<()>;

    /// Everything needed to resume: models, buffers and optimiser state.
    fn save_state(&mut self, ckpt: &mut Checkpoint) -> Result<()>;

    /// Restores what [`Trainee::save_state`] wrote.
    fn load_state(&mut self, ckpt: &Checkpoint) -> Result<()>;

    /// The trained network alone, with PyTorch names (what users load).
    fn model(&mut self) -> Result<Checkpoint>;
}

/// How a run proceeds.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Epochs in the whole run.
    pub epochs: usize,
    /// Base learning rate.
    pub lr: f32,
    /// The schedule applied to `lr`.
    pub schedule: Schedule,
    /// Output folder.
    pub out: PathBuf,
    /// Continue from `out/checkpoint.safetensors` when it exists.
    pub resume: bool,
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// Set from another thread (Ctrl-C) to stop between batches; the last finished epoch stays saved.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// A description of the run stored with the checkpoint; resuming with another one is an error.
    pub identity: String,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Every epoch's metrics, including those of an earlier interrupted run.
    pub history: Vec<EpochMetrics>,
    /// The best test accuracy.
    pub best_acc: f64,
    /// The last epoch's test accuracy.
    pub last_acc: f64,
    /// The last epoch's validation accuracy, when images were held out.
    pub last_val_acc: Option<f64>,
}

/// The images a run trains on, selects on and reports on.
#[derive(Clone, Copy)]
pub struct Loaders<'a> {
    /// Shuffled, augmented training batches.
    pub train: &'a Loader,
    /// Held-out training images, evaluated after every epoch; they choose `best.safetensors`
    /// and the hyper-parameters, so the test set never does.
    pub val: Option<&'a Loader>,
    /// The test set, evaluated after every epoch and reported.
    pub test: &'a Loader,
}

const STATE: &str = "checkpoint.safetensors";

fn images_tensor(batch: &Batch) -> Result<Tensor> {
    Tensor::from_vec(batch.images.clone(), &[batch.n, batch.h, batch.w, batch.c])
}

/// Trains `trainee` on `data.train`, evaluating on the validation and test sets after every
/// epoch. The learning rate follows `cfg.schedule` step by step.
pub fn run(trainee: &mut dyn Trainee, data: Loaders, cfg: &RunConfig) -> Result<Summary> {
    let (train, test) = (data.train, data.test);
    let state_path = cfg.out.join(STATE);
    let mut history = Vec::new();
    if cfg.resume && state_path.exists() {
        history = resume(trainee, &state_path, &cfg.identity)?;
    }
    let bar = Progress::new(cfg.progress, train.num_batches());
    let batches = train.num_batches().max(1) as f64;
    for epoch in history.len()..cfg.epochs {
        let epoch_lr = cfg.schedule.lr(cfg.lr, epoch as f64, cfg.epochs);
        let start = Instant::now();
        let mut totals = StepStats::default();
        bar.start(format!("epoch {}/{}", epoch + 1, cfg.epochs));
        for (i, batch) in train.epoch(epoch as u64).enumerate() {
            if cfg.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
                autograd::clear_tape();
                bar.abandon();
                return Err(Error::Interrupted { epochs_done: epoch, out: cfg.out.clone() });
            }
            let lr = cfg.schedule.lr(cfg.lr, epoch as f64 + i as f64 / batches, cfg.epochs);
            let stats = trainee.train_step(&images_tensor(&batch)?, &batch.labels, lr)?;
            if !stats.loss.is_finite() {
                return Err(Error::invalid(
                    "train",
                    format!("loss became {} in epoch {}", stats.loss, epoch + 1),
                ));
            }
            totals.add(&stats);
            bar.step(|| {
                let seen = totals.images.max(1) as f64;
                format!(
                    "loss {:.3} acc {:.1}% {:.0} img/s",
                    totals.loss / seen,
                    100.0 * totals.correct as f64 / seen,
                    seen / start.elapsed().as_secs_f64()
                )
            });
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let val = data.val.map(|v| trainee.evaluate(v)).transpose()?;
        let (test_loss, test_acc) = trainee.evaluate(test)?;
        let mut metrics = EpochMetrics::new(
            epoch + 1,
            epoch_lr,
            &totals,
            test_loss,
            test_acc,
            start.elapsed().as_secs_f64(),
            train_seconds,
        );
        (metrics.val_loss, metrics.val_acc) = (val.map(|v| v.0), val.map(|v| v.1));
        history.push(metrics);
        save(trainee, &cfg.out, &history, &cfg.identity)?;
        bar.line(history[history.len() - 1].summary_line());
    }
    bar.finish();
    let best_acc = history.iter().map(|m| m.test_acc).fold(0.0, f64::max);
    let last_acc = history.last().map_or(0.0, |m| m.test_acc);
    let last_val_acc = history.last().and_then(|m| m.val_acc);
    Ok(Summary { history, best_acc, last_acc, last_val_acc })
}

/// Writes the resume state, the model files and the metrics after an epoch.
fn save(trainee: &mut dyn Trainee, out: &Path, history: &[EpochMetrics], identity: &str) -> Result<()> {
    let mut state = Checkpoint::new();
    trainee.save_state(&mut state)?;
    state.metadata.insert("history".into(), metrics::to_json(history));
    state.metadata.insert("identity".into(), identity.to_string());
    state.save(&out.join(STATE))?;
    let model = trainee.model()?;
    model.save(&out.join("model.safetensors"))?;
    if is_best(history) {
        model.save(&out.join("best.safetensors"))?;
    }
    metrics::write_jsonl(&out.join("metrics.jsonl"), history)
}

/// Whether the last epoch is the best so far: by validation accuracy when images were held
/// out, else by test accuracy.
fn is_best(history: &[EpochMetrics]) -> bool {
    let score = |m: &EpochMetrics| m.val_acc.unwrap_or(m.test_acc);
    let last = score(&history[history.len() - 1]);
    history.iter().all(|m| score(m) <= last)
}

/// Restores the trainee and returns the finished epochs' metrics.
fn resume(trainee: &mut dyn Trainee, path: &Path, identity: &str) -> Result<Vec<EpochMetrics>> {
    let state = Checkpoint::load(path)?;
    let saved = state.metadata.get("identity").map(String::as_str).unwrap_or("");
    if saved != identity {
        return Err(Error::invalid(
            "resume",
            format!("{} was written by another run ({saved}); this run is {identity}", path.display()),
        ));
    }
    let history =
        metrics::from_json(state.metadata.get("history").map(String::as_str).unwrap_or("[]"), path)?;
    trainee.load_state(&state)?;
    Ok(history)
}
