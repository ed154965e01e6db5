//! OD and IE-OD end to end: each recipe's loss against its terms computed by hand from the
//! pre-ReLU features, connectors and margins through checkpoints, and `iekd distill --method od`
//! and `--method ie-od` on a tiny MNIST folder.

mod common;

use std::process::Command;

use iekd::Tensor;
use iekd::autograd;
use iekd::checkpoint::Checkpoint;
use iekd::distill::{DistillConfig, Distiller, FrozenTeacher, Hyper, Method, SplitKind};
use iekd::nn::{Arch, Network};
use iekd::ops::loss::{cross_entropy, normalized_partial_l2_loss, partial_l2_loss};
use iekd::ops::{bn_margin, margin_relu};
use iekd::optim::SgdConfig;
use iekd::train::Trainee;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SGD: SgdConfig = SgdConfig { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: true };

fn net(arch: &str, seed: u64) -> Box<dyn Network> {
    arch.parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
}

fn distiller(method: Method, hyper: Hyper) -> Distiller {
    let config = DistillConfig { split: SplitKind::Random, hyper, ..DistillConfig::new(method, SGD, 3) };
    Distiller::new(net("resnet8", 1), Some(FrozenTeacher::new(net("resnet14", 4), None)), config).unwrap()
}

/// The terms and their weighted sum, the margins and targets rebuilt from the teacher's batch
/// norms, and the distances against their definitions.
#[test]
fn od_and_ie_od_terms_match_the_formulas() {
    let x = Tensor::randn(&[3, 16, 16, 1], 1.0, &mut ChaCha8Rng::seed_from_u64(11));
    let y = [2, 7, 2];
    for method in [Method::Od, Method::IeOd] {
        let hyper = Hyper { beta: 0.5, lambda_inh: 0.25, lambda_exp: 2.0, ..Hyper::defaults(method) };
        let mut d = distiller(method, hyper);
        let losses = d.losses(&x, &y).unwrap();
        autograd::clear_tape();
        let names: Vec<&str> = losses.terms.iter().map(|(n, _)| *n).collect();
        let want_names: &[&str] =
            if method == Method::Od { &["ce", "od"] } else { &["ce", "l_inh", "l_exp"] };
        assert_eq!(names, want_names);
        let value = |n: &str| losses.terms.iter().find(|(k, _)| *k == n).unwrap().1.item().unwrap() as f64;
        let _guard = autograd::no_grad();
        let teacher = d.teacher.as_mut().unwrap();
        let (_, t_pre) = teacher.net.forward_pre_relu(&x, false).unwrap();
        let bns = teacher.net.pre_relu_bns().unwrap();
        let targets: Vec<Tensor> = (0..3)
            .map(|i| margin_relu(&t_pre[i], &bn_margin(&bns[i].weight, &bns[i].bias).unwrap()).unwrap())
            .collect();
        assert!(targets[2].to_vec().unwrap().iter().all(|v| *v >= -0.8), "the margin of N(0, 1) is -0.798");
        let ce =
            cross_entropy(&d.student.forward(&x, true).unwrap().logits, &y).unwrap().item().unwrap() as f64;
        assert!((value("ce") - ce).abs() < 1e-5 * ce, "{method}: ce");
        if method == Method::Od {
            assert!(value("od") > 0.0);
            let total = ce + 0.5 * value("od");
            assert!((losses.total.item().unwrap() as f64 - total).abs() < 1e-5 * total);
        } else {
            // Each stage's normalized distance is in [0, 4]; the stage weights sum to 1.75.
            assert!(value("l_exp") < 0.0 && value("l_exp") >= -7.0, "{}", value("l_exp"));
            let total = ce + 0.25 * value("l_inh") + 2.0 * value("l_exp");
            assert!((losses.total.item().unwrap() as f64 - total).abs() < 1e-5 * total.abs());
        }
        // The distances of the definitions, on any student of the same shapes.
        let s = Tensor::randn(targets[0].shape(), 1.0, &mut ChaCha8Rng::seed_from_u64(2));
        let manual: f64 = s
            .to_vec()
            .unwrap()
            .iter()
            .zip(targets[0].to_vec().unwrap())
            .filter(|&(&s, t)| s > t || t > 0.0)
            .map(|(&s, t)| ((s - t) as f64).powi(2))
            .sum::<f64>()
            / 3.0;
        let got = partial_l2_loss(&s, &targets[0]).unwrap().item().unwrap() as f64;
        assert!((got - manual).abs() < 1e-5 * manual);
        assert!(normalized_partial_l2_loss(&s, &targets[0]).unwrap().item().unwrap() <= 4.0);
    }
}

