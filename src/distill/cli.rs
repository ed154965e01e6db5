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
use super::preset::Preset;
use super::split::SplitKind;
use super::student::{DistillConfig, Distiller};
use super::teacher::FrozenTeacher;
use super::{Exploration, Hyper, Method, Mutual};
use crate::data::{self, Dataset, DatasetKind, Loader, LoaderConfig, Split};
use crate::error::{Error, Result};
use crate::nn::Arch;
use crate::ops::loss::FactorNorm;
use crate::ops::precision::{self, Precision};
use crate::optim::SgdConfig;
use crate::tensor::device::Device;
use crate::train::{self, GraphMode, RunConfig, Schedule, ScheduleKind, Summary, Trainee};

/// Where the data comes from.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct DataArgs {
    /// Data set: cifar10, cifar100, mnist, fashion-mnist.
    #[cfg_attr(feature = "cli", arg(long, default_value = "fashion-mnist"))]
    pub dataset: DatasetKind,
    /// Folder holding the data set's files (default: /usr/share/datasets/fashion-mnist for
    /// Fashion-MNIST when present, else data/NAME).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N training images (quick runs).
    #[cfg_attr(feature = "cli", arg(long))]
    pub train_subset: Option<usize>,
    /// Use only the first N test images (quick runs).
    #[cfg_attr(feature = "cli", arg(long))]
    pub test_subset: Option<usize>,
    /// Hold out the last N images of the training set as a validation set: never trained on,
    /// evaluated after every epoch (`val_acc` in metrics.jsonl), it chooses best.safetensors.
    /// --train-subset then takes the first images of the rest.
    #[cfg_attr(feature = "cli", arg(long))]
    pub val_split: Option<usize>,
}

/// The data of a training run: training, validation (when held out) and test loaders.
pub struct RunData {
    /// Shuffled, augmented training batches.
    pub train: Loader,
    /// The held-out validation images, in order.
    pub val: Option<Loader>,
    /// The test images, in order.
    pub test: Loader,
}

impl RunData {
    /// The loaders as the training loop takes them.
    pub fn loaders(&self) -> train::Loaders<'_> {
        train::Loaders { train: &self.train, val: self.val.as_ref(), test: &self.test }
    }
}

impl DataArgs {
    /// One split, cut to its subset (the training split without its held-out images); a missing
    /// data set is an error that says how to get it.
    pub fn load(&self, split: Split) -> Result<Dataset> {
        Ok(self.load_with_val(split)?.0)
    }

    /// One split and, for the training split with `--val-split`, its held-out images.
    fn load_with_val(&self, split: Split) -> Result<(Dataset, Option<Dataset>)> {
        let dir = self.data_dir.clone().unwrap_or_else(|| self.dataset.default_dir());
        let mut set = data::load(self.dataset, &dir, split).map_err(|e| match e {
            Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => Error::Io {
                path,
                source: std::io::Error::new(
                    source.kind(),
                    match self.dataset {
                        DatasetKind::FashionMnist => format!(
                            "not found; get it with `iekd data fetch {}` (or apt-get install dataset-fashion-mnist)",
                            self.dataset
                        ),
                        other => format!("not found; get it with `iekd data fetch {other}`"),
                    },
                ),
            },
            e => e,
        })?;
        let (limit, val) = match (split, self.val_split) {
            (Split::Train, Some(n)) => (self.train_subset, Some(set.split_off_last(n)?)),
            (Split::Train, None) => (self.train_subset, None),
            (Split::Test, _) => (self.test_subset, None),
        };
        if let Some(n) = limit {
            set.truncate(n);
        }
        Ok((set, val))
    }

    /// The shuffled, augmented training loader, the validation loader (with `--val-split`) and
    /// the test loader.
    pub fn loaders(&self, batch_size: usize, seed: u64) -> Result<RunData> {
        let (train, val) = self.load_with_val(Split::Train)?;
        let eval = |set| Loader::new(set, LoaderConfig::eval(self.dataset, 500));
        Ok(RunData {
            train: Loader::new(train, LoaderConfig::train(self.dataset, batch_size, seed))?,
            val: val.map(eval).transpose()?,
            test: eval(self.load(Split::Test)?)?,
        })
    }
}

