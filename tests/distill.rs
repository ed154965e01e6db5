//! Distillation end to end: every recipe's loss and gradient against the same terms computed by
//! hand, the channel split through checkpoints, the frozen teacher, DML's update order, training on
//! real Fashion-MNIST, and `iekd demo --quick`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use iekd::Tensor;
use iekd::autograd::{self, Gradients};
use iekd::checkpoint::Checkpoint;
use iekd::data::{self, DEBIAN_FASHION_MNIST_DIR, DatasetKind, Loader, LoaderConfig, Split};
use iekd::distill::{
    AutoEncoderTrainee, ChannelSplit, DistillConfig, Distiller, EncoderKind, Exploration, FactorAutoEncoder,
    FrozenTeacher, Hyper, Method, Recon, SplitKind, collect_features, feature_cka,
};
use iekd::nn::{Arch, Module, Network};
use iekd::ops::loss::{
    FactorNorm, at_loss, cross_entropy, exploration_loss, factor_dot_loss, inheritance_loss, kd_loss,
};
use iekd::ops::{add, scale};
use iekd::optim::SgdConfig;
use iekd::train::Trainee;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SGD: SgdConfig = SgdConfig { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: true };

fn net(seed: u64) -> Box<dyn Network> {
    "resnet8".parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
}

/// Three random 16x16 grey images (features 4x4x64) and their labels.
fn batch() -> (Tensor, Vec<usize>) {
    (Tensor::randn(&[3, 16, 16, 1], 1.0, &mut ChaCha8Rng::seed_from_u64(11)), vec![2, 7, 2])
}

fn teacher(with_ae: bool) -> FrozenTeacher {
    let ae = with_ae.then(|| {
        FactorAutoEncoder::new(EncoderKind::Coder, 64, 8, &mut ChaCha8Rng::seed_from_u64(5)).unwrap()
    });
    FrozenTeacher::new(net(4), ae)
}

fn config(method: Method, hyper: Hyper) -> DistillConfig {
    DistillConfig {
        encoder: EncoderKind::Coder,
        split: SplitKind::Random,
        hyper,
        ..DistillConfig::new(method, SGD, 3)
    }
}

fn distiller(method: Method, hyper: Hyper) -> Distiller {
    Distiller::new(net(1), Some(teacher(true)), config(method, hyper)).unwrap()
}

/// Weights that make every term visible (the defaults would hide small ones).
fn hyper(method: Method) -> Hyper {
    Hyper {
        lambda_inh: 3.0,
        lambda_exp: 5.0,
        beta: 7.0,
        alpha: 0.6,
        temperature: 2.5,
        ..Hyper::defaults(method)
    }
}

