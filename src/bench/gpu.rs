//! Benchmarks on a GPU: the copy-bandwidth ceiling, each ResNet-20 convolution kernel in GFLOP/s,
//! the bandwidth-bound normalisation kernels in GB/s against that ceiling, and whole training
//! steps (ResNet-20, ResNet-56, and the IE-FT step: a ResNet-56 teacher with its encoder teaching
//! a ResNet-20 with two encoders) in images/s. Every time is a median over runs between
//! synchronisations, after a warm-up run that also loads the kernels.

use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Figure, resnet20_conv_shapes};
use crate::cuda::exec::Exec;
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::distill::{Method, resnet56_to_resnet20};
use crate::error::{Error, Result};
use crate::nn::{ResNet, Shortcut};
use crate::ops::batchnorm::launch::{self as norm, BnAffine, BnBackward, BnInput};
use crate::ops::conv2d::ConvGeometry;
use crate::ops::conv2d::launch as kernels;
use crate::ops::conv2d::launch::ConvProduct::{self, BackwardData, BackwardWeight, Forward};
use crate::ops::conv2d::tensor_core::conv2d_tc;
use crate::ops::precision::Precision;
use crate::optim::SgdConfig;
use crate::tensor::Tensor;
use crate::tensor::device::Device;
use crate::train::{Supervised, Trainee};

const SGD: SgdConfig = SgdConfig { lr: 0.01, momentum: 0.9, weight_decay: 5e-4, nesterov: true };
/// Timed runs of each kernel and of each training step.
const KERNEL_RUNS: usize = 20;
const STEP_RUNS: usize = 10;