/// Optimiser and run settings shared by the training commands.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct OptimArgs {
    /// Images per batch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 128))]
    pub batch_size: usize,
    /// Base learning rate.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.1))]
    pub lr: f32,
    /// SGD momentum.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.9))]
    pub momentum: f32,
    /// L2 weight decay, added to the gradient.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5e-4))]
    pub weight_decay: f32,
    /// Use plain instead of Nesterov momentum.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_nesterov: bool,
    /// Seed of initialisation, shuffling, augmentation and a random split.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Device: auto (a GPU when usable, else the CPU), cpu or cuda.
    #[cfg_attr(feature = "cli", arg(long, default_value = "auto"))]
    pub device: String,
    /// On a GPU, replay each training step as one CUDA graph once steps repeat (on), or launch
    /// every kernel (off).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "on"))]
    pub graph: GraphMode,
    /// Operands of the convolutions and the linear layer: fp32, or rounded to tf32 or bf16 with
    /// fp32 sums (weights, optimiser state and everything else stay fp32).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "fp32"))]
    pub precision: Precision,
    /// Continue an interrupted run from OUT/checkpoint.safetensors.
    #[cfg_attr(feature = "cli", arg(long))]
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
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct AutoencoderArgs {
    /// The teacher's model file (model.safetensors or best.safetensors of `iekd train`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub teacher: PathBuf,
    /// The teacher's architecture.
    #[cfg_attr(feature = "cli", arg(long))]
    pub teacher_arch: Arch,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub data: DataArgs,
    /// Epochs.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 30))]
    pub epochs: usize,
    /// Channels of the factor.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub factor_channels: usize,
    /// Reconstruction loss: l1 (mean absolute error, the authors' code) or l2 (mean squared error).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Recon::L1))]
    pub recon: Recon,
    /// Auto-encoder family: coder (IE-KD, with batch norm) or paraphraser (Factor Transfer).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = EncoderKind::Coder))]
    pub encoder: EncoderKind,
    /// Learning-rate schedule (constant, as the authors' code).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = ScheduleKind::Constant))]
    pub schedule: ScheduleKind,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub optim: OptimArgs,
    /// Output folder.
    #[cfg_attr(feature = "cli", arg(long, default_value = "runs/autoencoder"))]
    pub out: PathBuf,
}

/// Parses `l1` or `l2` as a factor distance.
#[cfg(feature = "cli")]
fn factor_norm(s: &str) -> std::result::Result<FactorNorm, String> {
    match s {
        "l1" => Ok(FactorNorm::L1),
        "l2" => Ok(FactorNorm::L2),
        _ => Err(format!("expected l1 or l2, got '{s}'")),
    }
}