/// The recipe's terms `(name, weight, value)` built by hand from a fresh forward pass.
fn hand_terms(d: &mut Distiller, x: &Tensor, y: &[usize]) -> Vec<(&'static str, f32, Tensor)> {
    let out = d.student.forward(x, true).unwrap();
    let teacher = d.teacher.as_mut().map(|t| t.forward(x).unwrap());
    let t = || teacher.as_ref().unwrap();
    let h = d.config.hyper;
    let ce = cross_entropy(&out.logits, y).unwrap();
    let sum = |v: Vec<Tensor>| v.into_iter().reduce(|a, b| add(&a, &b).unwrap()).unwrap();
    match d.config.method {
        Method::Kd => vec![
            ("ce", 1.0 - h.alpha, ce),
            ("kd", h.alpha, kd_loss(&out.logits, &t().logits, h.temperature).unwrap()),
        ],
        Method::Ft => {
            let s = d.encoders[0].forward(&out.groups[2], true).unwrap();
            vec![
                ("ce", 1.0, ce),
                (
                    "l_inh",
                    h.beta,
                    inheritance_loss(&s, t().factor.as_ref().unwrap(), FactorNorm::L1).unwrap(),
                ),
            ]
        }
        Method::IeFt => {
            let (a, b) = d.splits[0].halves(&out.groups[2]).unwrap();
            let (a, b) = (d.encoders[0].forward(&a, true).unwrap(), d.encoders[1].forward(&b, true).unwrap());
            let f = t().factor.as_ref().unwrap();
            let exp = match h.exploration {
                Exploration::L1 => exploration_loss(&b, f, h.factor_norm).unwrap(),
                Exploration::Dot => factor_dot_loss(&b, f).unwrap(),
            };
            vec![
                ("ce", 1.0, ce),
                ("l_inh", h.lambda_inh, inheritance_loss(&a, f, h.factor_norm).unwrap()),
                ("l_exp", h.lambda_exp, exp),
            ]
        }
        Method::At => {
            let at = (0..3).map(|g| at_loss(&out.groups[g], &t().groups[g]).unwrap()).collect();
            vec![("ce", 1.0, ce), ("at", h.beta, sum(at))]
        }
        Method::IeAt => {
            let halves: Vec<_> = (0..3).map(|g| d.splits[g].halves(&out.groups[g]).unwrap()).collect();
            let inh = (0..3).map(|g| at_loss(&halves[g].0, &t().groups[g]).unwrap()).collect();
            let exp = (0..3).map(|g| at_loss(&halves[g].1, &t().groups[g]).unwrap()).collect();
            vec![
                ("ce", 1.0, ce),
                ("l_inh", h.lambda_inh, sum(inh)),
                ("l_exp", h.lambda_exp, scale(&sum(exp), -1.0).unwrap()),
            ]
        }
        _ => vec![("ce", 1.0, ce)],
    }
}

/// Every trained tensor of `d` (student, then encoders); clones share the tensors' identities.
fn trained(d: &mut Distiller) -> Vec<Tensor> {
    let mut params: Vec<Tensor> = d.student.params_mut().into_iter().map(|t| t.clone()).collect();
    for e in &mut d.encoders {
        params.extend(e.params_mut().into_iter().map(|t| t.clone()));
    }
    params
}

fn grad(grads: &Gradients, t: &Tensor) -> Vec<f32> {
    grads.get(t).map_or_else(|| vec![0.0; t.numel()], |g| g.to_vec().unwrap())
}

/// ||a - b|| / max(||a||, ||b||, tiny).
fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    d / n(a).max(n(b)).max(1e-30)
}

fn check_recipe(method: Method, hyper: Hyper) {
    let (x, y) = batch();
    let mut d = distiller(method, hyper);
    let params = trained(&mut d);
    let losses = d.losses(&x, &y).unwrap();
    let total = losses.total.item().unwrap() as f64;
    let g_total = autograd::backward(&losses.total).unwrap();

    let terms = hand_terms(&mut d, &x, &y);
    autograd::clear_tape();
    let expected: f64 = terms.iter().map(|(_, w, v)| *w as f64 * v.item().unwrap() as f64).sum();
    assert!(
        (total - expected).abs() <= 1e-5 * expected.abs().max(1.0),
        "{method}: total {total} vs {expected}"
    );
    let names: Vec<_> = terms.iter().map(|(n, _, v)| (*n, v.item().unwrap() as f64)).collect();
    assert_eq!(losses.terms.len(), names.len(), "{method}");
    for ((n1, v1), (n2, v2)) in losses.terms.iter().zip(&names) {
        let v1 = v1.item().unwrap() as f64;
        assert_eq!(n1, n2, "{method}");
        assert!((v1 - v2).abs() <= 1e-6 * v2.abs().max(1e-3), "{method} {n1}: {v1} vs {v2}");
    }

    // The gradient of the total is the weighted sum of the terms' gradients, each term back-propagated alone.
    let mut summed: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.numel()]).collect();
    for k in 0..terms.len() {
        let (_, w, v) = hand_terms(&mut d, &x, &y).swap_remove(k);
        let g = autograd::backward(&v).unwrap();
        for (acc, p) in summed.iter_mut().zip(&params) {
            acc.iter_mut().zip(grad(&g, p)).for_each(|(a, g)| *a += w * g);
        }
    }
    for (p, want) in params.iter().zip(&summed) {
        let got = grad(&g_total, p);
        assert!(
            rel(&got, want) < 1e-4,
            "{method}: gradient of a {:?} tensor off by {}",
            p.shape(),
            rel(&got, want)
        );
    }
}