#[test]
fn connectors_are_trained_and_saved_with_the_resume_state() {
    let x = Tensor::randn(&[2, 16, 16, 1], 1.0, &mut ChaCha8Rng::seed_from_u64(5));
    for (method, connectors) in [(Method::Od, 3), (Method::IeOd, 6)] {
        let mut d = distiller(method, Hyper::defaults(method));
        let mut before = Checkpoint::new();
        d.save_state(&mut before).unwrap();
        let names: Vec<&String> = before.tensors.keys().filter(|k| k.starts_with("connector")).collect();
        assert_eq!(
            names.iter().filter(|k| k.ends_with(".0.weight") && !k.contains("momentum")).count(),
            connectors
        );
        d.train_step(&x, &[1, 4], 0.1).unwrap();
        let mut after = Checkpoint::new();
        d.save_state(&mut after).unwrap();
        let key = "connector0.0.weight";
        assert_ne!(before.tensors[key].1, after.tensors[key].1, "{method}: the connector did not learn");
        let mut e = distiller(method, Hyper::defaults(method));
        e.load_state(&after).unwrap();
        let mut again = Checkpoint::new();
        e.save_state(&mut again).unwrap();
        assert_eq!(again.tensors, after.tensors, "{method}");
        assert!(d.model().unwrap().tensors.keys().all(|k| !k.starts_with("connector")));
    }
    let err = Distiller::new(net("resnet8", 1), None, DistillConfig::new(Method::Od, SGD, 0)).err().unwrap();
    assert!(err.to_string().contains("od needs a teacher"), "{err}");
}

#[test]
fn distill_od_and_ie_od_run_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("iekd-distill-od-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    common::write_mnist(&dir.join("mnist"));
    let teacher = dir.join("teacher.safetensors");
    let mut ckpt = Checkpoint::new();
    ckpt.add_module("", net("resnet8", 9).as_mut()).unwrap();
    ckpt.save(&teacher).unwrap();
    for (method, terms) in [("od", &["od"][..]), ("ie-od", &["l_inh", "l_exp"][..])] {
        let out = dir.join(method);
        let run = Command::new(env!("CARGO_BIN_EXE_iekd"))
            .args(["distill", "--method", method, "--teacher"])
            .arg(&teacher)
            .args([
                "--teacher-arch",
                "resnet8",
                "--student-arch",
                "resnet8",
                "--dataset",
                "mnist",
                "--data-dir",
            ])
            .arg(dir.join("mnist"))
            .args(["--epochs", "1", "--batch-size", "5", "--device", "cpu", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{method}: {}", String::from_utf8_lossy(&run.stderr));
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let row: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
        for term in terms {
            assert!(row.to_string().contains(&format!("\"{term}\"")), "{method}: no {term} in {row}");
        }
        for file in ["checkpoint.safetensors", "model.safetensors", "best.safetensors"] {
            assert!(out.join(file).exists(), "{method}: no {file}");
        }
    }
    // A missing teacher is a one-line error.
    let (err, lines) = common::failed_run_errors(
        env!("CARGO_BIN_EXE_iekd"),
        &["distill", "--method", "ie-od", "--epochs", "1"],
        |l| l.starts_with("=="),
    );
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("needs --teacher"), "{err}");
}

/// One OD or IE-OD step of a `student` against a `teacher` on 16x16 images, whose pre-ReLU stages
/// are `shapes` (teacher's, student's; `[H, W, C]`): every term finite, the student's weights moved.
fn one_step(teacher: &str, student: &str, method: Method, shapes: [[[usize; 3]; 3]; 2]) {
    let config = DistillConfig { split: SplitKind::Random, ..DistillConfig::new(method, SGD, 3) };
    let mut d =
        Distiller::new(net(student, 1), Some(FrozenTeacher::new(net(teacher, 4), None)), config).unwrap();
    let x = Tensor::randn(&[2, 16, 16, 1], 1.0, &mut ChaCha8Rng::seed_from_u64(5));
    {
        let _guard = autograd::no_grad();
        let (_, t_pre) = d.teacher.as_mut().unwrap().net.forward_pre_relu(&x, false).unwrap();
        let (_, s_pre) = d.student.forward_pre_relu(&x, false).unwrap();
        for (pre, want) in [(t_pre, shapes[0]), (s_pre, shapes[1])] {
            assert_eq!(pre.each_ref().map(|p| p.shape()[1..].to_vec()), want.map(|s| s.to_vec()));
        }
    }
    let losses = d.losses(&x, &[3, 8]).unwrap();
    for (name, value) in &losses.terms {
        assert!(
            value.item().unwrap().is_finite() && value.item().unwrap() != 0.0,
            "{student} {method}: {name}"
        );
    }
    autograd::clear_tape();
    let mut before = Vec::new();
    d.student.visit("", &mut |_, t, _| before.push(t.to_vec().unwrap()));
    assert!(d.train_step(&x, &[3, 8], 0.05).unwrap().loss.is_finite(), "{student} {method}");
    let mut moved = Vec::new();
    d.student.visit("", &mut |_, t, _| moved.push(t.to_vec().unwrap()));
    assert_ne!(before, moved, "{student} {method}: no weight changed");
}

#[test]
fn vgg13_and_mobilenetv2_take_od_and_ie_od_steps() {
    // The larger of each stage's connector output and target is average-pooled to the other's size.
    const RESNET: [[usize; 3]; 3] = [[16, 16, 16], [8, 8, 32], [4, 4, 64]];
    const VGG: [[usize; 3]; 3] = [[8, 8, 128], [4, 4, 256], [2, 2, 512]];
    const MOBILENET: [[usize; 3]; 3] = [[4, 4, 16], [2, 2, 48], [1, 1, 1280]];
    for method in [Method::Od, Method::IeOd] {
        one_step("resnet14", "vgg13", method, [RESNET, VGG]);
        one_step("resnet14", "mobilenetv2", method, [RESNET, MOBILENET]);
    }
    one_step("vgg13", "resnet8", Method::Od, [VGG, RESNET]);
    one_step("mobilenetv2", "vgg13", Method::IeOd, [MOBILENET, VGG]);
}
