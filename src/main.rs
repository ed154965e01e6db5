//! `iekd`: train, evaluate, check and benchmark from the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use iekd::checkpoint::Checkpoint;
use iekd::data::{self, DatasetKind, Loader, LoaderConfig, Split};
use iekd::distill::analysis::{self, CkaArgs};
use iekd::distill::cli::{self as distill_cli, AutoencoderArgs, DataArgs, DistillArgs};
use iekd::distill::demo::{self, DemoArgs};
use iekd::nn::Arch;
use iekd::ops::precision::{self, Precision};
use iekd::optim::SgdConfig;
use iekd::train::{self, GraphMode, RunConfig, ScheduleKind, Supervised, Trainee};
use iekd::verify::gradcheck;
use iekd::verify::parity;
use iekd::{Device, Error, Result, bench};

#[derive(Parser)]
#[command(
    name = "iekd",
    version,
    about = "Inheritance and Exploration Knowledge Distillation: train, distil, check, benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network with cross-entropy and SGD.
    Train {
        /// Architecture: resnet20, resnet32, resnet56, resnet110 (any 6n+2; suffix b for option-B
        /// shortcuts, e.g. resnet56b), wrn-D-K (e.g. wrn-16-2), vgg13 or mobilenetv2.
        #[arg(long, default_value = "resnet20")]
        arch: Arch,
        #[command(flatten)]
        data: DataArgs,
        /// Epochs.
        #[arg(long, default_value_t = 160)]
        epochs: usize,
        /// Images per batch.
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        /// Base learning rate.
        #[arg(long, default_value_t = 0.1)]
        lr: f32,
        /// Learning-rate schedule, moved at every step: multistep (x0.1 at 50% and 75% of the
        /// run, or at --milestones), cosine, constant.
        #[arg(long, value_enum, default_value_t = ScheduleKind::Multistep)]
        schedule: ScheduleKind,
        /// Epochs at which the multi-step schedule drops x0.1, comma-separated (e.g. 80,120).
        #[arg(long, value_delimiter = ',')]
        milestones: Option<Vec<f64>>,
        /// SGD momentum.
        #[arg(long, default_value_t = 0.9)]
        momentum: f32,
        /// L2 weight decay, added to the gradient.
        #[arg(long, default_value_t = 5e-4)]
        weight_decay: f32,
        /// Use plain instead of Nesterov momentum.
        #[arg(long)]
        no_nesterov: bool,
        /// Seed of initialisation, shuffling and augmentation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Device: auto (a GPU when usable, else the CPU), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// On a GPU, replay each training step as one CUDA graph once steps repeat (on), or
        /// launch every kernel (off).
        #[arg(long, value_enum, default_value = "on")]
        graph: GraphMode,
        /// Operands of the convolutions and the linear layer: fp32, or rounded to tf32 or bf16
        /// with fp32 sums (weights, optimiser state and everything else stay fp32).
        #[arg(long, value_enum, default_value = "fp32")]
        precision: Precision,
        /// Output folder for metrics.jsonl and checkpoints.
        #[arg(long, default_value = "runs/train")]
        out: PathBuf,
        /// Continue an interrupted run from OUT/checkpoint.safetensors.
        #[arg(long)]
        resume: bool,
    },
    /// Evaluate a checkpoint on a test set.
    Eval {
        /// A model file written by `train` (model.safetensors or best.safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The checkpoint's architecture.
        #[arg(long)]
        arch: Arch,
        #[command(flatten)]
        data: DataArgs,
        /// Device: auto, cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Stage 1 of IE-KD: train the teacher's auto-encoder on its frozen distillation feature.
    Autoencoder(AutoencoderArgs),
    /// Stage 2: train a student from scratch with a distillation recipe (IE-FT by default).
    Distill(DistillArgs),
    /// Linear CKA between two networks' distillation features on the test set (first 1000 images
    /// unless --test-subset), and each network's share of active neurons (feature elements above zero).
    Cka(CkaArgs),
    /// Teacher, auto-encoder and students (none, KD, FT, IE-FT) on Fashion-MNIST in about 15
    /// minutes on two cores; prints a table, writes results.json and curves.svg.
    Demo(DemoArgs),
    /// Download data sets.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Check every op's forward against the f64 reference and its gradient against finite differences.
    Gradcheck {
        /// Only ops whose name contains this.
        #[arg(long)]
        op: Option<String>,
        /// Device whose ops are checked: auto, cpu or cuda (and cuda-emulated in builds with the
        /// cuda-emulation feature); on a device, every
        /// kernel, a whole training step and every recipe are also compared with the CPU.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Benchmark the convolutions and training steps; ends with `BENCH name value unit` lines.
    Bench {
        /// Device: auto, cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Operands of the convolutions and the linear layer in the steps: fp32, tf32 or bf16.
        #[arg(long, value_enum, default_value = "fp32")]
        precision: Precision,
    },
}

#[derive(Subcommand)]
enum DataAction {
    /// Download and verify a data set's official archives: cifar10, cifar100, mnist, fashion-mnist.
    Fetch {
        /// The data set.
        dataset: DatasetKind,
        /// Destination folder (default: data/<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// See [`iekd::alloc`]: reused activation buffers without page faults.
#[global_allocator]
static ALLOCATOR: iekd::alloc::MiMalloc = iekd::alloc::MiMalloc;

fn main() -> ExitCode {
    iekd::alloc::keep_freed_pages();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let distill = matches.subcommand_matches("distill");
    let given = |id: &str| distill.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine);
    match run(cli, &given) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The device named by `--device`, announced once; for `auto` on the CPU, with the reason.
fn device(name: &str) -> Result<Device> {
    let (device, no_gpu) = if name == "auto" { Device::auto() } else { (Device::parse(name)?, None) };
    match no_gpu {
        Some(why) => eprintln!("device: {device} (no GPU: {why})"),
        None => eprintln!("device: {device}"),
    }
    Ok(device)
}

/// Runs a parsed command; `given` says whether an argument of `iekd distill` was on the command
/// line (a preset fills only the others).
fn run(cli: Cli, given: &dyn Fn(&str) -> bool) -> Result<()> {
    match cli.command {
        Command::Train {
            arch,
            data,
            epochs,
            batch_size,
            lr,
            schedule,
            milestones,
            momentum,
            weight_decay,
            no_nesterov,
            seed,
            device: dev,
            graph,
            precision: prec,
            out,
            resume,
        } => {
            let device = device(&dev)?;
            let _precision = precision::set(prec);
            let loaders = data.loaders(batch_size, seed)?;
            let set = loaders.train.dataset();
            let net = arch.build(set.channels(), set.num_classes(), &mut ChaCha8Rng::seed_from_u64(seed))?;
            let sgd = SgdConfig { lr, momentum, weight_decay, nesterov: !no_nesterov };
            let mut trainee = Supervised::new(net, sgd)?;
            trainee.to_device(&device)?;
            trainee.use_graphs(graph.is_on());
            let cfg = RunConfig {
                epochs,
                lr,
                schedule: schedule.for_epochs(epochs, milestones.as_deref()),
                out: out.clone(),
                resume,
                progress: true,
                interrupt: Some(interrupt_flag()),
                identity: format!(
                    "train {arch} on {} val {:?} seed {seed} batch {batch_size} sgd {sgd:?} precision {prec}",
                    data.dataset, data.val_split
                ),
            };
            let summary = train::run(&mut trainee, loaders.loaders(), &cfg)?;
            println!(
                "{arch} on {}: best test accuracy {:.2}%, last {:.2}%{} ({})",
                data.dataset,
                summary.best_acc,
                summary.last_acc,
                val_note(&summary),
                out.display()
            );
            Ok(())
        }
        Command::Eval { checkpoint, arch, data, device: dev } => {
            let device = device(&dev)?;
            let test_set = data.load(Split::Test)?;
            let mut net =
                arch.build(test_set.channels(), test_set.num_classes(), &mut ChaCha8Rng::seed_from_u64(0))?;
            Checkpoint::load(&checkpoint)?.load_module("", net.as_mut())?;
            net.to_device(&device)?;
            let loader = Loader::new(test_set, LoaderConfig::eval(data.dataset, 500))?;
            let (loss, acc) = train::evaluate(net.as_mut(), &loader)?;
            println!(
                "{arch} {}: test loss {loss:.4}, top-1 accuracy {acc:.2}% on {} images",
                checkpoint.display(),
                loader.dataset().len()
            );
            Ok(())
        }
        Command::Autoencoder(args) => {
            device(&args.optim.device)?;
            let summary = distill_cli::run_autoencoder(&args, Some(interrupt_flag()))?;
            let last = summary.history.last().map_or(f64::NAN, |m| m.test_loss);
            println!(
                "auto-encoder of {}: test reconstruction loss {last:.5} ({})",
                args.teacher_arch,
                args.out.display()
            );
            Ok(())
        }
        Command::Distill(mut args) => {
            args.apply_preset(given)?;
            device(&args.optim.device)?;
            let summary = distill_cli::run_distill(&args, Some(interrupt_flag()))?;
            println!(
                "{} {} on {}: best test accuracy {:.2}%, last {:.2}%{} ({})",
                args.method,
                args.student_arch,
                args.data.dataset,
                summary.best_acc,
                summary.last_acc,
                val_note(&summary),
                args.out.display()
            );
            Ok(())
        }
        Command::Cka(args) => {
            let r = analysis::run_cka(&args)?;
            println!("linear CKA {:.4} on {} test images", r.cka, r.images);
            println!("active neurons: a {:.1}%, b {:.1}%", 100.0 * r.active_a, 100.0 * r.active_b);
            if let Some((inh, exp)) = r.halves {
                println!(
                    "linear CKA of a with b's inheritance channels {inh:.4}, exploration channels {exp:.4}"
                );
            }
            Ok(())
        }
        Command::Demo(args) => {
            let report = demo::run_demo(&args, Some(interrupt_flag()))?;
            print!("{}", demo::table(&report));
            println!(
                "total {:.0} s; results.json, results.md and curves.svg in {}",
                report.total_seconds,
                args.out.display()
            );
            Ok(())
        }
        Command::Data { action: DataAction::Fetch { dataset, dir } } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("data").join(dataset.name()));
            data::fetch::fetch(dataset, &dir, None)?;
            println!("{dataset} is in {}", dir.display());
            Ok(())
        }
        Command::Gradcheck { op, device: dev } => {
            let device = device(&dev)?;
            let reports = gradcheck::run_all(op.as_deref(), 20260101)?;
            print!("{}", gradcheck::format_table(&reports));
            let failed = reports.iter().filter(|r| !r.passed()).count();
            if failed > 0 {
                return Err(Error::invalid(
                    "gradcheck",
                    format!("{failed} of {} cases failed", reports.len()),
                ));
            }
            println!("{} cases passed", reports.len());
            if device.is_cpu() {
                return Ok(());
            }
            let report = parity::run_device(&device, 20260101)?;
            print!("{}", parity::table(&report.checks));
            let problems = report.problems();
            if !problems.is_empty() {
                return Err(Error::Device(format!("{device} differs from the CPU: {}", problems.join("; "))));
            }
            println!("{}: {} device checks within tolerance", device, report.checks.len());
            Ok(())
        }
        Command::Bench { device: dev, json, precision: prec } => {
            let device = device(&dev)?;
            let _precision = precision::set(prec);
            let figures = if device.is_cpu() {
                bench::run_cpu_report(128)?
            } else {
                bench::run_gpu_report(&device, 128)?
            };
            if let Some(path) = json {
                iekd::checkpoint::write_atomic(&path, bench::figures_json(&figures).as_bytes())?;
            }
            Ok(())
        }
    }
}

/// The last validation accuracy, when images were held out, for the closing line of a run.
fn val_note(summary: &train::Summary) -> String {
    summary.last_val_acc.map(|v| format!(", validation {v:.2}%")).unwrap_or_default()
}

/// A flag set by the first Ctrl-C (the run stops after saving); a second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    let installed = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch; the last finished epoch is saved (Ctrl-C again to quit now)");
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will stop without saving ({e})");
    }
    flag
}
