//! The command line on small data sets the tests write (no installed data needed): held-out
//! validation images, the schedule of a one-epoch run, and CKA of a student's split halves.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use iekd::checkpoint::Checkpoint;
use iekd::data::{self, DatasetKind, Loader, LoaderConfig, Split};
use iekd::distill::{ChannelSplit, collect_features, feature_cka};
use iekd::nn::Arch;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iekd-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn iekd(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_iekd")).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn metrics(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn held_out_images_are_validated_every_epoch_and_short_runs_start_at_the_base_rate() {
    let dir = temp_dir("val");
    common::write_mnist(&dir.join("mnist"));
    let (data, out) = (dir.join("mnist"), dir.join("run"));
    // One epoch of ResNet-8 on the written images into `out`, with `extra` arguments.
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--arch", "resnet8", "--dataset", "mnist", "--data-dir"];
        args.extend_from_slice(&[data.to_str().unwrap(), "--epochs", "1", "--device", "cpu"]);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        iekd(&args)
    };
    let stdout = train(&out, &["--val-split", "2", "--batch-size", "2"]);
    assert!(stdout.contains(", validation "), "{stdout}");
    let m = metrics(&out);
    assert_eq!(m.len(), 1);
    // The default multi-step schedule of a one-epoch run starts at --lr (its drops fall inside
    // the epoch), and the two held-out images are evaluated.
    assert_eq!(m[0]["lr"].as_f64().unwrap() as f32, 0.1);
    let val = m[0]["val_acc"].as_f64().unwrap();
    assert!([0.0, 50.0, 100.0].contains(&val), "{val}");
    assert!(m[0]["val_loss"].as_f64().unwrap().is_finite());
    // Without --val-split there is no validation column, and too many held-out images is an error.
    let plain = dir.join("plain");
    train(&plain, &["--batch-size", "5"]);
    assert!(metrics(&plain)[0].get("val_acc").is_none());
    let bad = Command::new(env!("CARGO_BIN_EXE_iekd"))
        .args(["train", "--dataset", "mnist", "--data-dir", data.to_str().unwrap(), "--val-split", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("cannot hold out 5 of 5 images"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cka_halves_compare_the_teacher_with_each_part_of_the_saved_split() {
    let dir = temp_dir("halves");
    common::write_mnist(&dir.join("mnist"));
    let data_dir = dir.join("mnist");
    let arch: Arch = "resnet8".parse().unwrap();
    let mut teacher = arch.build(1, 10, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let mut student = arch.build(1, 10, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let split = ChannelSplit::random(64, 7).with_ratio(0.25).unwrap();
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let mut ckpt = Checkpoint::new();
    ckpt.add_module("", teacher.as_mut()).unwrap();
    ckpt.save(&a).unwrap();
    let mut ckpt = Checkpoint::new();
    ckpt.add_module("", student.as_mut()).unwrap();
    ChannelSplit::save(std::slice::from_ref(&split), &mut ckpt);
    ckpt.save(&b).unwrap();

    let stdout = iekd(&[
        "cka",
        "--a",
        a.to_str().unwrap(),
        "--a-arch",
        "resnet8",
        "--b",
        b.to_str().unwrap(),
        "--b-arch",
        "resnet8",
        "--dataset",
        "mnist",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--halves",
    ]);
    let number = |after: &str| -> f64 {
        let rest = &stdout[stdout.find(after).unwrap_or_else(|| panic!("{after}: {stdout}")) + after.len()..];
        rest.split_whitespace().next().unwrap().trim_end_matches(',').parse().unwrap()
    };
    let set = data::load(DatasetKind::Mnist, &data_dir, Split::Test).unwrap();
    let loader = Loader::new(set, LoaderConfig::eval(DatasetKind::Mnist, 250)).unwrap();
    let (fa, fb) = (
        collect_features(teacher.as_mut(), &loader).unwrap(),
        collect_features(student.as_mut(), &loader).unwrap(),
    );
    let (inh, exp) = split.halves(&fb).unwrap();
    assert_eq!((inh.shape()[3], exp.shape()[3]), (16, 48));
    for (label, expected) in [
        ("linear CKA ", feature_cka(&fa, &fb).unwrap()),
        ("inheritance channels ", feature_cka(&fa, &inh).unwrap()),
        ("exploration channels ", feature_cka(&fa, &exp).unwrap()),
    ] {
        assert!((number(label) - expected).abs() < 1e-4, "{label}: {stdout} vs {expected}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
