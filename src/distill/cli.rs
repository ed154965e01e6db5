//! The command-line arguments and the runs behind `iekd autoencoder` and `iekd distill` (the
//! binary only parses and dispatches; `iekd cka` is in [`super::analysis`], `iekd demo` in
//! [`super::demo`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::autoencoder::{AutoEncoderTrainee, Recon};
use super::encoder::{EncoderKind, FactorAutoEncoder};
use super::split::SplitKind;
use super::student::{DistillConfig, Distiller};
use super::teacher::FrozenTeacher;
use super::{Exploration, Hyper, Method, Mutual};
use crate::data::{self, Dataset, DatasetKind, Loader, LoaderConfig, Split};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::nn::Arch;
use crate::ops::loss::FactorNorm;
use crate::optim::SgdConfig;
use crate::train::{self, RunConfig, ScheduleKind, Summary, Trainee};

/// Where the data comes from.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// Data set: cifar10, cifar100, mnist, fashion-mnist.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: DatasetKind,
    /// Folder holding the data set's files (default: /usr/share/datasets/fashion-mnist for
    /// Fashion-MNIST when present, else data/NAME).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Use only the first N test images (quick runs).
    #[arg(long)]
    pub test_subset: Option<usize>,
}

impl DataArgs {
    /// One split, cut to its subset; a missing data set is an error that says how to get it.
    pub fn load(&self, split: Split) -> Result<Dataset> {
        let dir = self.data_dir.clone().unwrap_or_else(|| self.dataset.default_dir());
        let mut set = data::load(self.dataset, &dir, split).map_err(|e| match e {
            Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => Error::Io {
                path,
                source: std::io::Error::new(
                    source.kind(),
                    format!("not found; get it with `iekd data fetch {}` (or apt-get install dataset-fashion-mnist)", self.dataset),
                ),
            },
            e => e,
        })?;
        let limit = match split {
            Split::Train => self.train_subset,
            Split::Test => self.test_subset,
        };
        if let Some(n) = limit {
            set.truncate(n);
        }
        Ok(set)
    }

    /// The shuffled, augmented training loader and the test loader.
    pub fn loaders(&self, batch_size: usize, seed: u64) -> Result<(Loader, Loader)> {
        let train =
            Loader::new(self.load(Split::Train)?, LoaderConfig::train(self.dataset, batch_size, seed))?;
        let test = Loader::new(self.load(Split::Test)?, LoaderConfig::eval(self.dataset, 500))?;
        Ok((train, test))
    }
}

/// Optimiser and run settings shared by the training commands.
#[derive(clap::Args, Clone, Debug)]
pub struct OptimArgs {
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// L2 weight decay, added to the gradient.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f32,
    /// Use plain instead of Nesterov momentum.
    #[arg(long)]
    pub no_nesterov: bool,
    /// Seed of initialisation, shuffling, augmentation and a random split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device: auto (a GPU when usable, else the CPU), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Continue an interrupted run from OUT/checkpoint.safetensors.
    #[arg(long)]
    pub resume: bool,
}

impl OptimArgs {
    /// The SGD settings.
    pub fn sgd(&self) -> SgdConfig {
        SgdConfig {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: !self.no_nesterov,
        }
    }
}

/// `iekd autoencoder`: stage 1, the teacher's auto-encoder.
#[derive(clap::Args, Clone, Debug)]
pub struct AutoencoderArgs {
    /// The teacher's model file (model.safetensors or best.safetensors of `iekd train`).
    #[arg(long)]
    pub teacher: PathBuf,
    /// The teacher's architecture.
    #[arg(long)]
    pub teacher_arch: Arch,
    #[command(flatten)]
    pub data: DataArgs,
    /// Epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Channels of the factor.
    #[arg(long, default_value_t = 32)]
    pub factor_channels: usize,
    /// Reconstruction loss: l1 (mean absolute error, the authors' code) or l2 (mean squared error).
    #[arg(long, value_enum, default_value_t = Recon::L1)]
    pub recon: Recon,
    /// Auto-encoder family: coder (IE-KD, with batch norm) or paraphraser (Factor Transfer).
    #[arg(long, value_enum, default_value_t = EncoderKind::Coder)]
    pub encoder: EncoderKind,
    /// Learning-rate schedule (constant, as the authors' code).
    #[arg(long, value_enum, default_value_t = ScheduleKind::Constant)]
    pub schedule: ScheduleKind,
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Output folder.
    #[arg(long, default_value = "runs/autoencoder")]
    pub out: PathBuf,
}