/// The median wall time of `f` over `runs` runs on `gpu`, each between synchronisations, after
/// one untimed run.
fn median_on(gpu: &Gpu, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        gpu.synchronize()?;
        let start = Instant::now();
        f()?;
        gpu.synchronize()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn random(gpu: &Gpu, len: usize, rng: &mut ChaCha8Rng) -> Result<crate::cuda::gpu::GpuBuf<f32>> {
    gpu.upload(&Tensor::randn(&[len], 1.0, rng).to_vec()?)
}

/// The batch of the counted steps on the emulation: the counts do not depend on the batch size.
const EMULATED_BATCH: usize = 2;

/// Runs the GPU benchmarks at batch `batch` on `device`, printing the tables as it goes and the
/// `BENCH` lines at the end; an error on the CPU. On the emulation, which runs the kernels right
/// but far too slowly to time them, only the counts of each training step.
pub fn run_gpu_report(device: &Device, batch: usize) -> Result<Vec<Figure>> {
    let Device::Cuda(gpu) = device else {
        return Err(Error::Device("the GPU benchmarks need --device cuda".into()));
    };
    let mut figures: Vec<Figure> = Vec::new();
    if gpu.is_emulated() {
        println!(
            "{}: far too slow to time; counting each training step at batch {EMULATED_BATCH}",
            gpu.label()
        );
        step_counts(device, gpu, EMULATED_BATCH, &mut figures)?;
    } else {
        let copy = gpu.copy_gbps(1 << 30, 10)?;
        println!("{}: device-to-device copy {copy:.0} GB/s, batch {batch}", gpu.label());
        figures.push(("gpu_copy_bw".into(), copy, "GB/s"));
        conv_table(gpu, batch, &mut figures)?;
        norm_table(gpu, batch, copy, &mut figures)?;
        step_table(device, gpu, batch, &mut figures)?;
        step_counts(device, gpu, batch, &mut figures)?;
    }
    for (name, value, unit) in &figures {
        println!("BENCH {name} {value:.2} {unit}");
    }
    Ok(figures)
}

/// Each ResNet-20 convolution's three kernels, in GFLOP/s.
fn conv_table(gpu: &Arc<Gpu>, batch: usize, figures: &mut Vec<Figure>) -> Result<()> {
    type Launcher = fn(&Gpu, &ConvGeometry, ConvProduct, [&GpuBuf<f32>; 2]) -> Result<GpuBuf<f32>>;
    let versions: [(&str, Launcher); 3] = [
        ("fp32", |e, g, p, ab| kernels::conv2d(e, g, p, ab, None)),
        ("tf32", |e, g, p, ab| conv2d_tc(e, g, Precision::Tf32, p, ab, None)),
        ("bf16", |e, g, p, ab| conv2d_tc(e, g, Precision::Bf16, p, ab, None)),
    ];
    println!("{:<22} {:>5} {:>9} {:>9} {:>9}", "conv GFLOP/s", "", "fwd", "bwd-data", "bwd-wgt");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for shape in resnet20_conv_shapes(batch)? {
        let g = &shape.geometry;
        let x = random(gpu, g.n * g.in_image_len(), &mut rng)?;
        let w = random(gpu, g.c_out * g.k(), &mut rng)?;
        let dy = random(gpu, g.n * g.out_image_len(), &mut rng)?;
        let e = &**gpu;
        let flop = 2.0 * g.macs() as f64 * 1e-9;
        let key = shape.name.split_whitespace().next().unwrap_or(shape.name);
        for (version, launch) in versions {
            let rate = |p, ab| -> Result<f64> {
                Ok(flop / median_on(e, KERNEL_RUNS, || launch(e, g, p, ab).map(drop))?)
            };
            let f = rate(Forward, [&x, &w])?;
            let d = rate(BackwardData, [&dy, &w])?;
            let wg = rate(BackwardWeight, [&x, &dy])?;
            println!("{:<22} {version:>5} {f:>9.0} {d:>9.0} {wg:>9.0}", shape.name);
            let suffix = if version == "fp32" { String::new() } else { format!("_{version}") };
            figures.push((format!("gpu_conv_{key}_fwd{suffix}"), f, "GFLOP/s"));
            figures.push((format!("gpu_conv_{key}_bwd_data{suffix}"), d, "GFLOP/s"));
            figures.push((format!("gpu_conv_{key}_bwd_weight{suffix}"), wg, "GFLOP/s"));
        }
    }
    Ok(())
}

/// The fused batch norm + ReLU forward and backward on the first stage's activations, in GB/s
/// of the bytes they must move (forward: read x, write y; backward: read x, dy and y twice, write
/// dx) and as a share of the copy bandwidth.
fn norm_table(gpu: &Arc<Gpu>, batch: usize, copy: f64, figures: &mut Vec<Figure>) -> Result<()> {
    let (rows, c) = (batch * 32 * 32, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let e = &**gpu;
    let (x, dy) = (random(e, rows * c, &mut rng)?, random(e, rows * c, &mut rng)?);
    let ones = e.upload(&vec![1.0f32; c])?;
    let zeros = e.upload(&vec![0.0f32; c])?;
    let affine = BnAffine { gamma: &ones, beta: &zeros, eps: 1e-5, residual: None, relu: true };
    let n = BnInput { x: &x, affine };
    let y = norm::bn_forward(e, [rows, c], &n, [&zeros, &ones], None)?;
    let bytes = (rows * c * 4) as f64 * 1e-9;
    let fwd = 2.0 * bytes
        / median_on(e, KERNEL_RUNS, || norm::bn_forward(e, [rows, c], &n, [&zeros, &ones], None).map(drop))?;
    let b = BnBackward {
        x: &x,
        dy: &dy,
        relu_out: Some(&y),
        center: &zeros,
        var: &ones,
        gamma: &ones,
        eps: 1e-5,
        training: true,
        want_dz: false,
    };
    let bwd = 7.0 * bytes / median_on(e, KERNEL_RUNS, || norm::bn_backward(e, [rows, c], &b).map(drop))?;
    println!(
        "batch norm + ReLU [{rows}, {c}]: forward {fwd:.0} GB/s ({:.0}% of copy), backward {bwd:.0} GB/s ({:.0}%)",
        100.0 * fwd / copy,
        100.0 * bwd / copy
    );
    figures.push(("gpu_bn_relu_fwd".into(), fwd, "GB/s"));
    figures.push(("gpu_bn_relu_bwd".into(), bwd, "GB/s"));
    Ok(())
}

/// A random batch of 32x32x3 images and labels, on the host (as a loader gives them).
fn batch_of(n: usize, rng: &mut ChaCha8Rng) -> (Tensor, Vec<usize>) {
    let x = Tensor::randn(&[n, 32, 32, 3], 1.0, rng);
    (x, (0..n).map(|_| rng.random_range(0..10)).collect())
}

/// The benchmarked training steps: ResNet-20 and ResNet-56 (forward, cross-entropy, backward,
/// SGD) and IE-FT (a ResNet-56 teacher with its Coder(64, 32), a ResNet-20 student with two
/// Coder(32, 32) encoders, the default weights).
const STEPS: [&str; 3] = ["resnet20", "resnet56", "ieft"];

/// The trainee of step `name` of [`STEPS`], on `device`.
fn trainee(name: &str, device: &Device) -> Result<Box<dyn Trainee>> {
    let mut t: Box<dyn Trainee> = match name {
        "ieft" => Box::new(resnet56_to_resnet20(Method::IeFt, SGD, 5)?),
        _ => {
            let depth = if name == "resnet56" { 56 } else { 20 };
            let net = ResNet::new(depth, 3, 10, Shortcut::A, &mut ChaCha8Rng::seed_from_u64(3))?;
            Box::new(Supervised::new(Box::new(net), SGD)?)
        }
    };
    t.to_device(device)?;
    Ok(t)
}

/// Images per second of each training step, the batch copied each step: launched kernel by
/// kernel (`eager`) and replayed as one graph.
fn step_table(device: &Device, gpu: &Gpu, n: usize, figures: &mut Vec<Figure>) -> Result<()> {
    for name in STEPS {
        let (x, labels) = batch_of(n, &mut ChaCha8Rng::seed_from_u64(4));
        let mut rates = [0.0; 2];
        for (rate, graphs) in rates.iter_mut().zip([false, true]) {
            let mut t = trainee(name, device)?;
            t.use_graphs(graphs);
            // Warm-up steps: the graph is captured on the third.
            for _ in 0..2 {
                t.train_step(&x, &labels, SGD.lr)?;
            }
            *rate = n as f64 / median_on(gpu, STEP_RUNS, || t.train_step(&x, &labels, SGD.lr).map(drop))?;
        }
        let [eager, graph] = rates;
        println!(
            "{name} train step: {eager:.0} images/s eager, {graph:.0} as a graph ({:.2}x)",
            graph / eager
        );
        let key = if name == "ieft" { "gpu_ieft_step".into() } else { format!("gpu_{name}_train_step") };
        figures.push((format!("{key}_eager"), eager, "img/s"));
        figures.push((key, graph, "img/s"));
    }
    Ok(())
}

/// What one training step in steady state does on the device, replayed as a graph (after three
/// steps: two that differ, one captured): kernels run, launches issued by the host, copies each
/// way, host waits and allocations. Exact on the emulation too: the launchers are the same code.
fn step_counts(device: &Device, gpu: &Gpu, n: usize, figures: &mut Vec<Figure>) -> Result<()> {
    println!(
        "{:<10} {:>8} {:>14} {:>8} {:>10} {:>11} {:>7}",
        "per step", "kernels", "host launches", "uploads", "downloads", "host waits", "allocs"
    );
    for name in STEPS {
        let mut t = trainee(name, device)?;
        let (x, labels) = batch_of(n, &mut ChaCha8Rng::seed_from_u64(4));
        for _ in 0..3 {
            t.train_step(&x, &labels, SGD.lr)?;
        }
        let before = gpu.counts();
        t.train_step(&x, &labels, SGD.lr)?;
        let c = gpu.counts() - before;
        // A replayed step issues one graph launch; a step run eagerly, each kernel.
        let host_launches = if c.graph_launches > 0 { c.graph_launches } else { c.launches };
        println!(
            "{name:<10} {:>8} {:>14} {:>8} {:>10} {:>11} {:>7}",
            c.launches, host_launches, c.uploads, c.downloads, c.waits, c.allocs
        );
        for (what, v) in [
            ("launches", c.launches),
            ("host_launches", host_launches),
            ("host_waits", c.waits),
            ("allocs", c.allocs),
            ("copies", c.uploads + c.downloads),
        ] {
            figures.push((format!("gpu_{name}_step_{what}"), v as f64, "count"));
        }
    }
    Ok(())
}
