//! `iekd demo`: the whole IE-KD pipeline on Fashion-MNIST in about a quarter of an hour on two
//! CPU cores — teacher, auto-encoder, then students trained alone, with KD, FT and IE-FT — with a
//! table, `results.json` and `curves.svg` (test accuracy per epoch of every run) in the output
//! folder. Each stage keeps its own folder there (`teacher/`, `autoencoder/`, `none/`, `kd/`,
//! `ft/`, `ie-ft/`), so an interrupted demo continues where it stopped when run again. (In the
//! auto-encoder's lines the loss is the reconstruction loss and the accuracy the frozen teacher's.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::Method;
use super::analysis::{active_fraction, collect_features, feature_cka};
use super::autoencoder::{AutoEncoderTrainee, Recon};
use super::cli::{DataArgs, RunData};
use super::encoder::{EncoderKind, FactorAutoEncoder};
use super::plot::{Curve, write_curves};
use super::student::{DistillConfig, Distiller};
use super::teacher::FrozenTeacher;
use crate::checkpoint::write_atomic;
use crate::data::{DatasetKind, Loader, LoaderConfig, Split};
use crate::error::Result;
use crate::nn::Arch;
use crate::ops::precision::{self, Precision};
use crate::optim::SgdConfig;
use crate::tensor::Tensor;
use crate::tensor::device::Device;
use crate::train::{self, EpochMetrics, Loaders, RunConfig, Schedule, Summary, Supervised, Trainee};

/// `iekd demo`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct DemoArgs {
    /// Output folder: one sub-folder per run, results.json, curves.svg.
    #[cfg_attr(feature = "cli", arg(long, default_value = "runs/demo"))]
    pub out: PathBuf,
    /// A tiny schedule that finishes in seconds (a smoke test, not a result).
    #[cfg_attr(feature = "cli", arg(long))]
    pub quick: bool,
    /// Seed of every initialisation, shuffle and augmentation.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Device: auto (a GPU when usable, else the CPU), cpu or cuda.
    #[cfg_attr(feature = "cli", arg(long, default_value = "auto"))]
    pub device: String,
    /// Folder holding Fashion-MNIST (default: /usr/share/datasets/fashion-mnist, else data/fashion-mnist).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// Operands of the convolutions and the linear layer: fp32, or rounded to tf32 or bf16.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "fp32"))]
    pub precision: Precision,
}

/// The sizes of a demo.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Plan {
    /// The teacher's architecture.
    pub teacher: &'static str,
    /// The students' architecture.
    pub student: &'static str,
    /// Training images (the first N of the training set).
    pub train_images: usize,
    /// Test images (the first N of the test set).
    pub test_images: usize,
    /// Test images used for CKA and active neurons.
    pub analysis_images: usize,
    /// Teacher epochs.
    pub teacher_epochs: usize,
    /// Auto-encoder epochs.
    pub autoencoder_epochs: usize,
    /// Epochs of each student.
    pub student_epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
}

impl Plan {
    /// The full demo: about 13 minutes on two otherwise idle cores (ResNet-20 trains at about
    /// 400 images/s there, a ResNet-8 student with a ResNet-20 teacher at 150 to 500).
    pub const FULL: Plan = Plan {
        teacher: "resnet20",
        student: "resnet8",
        train_images: 12_000,
        test_images: 2_000,
        analysis_images: 500,
        teacher_epochs: 8,
        autoencoder_epochs: 2,
        student_epochs: 8,
        batch_size: 128,
    };

    /// The smoke test: seconds.
    pub const QUICK: Plan = Plan {
        teacher: "resnet8",
        student: "resnet8",
        train_images: 256,
        test_images: 200,
        analysis_images: 200,
        teacher_epochs: 1,
        autoencoder_epochs: 1,
        student_epochs: 2,
        batch_size: 64,
    };
}

/// The student recipes the demo compares, in order.
pub const METHODS: [Method; 4] = [Method::None, Method::Kd, Method::Ft, Method::IeFt];

/// One line of the demo's table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Architecture.
    pub model: String,
    /// `teacher`, or the student's recipe.
    pub method: String,
    /// Best test accuracy over the epochs, percent.
    pub best_acc: f64,
    /// Last epoch's test accuracy, percent.
    pub last_acc: f64,
    /// Linear CKA of the distillation feature to the teacher's.
    pub cka_to_teacher: f64,
    /// Share of active neurons of the distillation feature (see [`super::analysis`]).
    pub active_neurons: f64,
    /// Training and evaluation time of the run, seconds.
    pub seconds: f64,
    /// Every epoch's metrics.
    pub metrics: Vec<EpochMetrics>,
}

/// What the demo writes to `results.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The sizes used.
    pub plan: Plan,
    /// The seed.
    pub seed: u64,
    /// Teacher first, then the students.
    pub rows: Vec<Row>,
    /// Wall time of the whole command, seconds.
    pub total_seconds: f64,
}

struct Context<'a> {
    plan: Plan,
    out: &'a Path,
    seed: u64,
    train: Loader,
    test: Loader,
    interrupt: Option<Arc<AtomicBool>>,
    device: Device,
}