/// `iekd distill`: stage 2, a student trained with one recipe.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct DistillArgs {
    /// Recipe: ie-ft, ft, kd, at, ie-at, od, ie-od, dml, ie-dml, none.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Method::IeFt))]
    pub method: Method,
    /// The teacher's model file (every recipe but none, dml and ie-dml).
    #[cfg_attr(feature = "cli", arg(long))]
    pub teacher: Option<PathBuf>,
    /// The teacher's architecture; for dml and ie-dml the peer's (default: the student's).
    #[cfg_attr(feature = "cli", arg(long))]
    pub teacher_arch: Option<Arch>,
    /// The teacher's auto-encoder, model file of `iekd autoencoder` (ie-ft and ft).
    #[cfg_attr(feature = "cli", arg(long))]
    pub autoencoder: Option<PathBuf>,
    /// The student's architecture.
    #[cfg_attr(feature = "cli", arg(long, default_value = "resnet20"))]
    pub student_arch: Arch,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub data: DataArgs,
    /// Epochs.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 160))]
    pub epochs: usize,
    /// Learning-rate schedule: multistep (x0.1 at 50% and 75% of the run, or at --milestones;
    /// the authors' configs drop at epochs 80 and 120 of 160), cosine, constant.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = ScheduleKind::Multistep))]
    pub schedule: ScheduleKind,
    /// Epochs at which the multi-step schedule drops x0.1, comma-separated (e.g. 80,120).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub milestones: Option<Vec<f64>>,
    /// A released configuration of the authors (their config/ folder): sets the method, data set,
    /// architectures, epochs, milestones, batch size and loss weights of that file; flags given
    /// here still win. kd-cifar10-r56-r20, kd-cifar100-r110-r32b, ft-cifar10-r56-r20,
    /// ft-cifar100-r110-r32b, ie-ft-cifar10-r56-r20, dml-cifar10-r56-r32.
    #[cfg_attr(feature = "cli", arg(long))]
    pub preset: Option<String>,
    /// Weight of the inheritance loss [default: 500 (Factor Transfer's beta on the same loss,
    /// kept by the validation sweep in the README); ie-at: 1000 (AT's beta); ie-od: 1e-3 (OD's
    /// beta)].
    #[cfg_attr(feature = "cli", arg(long))]
    pub lambda_inh: Option<f32>,
    /// Weight of the exploration loss; 0 keeps the exploration encoder but drops its loss (the
    /// control arm) [default: 10 (chosen on validation accuracy, see the README); ie-at: 1000;
    /// ie-od: 0.1 (caps the bounded term's share of the loss at 0.7; chosen on validation over 0.01)].
    #[cfg_attr(feature = "cli", arg(long))]
    pub lambda_exp: Option<f32>,
    /// Weight of the FT, AT or OD loss [default: ft 500 (Factor Transfer paper and the authors'
    /// FT configs), at 1000 (Zagoruyko and Komodakis's AT), od 1e-3 (the Overhaul code's CIFAR
    /// `loss_distill.sum() / batch_size / 1000`)].
    #[cfg_attr(feature = "cli", arg(long))]
    pub beta: Option<f32>,
    /// KD: weight of the distillation term [default: 0.9 with T 4, the authors' CIFAR-100 KD
    /// config; their CIFAR-10 one uses 0.95 with T 20].
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.9))]
    pub alpha: f32,
    /// KD: temperature [default: 4, see --alpha].
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 4.0))]
    pub temperature: f32,
    /// Channel split of the IE recipes: natural (first channels inherit) or random (a seeded permutation).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = SplitKind::Natural))]
    pub split: SplitKind,
    /// Share of the feature's channels that inherit (the rest explore), in (0, 1); the split
    /// ablation. [default: 0.5, the paper's halves]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.5))]
    pub split_ratio: f32,
    /// Exploration loss: l1 (negated factor distance) or dot (|cosine| of the factors).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Exploration::L1))]
    pub exploration: Exploration,
    /// Factor distance p: l1 (the authors' code) or l2.
    #[cfg_attr(feature = "cli", arg(long, value_parser = factor_norm, default_value = "l1"))]
    pub factor_norm: FactorNorm,
    /// Student encoders: coder (IE-KD) or paraphraser (FT's translator) [default: the auto-encoder's family].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub encoder: Option<EncoderKind>,
    /// ie-dml: channels of the online factors.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub factor_channels: usize,
    /// ie-dml: reconstruction loss of the online auto-encoders.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Recon::L1))]
    pub recon: Recon,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub optim: OptimArgs,
    /// Output folder.
    #[cfg_attr(feature = "cli", arg(long, default_value = "runs/distill"))]
    pub out: PathBuf,
}

impl DistillArgs {
    /// Applies `--preset` (when given) to every setting whose flag `given` says was not on the
    /// command line (`given` takes the argument's field name, e.g. `"alpha"`).
    pub fn apply_preset(&mut self, given: &dyn Fn(&str) -> bool) -> Result<()> {
        let Some(name) = &self.preset else { return Ok(()) };
        let p = Preset::find(name)?;
        let unset = |id: &str| !given(id);
        if unset("method") {
            self.method = p.method;
        }
        if unset("dataset") {
            self.data.dataset = p.dataset;
        }
        if unset("teacher_arch") {
            self.teacher_arch = Some(p.teacher_arch.parse()?);
        }
        if unset("student_arch") {
            self.student_arch = p.student_arch.parse()?;
        }
        if unset("epochs") {
            self.epochs = p.epochs;
        }
        if unset("schedule") && unset("milestones") {
            (self.schedule, self.milestones) = (ScheduleKind::Multistep, Some(p.milestones.to_vec()));
        }
        if unset("batch_size") {
            self.optim.batch_size = p.batch_size;
        }
        if unset("lr") {
            self.optim.lr = p.lr;
        }
        if let (Some((alpha, t)), true) = (p.kd, unset("alpha") && unset("temperature")) {
            (self.alpha, self.temperature) = (alpha, t);
        }
        if let (Some(beta), None) = (p.beta, self.beta) {
            self.beta = Some(beta);
        }
        if let Some((inh, exp)) = p.lambdas {
            self.lambda_inh = self.lambda_inh.or(Some(inh));
            self.lambda_exp = self.lambda_exp.or(Some(exp));
        }
        Ok(())
    }

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
    schedule: Schedule,
    resume: bool,
    interrupt: Option<Arc<AtomicBool>>,
    identity: String,
) -> RunConfig {
    RunConfig { epochs, lr, schedule, out, resume, progress: true, interrupt, identity }
}