#[test]
fn every_recipe_is_the_weighted_sum_of_its_terms_in_value_and_gradient() {
    for method in [Method::IeFt, Method::Ft, Method::Kd, Method::At, Method::IeAt, Method::None] {
        check_recipe(method, hyper(method));
    }
    let dot = Hyper { exploration: Exploration::Dot, factor_norm: FactorNorm::L2, ..hyper(Method::IeFt) };
    check_recipe(Method::IeFt, dot);
}

/// `sign/(B*D) * sum |phi(a) - phi(b)|` in f64, straight from the definition.
fn factor_distance(a: &Tensor, b: &Tensor) -> f64 {
    let (n, (va, vb)) = (a.shape()[0], (a.to_vec().unwrap(), b.to_vec().unwrap()));
    let d = va.len() / n;
    let mut sum = 0.0;
    for (ra, rb) in va.chunks(d).zip(vb.chunks(d)) {
        let norm = |r: &[f32]| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let (na, nb) = (norm(ra), norm(rb));
        sum += ra.iter().zip(rb).map(|(p, q)| (*p as f64 / na - *q as f64 / nb).abs()).sum::<f64>();
    }
    sum / (n * d) as f64
}

#[test]
fn ie_ft_terms_match_the_formulas() {
    let (x, y) = batch();
    let mut d = distiller(Method::IeFt, hyper(Method::IeFt));
    let losses = d.losses(&x, &y).unwrap();
    autograd::clear_tape();
    let _guard = autograd::no_grad();
    let out = d.student.forward(&x, true).unwrap();
    let (a, b) = d.splits[0].halves(&out.groups[2]).unwrap();
    assert_eq!((a.shape(), b.shape()), (&[3, 4, 4, 32][..], &[3, 4, 4, 32][..]));
    let (a, b) = (d.encoders[0].forward(&a, true).unwrap(), d.encoders[1].forward(&b, true).unwrap());
    let factor = d.teacher.as_mut().unwrap().forward(&x).unwrap().factor.unwrap();
    assert_eq!(factor.shape(), &[3, 4, 4, 8]);
    let ce = cross_entropy(&out.logits, &y).unwrap().item().unwrap() as f64;
    let (inh, exp) = (factor_distance(&a, &factor), -factor_distance(&b, &factor));
    assert!(exp < 0.0 && exp.abs() <= 2.0 / (4.0 * 4.0 * 8.0f64).sqrt());
    let want = ce + 3.0 * inh + 5.0 * exp;
    let got = losses.total.item().unwrap() as f64;
    assert!((got - want).abs() < 1e-5 * want.abs(), "{got} vs {want}");
}

#[test]
fn the_split_round_trips_through_checkpoints() {
    let dir = temp_out("split");
    for kind in [SplitKind::Natural, SplitKind::Random] {
        let cfg =
            |seed| DistillConfig { split: kind, seed, ..config(Method::IeFt, Hyper::defaults(Method::IeFt)) };
        let mut a = Distiller::new(net(1), Some(teacher(true)), cfg(7)).unwrap();
        assert_eq!(a.splits[0].is_natural(), kind == SplitKind::Natural);
        let mut state = Checkpoint::new();
        a.save_state(&mut state).unwrap();
        state.save(&dir.join("state.safetensors")).unwrap();
        a.model().unwrap().save(&dir.join("model.safetensors")).unwrap();

        let mut b = Distiller::new(net(2), Some(teacher(true)), cfg(8)).unwrap();
        assert_eq!(b.splits[0] == a.splits[0], kind == SplitKind::Natural);
        b.load_state(&Checkpoint::load(&dir.join("state.safetensors")).unwrap()).unwrap();
        assert_eq!(b.splits, a.splits);
        let model = Checkpoint::load(&dir.join("model.safetensors")).unwrap();
        assert_eq!(ChannelSplit::load(&model, &[64]).unwrap(), a.splits);
        assert_eq!(model.metadata["method"], "ie-ft");
        assert!(
            model.tensors.keys().all(|k| !k.starts_with("encoder")),
            "the model file holds the student alone"
        );
    }
    let at =
        Distiller::new(net(1), Some(teacher(false)), config(Method::IeAt, Hyper::defaults(Method::IeAt)))
            .unwrap();
    assert_eq!(at.splits.iter().map(ChannelSplit::channels).collect::<Vec<_>>(), [16, 32, 64]);
}