impl Context<'_> {
    /// Runs `trainee` as stage `name` with a schedule and announces it.
    fn run(
        &self,
        name: &str,
        trainee: &mut dyn Trainee,
        epochs: usize,
        schedule: Schedule,
    ) -> Result<Summary> {
        eprintln!("== {name}: {epochs} epoch(s) on {} images", self.train.dataset().len());
        let cfg = RunConfig {
            epochs,
            lr: 0.1,
            schedule,
            out: self.out.join(name),
            resume: true,
            progress: true,
            interrupt: self.interrupt.clone(),
            identity: format!("demo {name} {:?} seed {}", self.plan, self.seed),
        };
        trainee.to_device(&self.device)?;
        let loaders = Loaders { train: &self.train, val: None, test: &self.test };
        let summary = train::run(trainee, loaders, &cfg)?;
        let last = summary.history.last().map_or(f64::NAN, |m| m.test_loss);
        eprintln!(
            "   {name}: test loss {last:.4}, best accuracy {:.2}%, last {:.2}%",
            summary.best_acc, summary.last_acc
        );
        Ok(summary)
    }

    fn classes(&self) -> (usize, usize) {
        (self.train.dataset().channels(), self.train.dataset().num_classes())
    }
}

/// The SGD settings of every demo run (the paper's).
const SGD: SgdConfig = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true };

/// Runs the demo; see the module documentation.
pub fn run_demo(args: &DemoArgs, interrupt: Option<Arc<AtomicBool>>) -> Result<Report> {
    let start = Instant::now();
    let _precision = precision::set(args.precision);
    let plan = if args.quick { Plan::QUICK } else { Plan::FULL };
    let data = DataArgs {
        dataset: DatasetKind::FashionMnist,
        data_dir: args.data_dir.clone(),
        train_subset: Some(plan.train_images),
        test_subset: Some(plan.test_images),
        val_split: None,
    };
    let RunData { train, test, .. } = data.loaders(plan.batch_size, args.seed)?;
    let device = Device::parse(&args.device)?;
    let ctx = Context { plan, out: &args.out, seed: args.seed, train, test, interrupt, device };
    let (channels, classes) = ctx.classes();
    let (teacher_arch, student_arch): (Arch, Arch) = (plan.teacher.parse()?, plan.student.parse()?);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);

    let mut teacher = Supervised::new(teacher_arch.build(channels, classes, &mut rng)?, SGD)?;
    let teacher_run = ctx.run("teacher", &mut teacher, plan.teacher_epochs, Schedule::Cosine)?;
    let teacher_file = args.out.join("teacher").join("model.safetensors");

    let ae = FactorAutoEncoder::new(EncoderKind::Coder, teacher_arch.feature_channels(), 32, &mut rng)?;
    let frozen = FrozenTeacher::load(teacher_arch, &teacher_file, None, channels, classes)?;
    let mut ae_trainee = AutoEncoderTrainee::new(frozen, ae, Recon::L1, SGD)?;
    ctx.run("autoencoder", &mut ae_trainee, plan.autoencoder_epochs, Schedule::Constant)?;
    let ae_file = args.out.join("autoencoder").join("model.safetensors");

    let analysis = Loader::new(
        data.load(Split::Test).map(|mut s| {
            s.truncate(plan.analysis_images);
            s
        })?,
        LoaderConfig::eval(DatasetKind::FashionMnist, 250),
    )?;
    let teacher_feature = collect_features(teacher.net.as_mut(), &analysis)?;
    let mut rows = vec![row(plan.teacher, "teacher", &teacher_run, &teacher_feature, &teacher_feature)?];
    for method in METHODS {
        let student = student_arch.build(
            channels,
            classes,
            &mut ChaCha8Rng::seed_from_u64(args.seed.wrapping_add(1)),
        )?;
        let ae = method.needs_autoencoder().then_some(ae_file.as_path());
        let frozen = FrozenTeacher::load(teacher_arch, &teacher_file, ae, channels, classes)?;
        let mut distiller =
            Distiller::new(student, Some(frozen), DistillConfig::new(method, SGD, args.seed))?;
        let summary = ctx.run(method.name(), &mut distiller, plan.student_epochs, Schedule::Cosine)?;
        let feature = collect_features(distiller.student.as_mut(), &analysis)?;
        rows.push(row(plan.student, method.name(), &summary, &feature, &teacher_feature)?);
    }
    let report = Report { plan, seed: args.seed, rows, total_seconds: start.elapsed().as_secs_f64() };
    write_outputs(&args.out, &report)?;
    Ok(report)
}

fn row(model: &str, method: &str, run: &Summary, feature: &Tensor, teacher: &Tensor) -> Result<Row> {
    Ok(Row {
        model: model.into(),
        method: method.into(),
        best_acc: run.best_acc,
        last_acc: run.last_acc,
        cka_to_teacher: feature_cka(feature, teacher)?,
        active_neurons: active_fraction(feature)?,
        seconds: run.history.iter().map(|m| m.seconds).sum(),
        metrics: run.history.clone(),
    })
}

/// Writes `results.json`, `results.md` (the table) and `curves.svg` into `out`.
fn write_outputs(out: &Path, report: &Report) -> Result<()> {
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    write_atomic(&out.join("results.json"), json.as_bytes())?;
    write_atomic(&out.join("results.md"), table(report).as_bytes())?;
    let curves: Vec<Curve> = report
        .rows
        .iter()
        .map(|r| Curve {
            label: format!("{} {}", r.model, r.method),
            points: r.metrics.iter().map(|m| (m.epoch as f64, m.test_acc)).collect(),
        })
        .collect();
    let title = format!("Fashion-MNIST ({} training images): test accuracy", report.plan.train_images);
    write_curves(&out.join("curves.svg"), &title, &curves)
}

/// The results as a Markdown table.
pub fn table(report: &Report) -> String {
    let mut s = String::from(
        "| model | method | best acc (%) | last acc (%) | CKA to teacher | active neurons | time (s) |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in &report.rows {
        s += &format!(
            "| {} | {} | {:.2} | {:.2} | {:.3} | {:.1}% | {:.0} |\n",
            r.model,
            r.method,
            r.best_acc,
            r.last_acc,
            r.cka_to_teacher,
            100.0 * r.active_neurons,
            r.seconds
        );
    }
    s
}
