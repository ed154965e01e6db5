//! Files written by PyTorch (tests/data/torch/, made by scripts/make_torch_fixtures.py): a
//! ResNet-8 state dict from `safetensors.torch.save_file` (0-dim int64 counters) gives PyTorch's
//! logits; the `.pth` files (zip format in bf16 under a wrapping dict with DataParallel prefixes,
//! and the legacy format) convert with scripts/pth_to_safetensors.py to the same tensors; and an
//! IE-FT run takes such a file as its teacher.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use iekd::Tensor;
use iekd::checkpoint::Checkpoint;
use iekd::nn::{Arch, Network};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch").join(name)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iekd-torch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn loaded(path: &Path) -> Box<dyn Network> {
    let mut net = "resnet8".parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    Checkpoint::load(path).unwrap().load_module("", net.as_mut()).unwrap();
    net
}

fn state(net: &mut dyn Network) -> Vec<(String, Vec<f32>)> {
    let mut c = Checkpoint::new();
    c.add_module("", net).unwrap();
    c.tensors.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

#[test]
fn a_pytorch_state_dict_gives_pytorchs_logits() {
    let mut net = loaded(&fixture("resnet8.safetensors"));
    // The fixture's images, pixel (i, j) of image n = sin(0.3 i + 0.2 j + n), channels last.
    let pixels: Vec<f32> = (0..2)
        .flat_map(|n| {
            (0..32 * 32).map(move |p| (0.3 * (p / 32) as f32 + 0.2 * (p % 32) as f32 + n as f32).sin())
        })
        .collect();
    let x = Tensor::from_vec(pixels, &[2, 32, 32, 1]).unwrap();
    let logits = net.forward(&x, false).unwrap().logits.to_vec().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("resnet8-logits.json")).unwrap()).unwrap();
    let expected: Vec<f32> = json["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
        .collect();
    assert_eq!(logits.len(), expected.len());
    for (a, b) in logits.iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "{a} vs PyTorch {b}: {logits:?} {expected:?}");
    }
    let counter = state(net.as_mut()).into_iter().find(|(k, _)| k == "bn1.num_batches_tracked").unwrap();
    assert_eq!(counter.1, [123.0]);
}

/// Whether python3 can run the converter; its absence is a visible skip, and a failure under CI.
fn python() -> bool {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI needs python3 for scripts/pth_to_safetensors.py");
        common::skipped("pth_files_convert_to_the_same_tensors", "python3 not found");
    }
    ok
}

fn convert(pth: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pth_to_safetensors.py"))
        .arg(pth)
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn pth_files_convert_to_the_same_tensors() {
    if !python() {
        return;
    }
    let dir = temp_dir("convert");
    let reference = state(loaded(&fixture("resnet8.safetensors")).as_mut());
    for name in ["resnet8-bf16.pth", "resnet8-legacy.pth"] {
        let out = dir.join(format!("{name}.safetensors"));
        let run = convert(&fixture(name), &out, &[]);
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(state(loaded(&out).as_mut()), reference, "{name}");
    }
    // iekd itself names the converter when given a pickle.
    let err = Checkpoint::load(&fixture("resnet8-bf16.pth")).unwrap_err().to_string();
    assert!(err.contains("pth_to_safetensors.py"), "{err}");
    // Renaming keys, and a file that is not PyTorch's, fail in one line.
    let renamed = dir.join("renamed.safetensors");
    assert!(convert(&fixture("resnet8-legacy.pth"), &renamed, &["--rename", "layer=stage"]).status.success());
    let err =
        Checkpoint::load(&renamed).unwrap().load_module("", loaded(&fixture("resnet8.safetensors")).as_mut());
    assert!(err.unwrap_err().to_string().contains("is missing"));
    let bad = convert(&fixture("resnet8-logits.json"), &dir.join("x.safetensors"), &[]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.lines().count() == 1 && err.contains("not a readable PyTorch file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn iekd(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_iekd")).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn ie_ft_distils_from_a_pytorch_teacher() {
    let dir = temp_dir("ieft");
    common::write_mnist(&dir.join("mnist"));
    let data = dir.join("mnist");
    let teacher = fixture("resnet8.safetensors");
    let (ae, student) = (dir.join("ae"), dir.join("student"));
    let common =
        ["--dataset", "mnist", "--data-dir", data.to_str().unwrap(), "--epochs", "1", "--batch-size", "5"];
    let mut args = vec!["autoencoder", "--teacher", teacher.to_str().unwrap(), "--teacher-arch", "resnet8"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--factor-channels", "8", "--device", "cpu", "--out", ae.to_str().unwrap()]);
    let out = iekd(&args);
    assert!(out.contains("auto-encoder of resnet8"), "{out}");
    let ae_file = ae.join("model.safetensors");
    let mut args = vec!["distill", "--method", "ie-ft", "--teacher", teacher.to_str().unwrap()];
    args.extend_from_slice(&["--teacher-arch", "resnet8", "--autoencoder", ae_file.to_str().unwrap()]);
    args.extend_from_slice(&[
        "--student-arch",
        "resnet8",
        "--device",
        "cpu",
        "--out",
        student.to_str().unwrap(),
    ]);
    args.extend_from_slice(&common);
    let out = iekd(&args);
    assert!(out.contains("ie-ft resnet8 on mnist"), "{out}");
    let metrics = std::fs::read_to_string(student.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"l_inh\"") && metrics.contains("\"l_exp\""), "{metrics}");
    std::fs::remove_dir_all(&dir).unwrap();
}