/// Parses `l1` or `l2` as a factor distance.
fn factor_norm(s: &str) -> std::result::Result<FactorNorm, String> {
    match s {
        "l1" => Ok(FactorNorm::L1),
        "l2" => Ok(FactorNorm::L2),
        _ => Err(format!("expected l1 or l2, got '{s}'")),
    }
}

/// `iekd distill`: stage 2, a student trained with one recipe.
#[derive(clap::Args, Clone, Debug)]
pub struct DistillArgs {
    /// Recipe: ie-ft, ft, kd, at, ie-at, dml, ie-dml, none.
    #[arg(long, value_enum, default_value_t = Method::IeFt)]
    pub method: Method,
    /// The teacher's model file (every recipe but none, dml and ie-dml).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// The teacher's architecture; for dml and ie-dml the peer's (default: the student's).
    #[arg(long)]
    pub teacher_arch: Option<Arch>,
    /// The teacher's auto-encoder, model file of `iekd autoencoder` (ie-ft and ft).
    #[arg(long)]
    pub autoencoder: Option<PathBuf>,
    /// The student's architecture.
    #[arg(long, default_value = "resnet20")]
    pub student_arch: Arch,
    #[command(flatten)]
    pub data: DataArgs,
    /// Epochs.
    #[arg(long, default_value_t = 160)]
    pub epochs: usize,
    /// Learning-rate schedule: multistep (x0.1 at 50% and 75% of the epochs), cosine, constant.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Multistep)]
    pub schedule: ScheduleKind,
    /// Weight of the inheritance loss [default: 500; ie-at: 1000].
    #[arg(long)]
    pub lambda_inh: Option<f32>,
    /// Weight of the exploration loss [default: 50; ie-at: 1000].
    #[arg(long)]
    pub lambda_exp: Option<f32>,
    /// Weight of the FT or AT loss [default: ft 500, at 1000].
    #[arg(long)]
    pub beta: Option<f32>,
    /// KD: weight of the distillation term.
    #[arg(long, default_value_t = 0.9)]
    pub alpha: f32,
    /// KD: temperature.
    #[arg(long, default_value_t = 4.0)]
    pub temperature: f32,
    /// Channel split of the IE recipes: natural (first half inherits) or random (a seeded permutation).
    #[arg(long, value_enum, default_value_t = SplitKind::Natural)]
    pub split: SplitKind,
    /// Exploration loss: l1 (negated factor distance) or dot (|cosine| of the factors).
    #[arg(long, value_enum, default_value_t = Exploration::L1)]
    pub exploration: Exploration,
    /// Factor distance p: l1 (the authors' code) or l2.
    #[arg(long, value_parser = factor_norm, default_value = "l1")]
    pub factor_norm: FactorNorm,
    /// Student encoders: coder (IE-KD) or paraphraser (FT's translator) [default: the auto-encoder's family].
    #[arg(long, value_enum)]
    pub encoder: Option<EncoderKind>,
    /// ie-dml: channels of the online factors.
    #[arg(long, default_value_t = 32)]
    pub factor_channels: usize,
    /// ie-dml: reconstruction loss of the online auto-encoders.
    #[arg(long, value_enum, default_value_t = Recon::L1)]
    pub recon: Recon,
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Output folder.
    #[arg(long, default_value = "runs/distill")]
    pub out: PathBuf,
}

impl DistillArgs {
    /// The recipe's weights: the flags, or the method's defaults.
    pub fn hyper(&self) -> Hyper {
        let d = Hyper::defaults(self.method);
        Hyper {
            lambda_inh: self.lambda_inh.unwrap_or(d.lambda_inh),
            lambda_exp: self.lambda_exp.unwrap_or(d.lambda_exp),
            beta: self.beta.unwrap_or(d.beta),
            alpha: self.alpha,
            temperature: self.temperature,
            exploration: self.exploration,
            factor_norm: self.factor_norm,
        }
    }
}

/// The run settings of the loop.
fn run_config(
    out: PathBuf,
    epochs: usize,
    lr: f32,
    schedule: ScheduleKind,
    resume: bool,
    interrupt: Option<Arc<AtomicBool>>,
    identity: String,
) -> RunConfig {
    RunConfig {
        epochs,
        lr,
        schedule: schedule.for_epochs(epochs),
        out,
        resume,
        progress: true,
        interrupt,
        identity,
    }
}