fn bits(m: &mut dyn Module) -> Vec<(String, Vec<u32>)> {
    let mut ckpt = Checkpoint::new();
    ckpt.add_module("", m).unwrap();
    ckpt.tensors.into_iter().map(|(k, (_, v))| (k, v.iter().map(|x| x.to_bits()).collect())).collect()
}

#[test]
fn the_frozen_teacher_and_its_encoder_never_change() {
    let (x, y) = batch();
    for method in [Method::IeFt, Method::Ft, Method::Kd, Method::IeAt] {
        let mut d = distiller(method, hyper(method));
        let t = d.teacher.as_mut().unwrap();
        let (net_before, ae_before) = (bits(t.net.as_mut()), t.autoencoder.as_mut().map(|ae| bits(ae)));
        let student_before = bits(d.student.as_mut());
        for _ in 0..2 {
            d.train_step(&x, &y, 0.1).unwrap();
        }
        let t = d.teacher.as_mut().unwrap();
        assert!(bits(t.net.as_mut()) == net_before, "{method}: the teacher changed");
        assert!(
            t.autoencoder.as_mut().map(|ae| bits(ae)) == ae_before,
            "{method}: the teacher's encoder changed"
        );
        assert!(bits(d.student.as_mut()) != student_before, "{method}: the student did not learn");
    }
    // Stage 1 too: only the auto-encoder moves.
    let ae =
        FactorAutoEncoder::new(EncoderKind::Paraphraser, 64, 8, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let mut t = AutoEncoderTrainee::new(teacher(false), ae, Recon::L2, SGD).unwrap();
    let (net_before, ae_before) = (bits(t.teacher.net.as_mut()), bits(&mut t.autoencoder));
    let stats = t.train_step(&x, &y, 0.1).unwrap();
    assert!(stats.terms["recon"] > 0.0);
    assert!(bits(t.teacher.net.as_mut()) == net_before);
    assert!(bits(&mut t.autoencoder) != ae_before);
}

/// The first `n` Fashion-MNIST test or training images, or `None` (with a visible message) when the
/// data is not installed; under CI its absence is a failure.
fn fashion(split: Split, n: usize, batch: usize) -> Option<Loader> {
    if !common::fashion_installed() {
        return None;
    }
    let dir = Path::new(DEBIAN_FASHION_MNIST_DIR);
    let mut set = data::load(DatasetKind::FashionMnist, dir, split).unwrap();
    set.truncate(n);
    Some(Loader::new(set, LoaderConfig::eval(DatasetKind::FashionMnist, batch)).unwrap())
}

#[test]
fn ie_ft_lowers_the_training_loss_on_fashion_mnist() {
    let Some(loader) = fashion(Split::Train, 64, 64) else { return };
    let b = loader.epoch(0).next().unwrap();
    let (x, y) = (Tensor::from_vec(b.images, &[b.n, b.h, b.w, b.c]).unwrap(), b.labels);
    let mut d =
        Distiller::new(net(1), Some(teacher(true)), config(Method::IeFt, Hyper::defaults(Method::IeFt)))
            .unwrap();
    let first = d.train_step(&x, &y, 0.05).unwrap();
    let mut last = first.clone();
    for _ in 0..7 {
        last = d.train_step(&x, &y, 0.05).unwrap();
    }
    assert!(last.loss < 0.8 * first.loss, "{} -> {}", first.loss, last.loss);
    assert!(last.terms["l_inh"] < first.terms["l_inh"], "{:?} -> {:?}", first.terms, last.terms);
}

#[test]
fn cka_of_a_feature_with_itself_is_one() {
    let Some(loader) = fashion(Split::Test, 40, 20) else { return };
    let f = collect_features(net(1).as_mut(), &loader).unwrap();
    assert_eq!(f.shape(), &[40, 8, 8, 64]);
    assert!((feature_cka(&f, &f).unwrap() - 1.0).abs() < 1e-9);
    let g = collect_features(net(2).as_mut(), &loader).unwrap();
    let c = feature_cka(&f, &g).unwrap();
    assert!(c > 0.0 && c < 1.0, "{c}");
}

fn temp_out(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iekd-distill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn demo_quick_writes_the_table_results_and_figure() {
    if fashion(Split::Test, 1, 1).is_none() {
        return;
    }
    let out = temp_out("demo");
    let run = Command::new(env!("CARGO_BIN_EXE_iekd"))
        .args(["demo", "--quick", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("| model | method | best acc (%)"), "{stdout}");
    for method in ["teacher", "none", "kd", "ft", "ie-ft"] {
        assert!(stdout.contains(&format!("| {method} |")), "{method} missing: {stdout}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = results["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!((rows[0]["cka_to_teacher"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!(rows.iter().all(|r| !r["metrics"].as_array().unwrap().is_empty()));
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("ie-ft"));
    assert!(out.join("ie-ft").join("metrics.jsonl").exists());
}

#[test]
fn command_line_errors_are_one_line() {
    let bin = env!("CARGO_BIN_EXE_iekd");
    for (args, needle) in [
        (vec!["distill", "--method", "ie-ft", "--epochs", "1"], "needs --teacher"),
        (vec!["distill", "--method", "dml", "--teacher", "x.safetensors", "--epochs", "1"], "from scratch"),
        (
            vec!["demo", "--quick", "--data-dir", "/nonexistent", "--out", "/tmp/iekd-never"],
            "apt-get install dataset-fashion-mnist",
        ),
        (
            vec![
                "cka",
                "--a",
                "/nonexistent",
                "--a-arch",
                "resnet8",
                "--b",
                "/nonexistent",
                "--b-arch",
                "resnet8",
            ],
            "/nonexistent",
        ),
    ] {
        let (err, lines) = common::failed_run_errors(bin, &args, |l| l.starts_with("=="));
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{args:?}: {err}");
    }
}

/// One training step of `method` for a student of `arch` against the ResNet-8 teacher (4x4
/// features on the 16x16 images): every term finite, the student's weights moved.
fn one_step_with_student(arch: &str, method: Method) {
    let student = arch.parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let mut d = Distiller::new(student, Some(teacher(true)), config(method, hyper(method))).unwrap();
    let (x, y) = batch();
    let losses = d.losses(&x, &y).unwrap();
    assert!(!losses.terms.is_empty(), "{arch} {method}");
    for (name, value) in &losses.terms {
        assert!(value.item().unwrap().is_finite(), "{arch} {method}: {name}");
    }
    autograd::clear_tape();
    let mut before = Vec::new();
    d.student.visit("", &mut |_, t, _| before.push(t.to_vec().unwrap()));
    let stats = d.train_step(&x, &y, 0.05).unwrap();
    assert!(stats.loss.is_finite(), "{arch} {method}");
    let mut moved = false;
    let mut i = 0;
    d.student.visit("", &mut |_, t, _| {
        moved |= t.to_vec().unwrap() != before[i];
        i += 1;
    });
    assert!(moved, "{arch} {method}: no weight changed");
}

#[test]
fn vgg13_and_mobilenetv2_students_take_a_step_of_every_kind_of_recipe() {
    // VGG-13's 2x2 feature and MobileNetV2's group maps are average-pooled to match, or the
    // teacher's maps pooled down to theirs.
    one_step_with_student("vgg13", Method::Kd);
    one_step_with_student("vgg13", Method::IeFt);
    one_step_with_student("mobilenetv2", Method::IeAt);
    one_step_with_student("mobilenetv2", Method::Ft);
}