/// Trains the auto-encoder of `iekd autoencoder`.
pub fn run_autoencoder(args: &AutoencoderArgs, interrupt: Option<Arc<AtomicBool>>) -> Result<Summary> {
    let kind = args.data.dataset;
    let teacher =
        FrozenTeacher::load(args.teacher_arch, &args.teacher, None, kind.channels(), kind.num_classes())?;
    let data = args.data.loaders(args.optim.batch_size, args.optim.seed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.optim.seed);
    let ae = FactorAutoEncoder::new(
        args.encoder,
        args.teacher_arch.feature_channels(),
        args.factor_channels,
        &mut rng,
    )?;
    let mut trainee = AutoEncoderTrainee::new(teacher, ae, args.recon, args.optim.sgd())?;
    trainee.to_device(&Device::parse(&args.optim.device)?)?;
    trainee.use_graphs(args.optim.graph.is_on());
    let _precision = precision::set(args.optim.precision);
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
        args.schedule.for_epochs(args.epochs, None),
        args.optim.resume,
        interrupt,
        identity,
    );
    train::run(&mut trainee, data.loaders(), &cfg)
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
        split_ratio: args.split_ratio,
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
        (true, None, _) => {
            return Err(Error::invalid(
                "distill",
                format!("{method} needs --teacher (the teacher's model file)"),
            ));
        }
        (true, Some(_), None) => {
            return Err(Error::invalid("distill", format!("{method} needs --teacher-arch")));
        }
    };
    if let (None, Some(ae)) = (args.encoder, teacher.as_ref().and_then(|t| t.autoencoder.as_ref())) {
        config.encoder = ae.kind();
    }
    Ok(Box::new(Distiller::new(student, teacher, config)?))
}