/// Trains the auto-encoder of `iekd autoencoder`.
pub fn run_autoencoder(args: &AutoencoderArgs, interrupt: Option<Arc<AtomicBool>>) -> Result<Summary> {
    let (train_loader, test_loader) = args.data.loaders(args.optim.batch_size, args.optim.seed)?;
    let set = train_loader.dataset();
    let teacher =
        FrozenTeacher::load(args.teacher_arch, &args.teacher, None, set.channels(), set.num_classes())?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.optim.seed);
    let ae = FactorAutoEncoder::new(
        args.encoder,
        args.teacher_arch.feature_channels(),
        args.factor_channels,
        &mut rng,
    )?;
    let mut trainee = AutoEncoderTrainee::new(teacher, ae, args.recon, args.optim.sgd())?;
    trainee.to_device(&Device::parse(&args.optim.device)?)?;
    let identity = format!(
        "autoencoder {} of {} ({}) on {} c {} recon {:?} seed {} batch {} sgd {:?}",
        args.encoder.name(),
        args.teacher.display(),
        args.teacher_arch,
        args.data.dataset,
        args.factor_channels,
        args.recon,
        args.optim.seed,
        args.optim.batch_size,
        args.optim.sgd()
    );
    let cfg = run_config(
        args.out.clone(),
        args.epochs,
        args.optim.lr,
        args.schedule,
        args.optim.resume,
        interrupt,
        identity,
    );
    train::run(&mut trainee, &train_loader, &test_loader, &cfg)
}

/// Builds the trainee of `iekd distill` for images of `channels` channels and `classes` classes.
pub fn distill_trainee(args: &DistillArgs, channels: usize, classes: usize) -> Result<Box<dyn Trainee>> {
    let method = args.method;
    let seed = args.optim.seed;
    let student = args.student_arch.build(channels, classes, &mut ChaCha8Rng::seed_from_u64(seed))?;
    let mut config = DistillConfig {
        method,
        hyper: args.hyper(),
        encoder: args.encoder.unwrap_or(EncoderKind::Coder),
        split: args.split,
        sgd: args.optim.sgd(),
        seed,
    };
    if method.is_mutual() {
        if args.teacher.is_some() {
            return Err(Error::invalid(
                "distill",
                format!("{method} trains both networks from scratch; drop --teacher"),
            ));
        }
        let peer_arch = args.teacher_arch.unwrap_or(args.student_arch);
        let peer =
            peer_arch.build(channels, classes, &mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(1)))?;
        return Ok(Box::new(Mutual::new(student, peer, config, args.factor_channels, args.recon)?));
    }
    let teacher = match (method.needs_teacher(), &args.teacher, args.teacher_arch) {
        (false, _, _) => None,
        (true, Some(path), Some(arch)) => {
            let ae = if method.needs_autoencoder() {
                Some(args.autoencoder.as_deref().ok_or_else(|| {
                    Error::invalid(
                        "distill",
                        format!("{method} needs the teacher's auto-encoder (--autoencoder)"),
                    )
                })?)
            } else {
                None
            };
            Some(FrozenTeacher::load(arch, path, ae, channels, classes)?)
        }
        (true, _, _) => {
            return Err(Error::invalid("distill", format!("{method} needs --teacher and --teacher-arch")));
        }
    };
    if let (None, Some(ae)) = (args.encoder, teacher.as_ref().and_then(|t| t.autoencoder.as_ref())) {
        config.encoder = ae.kind();
    }
    Ok(Box::new(Distiller::new(student, teacher, config)?))
}

/// Trains a student with `iekd distill`.
pub fn run_distill(args: &DistillArgs, interrupt: Option<Arc<AtomicBool>>) -> Result<Summary> {
    let (train_loader, test_loader) = args.data.loaders(args.optim.batch_size, args.optim.seed)?;
    let set = train_loader.dataset();
    let mut trainee = distill_trainee(args, set.channels(), set.num_classes())?;
    trainee.to_device(&Device::parse(&args.optim.device)?)?;
    let identity = format!(
        "distill {} {} from {:?} ({:?}) ae {:?} on {} seed {} batch {} sgd {:?} {:?} split {:?} encoder {:?}",
        args.method,
        args.student_arch,
        args.teacher,
        args.teacher_arch,
        args.autoencoder,
        args.data.dataset,
        args.optim.seed,
        args.optim.batch_size,
        args.optim.sgd(),
        args.hyper(),
        args.split,
        args.encoder
    );
    let cfg = run_config(
        args.out.clone(),
        args.epochs,
        args.optim.lr,
        args.schedule,
        args.optim.resume,
        interrupt,
        identity,
    );
    train::run(trainee.as_mut(), &train_loader, &test_loader, &cfg)
}
