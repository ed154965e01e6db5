//! Training end to end on a slice of the real Fashion-MNIST: the loss falls, an interrupted run
//! resumes to the same bits as an uninterrupted one, checkpoints carry PyTorch names, and the
//! command line reports errors in one line.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use iekd::checkpoint::Checkpoint;
use iekd::data::{self, DEBIAN_FASHION_MNIST_DIR, DatasetKind, Loader, LoaderConfig, Split};
use iekd::nn::Arch;
use iekd::optim::SgdConfig;
use iekd::train::{self, Loaders, RunConfig, Schedule, Summary, Supervised, Trainee};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The first `train` and `test` images of Fashion-MNIST, or `None` (with a visible message) when
/// the data is not installed; under CI its absence is a failure.
fn fashion(train: usize, test: usize) -> Option<(Loader, Loader)> {
    if !common::fashion_installed() {
        return None;
    }
    let dir = Path::new(DEBIAN_FASHION_MNIST_DIR);
    let kind = DatasetKind::FashionMnist;
    let mut a = data::load(kind, dir, Split::Train).unwrap();
    let mut b = data::load(kind, dir, Split::Test).unwrap();
    a.truncate(train);
    b.truncate(test);
    Some((
        Loader::new(a, LoaderConfig::train(kind, 64, 5)).unwrap(),
        Loader::new(b, LoaderConfig::eval(kind, 250)).unwrap(),
    ))
}

fn trainee() -> Supervised {
    let net = "resnet8".parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
    Supervised::new(net, SgdConfig { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: true }).unwrap()
}

fn config(out: &Path, epochs: usize, resume: bool, interrupt: Option<Arc<AtomicBool>>) -> RunConfig {
    RunConfig {
        epochs,
        lr: 0.05,
        schedule: Schedule::default_multistep(epochs),
        out: out.to_path_buf(),
        resume,
        progress: false,
        interrupt,
        identity: "resnet8 fashion-mnist test".into(),
    }
}

fn temp_out(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iekd-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn run(
    out: &Path,
    epochs: usize,
    resume: bool,
    interrupt: Option<Arc<AtomicBool>>,
    data: &(Loader, Loader),
) -> (iekd::Result<Summary>, Supervised) {
    let mut t = trainee();
    let loaders = Loaders { train: &data.0, val: None, test: &data.1 };
    let summary = train::run(&mut t, loaders, &config(out, epochs, resume, interrupt));
    (summary, t)
}

#[test]
fn training_lowers_the_loss_and_writes_metrics_and_checkpoints() {
    let Some(data) = fashion(1024, 500) else { return };
    let out = temp_out("lowers");
    let (summary, _) = run(&out, 3, false, None, &data);
    let h = summary.unwrap().history;
    assert_eq!(h.len(), 3);
    assert!(h[2].train_loss < h[0].train_loss, "{h:?}");
    assert!(h[2].test_acc > 40.0, "{h:?}");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
    assert!(lines.contains("\"images_per_sec\""));
    let model = Checkpoint::load(&out.join("model.safetensors")).unwrap();
    for name in ["conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "fc.weight", "fc.bias"] {
        assert!(model.tensors.contains_key(name), "missing {name}");
    }
    assert!(model.tensors.keys().all(|k| !k.starts_with("momentum")), "model file holds only the network");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let Some(data) = fashion(640, 250) else { return };
    let straight = temp_out("straight");
    let (_, mut reference) = run(&straight, 3, false, None, &data);

    // Interrupt once the first epoch's checkpoint exists, wherever the run then is.
    let interrupted = temp_out("interrupted");
    let flag = Arc::new(AtomicBool::new(false));
    let (watch_dir, watch_flag) = (interrupted.clone(), Arc::clone(&flag));
    let watcher = std::thread::spawn(move || {
        while !watch_dir.join("checkpoint.safetensors").exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        watch_flag.store(true, Ordering::SeqCst);
    });
    let (first, _) = run(&interrupted, 3, false, Some(flag), &data);
    watcher.join().unwrap();
    if let Err(e) = &first {
        assert!(e.to_string().contains("--resume"), "{e}");
    }
    let (resumed, mut t) = run(&interrupted, 3, true, None, &data);
    assert_eq!(resumed.unwrap().history.len(), 3);
    let (a, b) = (reference.model().unwrap(), t.model().unwrap());
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (name, (_, va)) in &a.tensors {
        let vb = &b.tensors[name].1;
        assert!(va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} differs after resume");
    }
    let m1 = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    let m2 = std::fs::read_to_string(interrupted.join("metrics.jsonl")).unwrap();
    let strip = |s: &str| {
        s.lines().map(|l| l.split("\"seconds\"").next().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    assert_eq!(strip(&m1), strip(&m2));
}

#[test]
fn resuming_another_run_is_refused() {
    let Some(data) = fashion(128, 100) else { return };
    let out = temp_out("identity");
    run(&out, 1, false, None, &data).0.unwrap();
    let mut t = trainee();
    let mut cfg = config(&out, 2, true, None);
    cfg.identity = "something else".into();
    let loaders = Loaders { train: &data.0, val: None, test: &data.1 };
    let err = train::run(&mut t, loaders, &cfg).unwrap_err().to_string();
    assert!(err.contains("another run"), "{err}");
}

#[test]
fn command_line_errors_are_one_line_and_fail() {
    let bin = env!("CARGO_BIN_EXE_iekd");
    for args in [
        vec!["train", "--arch", "resnet21", "--epochs", "1"],
        vec!["eval", "--checkpoint", "/nonexistent.safetensors", "--arch", "resnet20"],
        vec!["train", "--dataset", "cifar10", "--data-dir", "/nonexistent", "--epochs", "1"],
    ] {
        // One error line (clap may add its usual "try '--help'" hint below a usage error).
        let (err, lines) = common::failed_run_errors(bin, &args, |l| l.contains("'--help'"));
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn trains_mobilenetv2_from_the_command_line_on_a_few_cifar_images() {
    let dir = temp_out("mobilenetv2");
    common::write_cifar10(&dir.join("cifar-10-batches-bin"));
    let out = dir.join("run");
    let args = [
        "train",
        "--arch",
        "mobilenetv2",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "5",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_iekd")).args(args).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1, "{metrics}");
    let ckpt = Checkpoint::load(&out.join("model.safetensors")).unwrap();
    assert!(
        ckpt.tensors.contains_key("blocks.3.3.conv.3.weight"),
        "depthwise filter saved under RepDistiller's name"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