/// Trains a student with `iekd distill`.
pub fn run_distill(args: &DistillArgs, interrupt: Option<Arc<AtomicBool>>) -> Result<Summary> {
    // The networks first (their shapes depend only on the data set's kind), so a mistake in the
    // recipe's arguments is reported before the data is read.
    let kind = args.data.dataset;
    let mut trainee = distill_trainee(args, kind.channels(), kind.num_classes())?;
    let data = args.data.loaders(args.optim.batch_size, args.optim.seed)?;
    trainee.to_device(&Device::parse(&args.optim.device)?)?;
    trainee.use_graphs(args.optim.graph.is_on());
    let _precision = precision::set(args.optim.precision);
    let identity = format!(
        "distill {} {} from {:?} ({:?}) ae {:?} on {} val {:?} seed {} batch {} sgd {:?} {:?} split {:?} {} encoder {:?}",
        args.method,
        args.student_arch,
        args.teacher,
        args.teacher_arch,
        args.autoencoder,
        args.data.dataset,
        args.data.val_split,
        args.optim.seed,
        args.optim.batch_size,
        args.optim.sgd(),
        args.hyper(),
        args.split,
        args.split_ratio,
        args.encoder
    );
    let cfg = run_config(
        args.out.clone(),
        args.epochs,
        args.optim.lr,
        args.schedule.for_epochs(args.epochs, args.milestones.as_deref()),
        args.optim.resume,
        interrupt,
        identity,
    );
    train::run(trainee.as_mut(), data.loaders(), &cfg)
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use clap::parser::ValueSource;
    use clap::{FromArgMatches, Parser};

    use super::*;
    use crate::checkpoint::Checkpoint;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: DistillArgs,
    }

    /// `iekd distill ARGS` parsed, with the preset applied as the binary does.
    fn parse(args: &[&str]) -> Result<DistillArgs> {
        let matches = <Wrap as clap::CommandFactory>::command()
            .try_get_matches_from(std::iter::once("distill").chain(args.iter().copied()))
            .unwrap();
        let mut parsed = Wrap::from_arg_matches(&matches).unwrap().args;
        parsed.apply_preset(&|id| matches.value_source(id) == Some(ValueSource::CommandLine))?;
        Ok(parsed)
    }

    #[test]
    fn presets_fill_what_the_command_line_leaves_unset() {
        let a = parse(&["--preset", "kd-cifar10-r56-r20"]).unwrap();
        assert_eq!(
            (a.method, a.data.dataset, a.alpha, a.temperature),
            (Method::Kd, DatasetKind::Cifar10, 0.95, 20.0)
        );
        assert_eq!(
            (a.teacher_arch.unwrap().to_string(), a.student_arch.to_string()),
            ("resnet56b".into(), "resnet20b".into())
        );
        assert_eq!((a.epochs, a.milestones.as_deref()), (160, Some([80.0, 120.0].as_slice())));
        let b = parse(&["--preset", "kd-cifar10-r56-r20", "--temperature", "3", "--epochs", "10"]).unwrap();
        assert_eq!((b.alpha, b.temperature, b.epochs), (0.9, 3.0, 10), "explicit flags win");
        let d = parse(&["--preset", "dml-cifar10-r56-r32", "--batch-size", "32"]).unwrap();
        assert_eq!((d.method, d.optim.batch_size, d.epochs), (Method::Dml, 32, 200));
        assert_eq!(d.milestones.as_deref(), Some([60.0, 120.0, 180.0].as_slice()));
        let ie = parse(&["--preset", "ie-ft-cifar10-r56-r20", "--lambda-exp", "0"]).unwrap();
        assert_eq!((ie.hyper().lambda_inh, ie.hyper().lambda_exp), (1.0, 0.0));
        let plain = parse(&["--method", "ft"]).unwrap();
        assert_eq!((plain.hyper().beta, plain.milestones, plain.split_ratio), (500.0, None, 0.5));
        assert!(parse(&["--preset", "kd"]).unwrap_err().to_string().contains("known: kd-cifar10-r56-r20"));
    }

    /// A model file of `arch` for grey 10-class images, drawn from `seed`.
    fn model_file(dir: &std::path::Path, name: &str, arch: &str, seed: u64) -> PathBuf {
        let mut net =
            arch.parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", net.as_mut()).unwrap();
        let path = dir.join(name);
        ckpt.save(&path).unwrap();
        path
    }

    #[test]
    fn a_seed_gives_every_arm_the_same_student_initialisation() {
        let dir = std::env::temp_dir().join(format!("iekd-paired-{}", std::process::id()));
        let teacher = model_file(&dir, "teacher.safetensors", "resnet8", 9);
        let mut ae =
            FactorAutoEncoder::new(EncoderKind::Coder, 64, 16, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", &mut ae).unwrap();
        let ae_file = dir.join("ae.safetensors");
        ckpt.save(&ae_file).unwrap();
        let (t, a) = (teacher.to_str().unwrap(), ae_file.to_str().unwrap());
        let student = |method: &str, seed: &str, extra: &[&str]| {
            let mut args = vec!["--method", method, "--student-arch", "resnet8", "--seed", seed];
            args.extend_from_slice(extra);
            if method != "none" {
                args.extend_from_slice(&["--teacher", t, "--teacher-arch", "resnet8", "--autoencoder", a]);
            }
            let mut trainee = distill_trainee(&parse(&args).unwrap(), 1, 10).unwrap();
            trainee.model().unwrap().tensors
        };
        let none = student("none", "4", &[]);
        for (method, extra) in
            [("kd", &[][..]), ("ft", &[]), ("ie-ft", &[]), ("ie-ft", &["--lambda-exp", "0"])]
        {
            assert_eq!(student(method, "4", extra), none, "{method} {extra:?}");
        }
        assert_ne!(student("none", "5", &[]), none);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
