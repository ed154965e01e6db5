//! Benchmarks shared by `cargo bench` and `iekd bench`: the machine's FMA ceiling, each ResNet-20
//! convolution in GFLOP/s, and whole training steps in images/s (ResNet-20, ResNet-56, and the KD
//! and IE-FT steps of a ResNet-56 teacher and a ResNet-20 student, as
//! `../shared/bench/torch_reference.py` measures PyTorch), with each step's peak resident memory.
//! Wall-clock medians. The same on a GPU is in `gpu` ([`run_gpu_report`]).

mod gpu;

pub use gpu::run_gpu_report;

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::distill::{Method, resnet56_to_resnet20};
use crate::error::Result;
use crate::nn::{Module, Network, ResNet, Shortcut};
use crate::ops::conv2d::{ConvGeometry, cpu};
use crate::ops::loss::cross_entropy;
use crate::optim::{Sgd, SgdConfig};
use crate::tensor::Tensor;
use crate::tensor::autograd;
use crate::train::Trainee;

/// One measured figure: name, value, unit (printed as `BENCH <name> <value> <unit>`).
pub type Figure = (String, f64, &'static str);

/// Runs the CPU benchmarks at batch `batch`, printing the conv table and the training steps as it
/// goes and the `BENCH` lines at the end; returns the figures.
pub fn run_cpu_report(batch: usize) -> Result<Vec<Figure>> {
    let peak = fma_peak_gflops();
    println!("{} threads, fp32 FMA peak {peak:.0} GFLOP/s, batch {batch}", rayon::current_num_threads());
    println!("{:<22} {:>9} {:>9} {:>9} {:>8}", "conv GFLOP/s", "fwd", "bwd-data", "bwd-wgt", "% peak");
    let mut figures: Vec<Figure> = vec![("fma_peak".into(), peak, "GFLOP/s")];
    for shape in resnet20_conv_shapes(batch)? {
        let [f, d, w] = conv_gflops(&shape.geometry, 5)?;
        let mean = 3.0 / (1.0 / f + 1.0 / d + 1.0 / w);
        println!("{:<22} {f:>9.1} {d:>9.1} {w:>9.1} {:>7.0}%", shape.name, 100.0 * mean / peak);
        let key = shape.name.split_whitespace().next().unwrap_or(shape.name);
        figures.push((format!("conv_{key}_fwd"), f, "GFLOP/s"));
        figures.push((format!("conv_{key}_bwd_data"), d, "GFLOP/s"));
        figures.push((format!("conv_{key}_bwd_weight"), w, "GFLOP/s"));
    }
    // Smallest working set first: the allocator keeps freed pages, so a step's peak resident
    // memory is never below an earlier step's (see `step_peak_rss_mib`).
    let resnet = |depth: usize, figures: &mut Vec<Figure>| -> Result<()> {
        let (ips, rss) = resnet_train_images_per_sec(depth, batch, 5)?;
        println!("resnet{depth} train step (fwd, CE, bwd, SGD): {ips:.1} images/s{}", rss_note(rss));
        figures.push((format!("resnet{depth}_train_step"), ips, "img/s"));
        figures.extend(rss.map(|m| (format!("cpu_resnet{depth}_step_peak_rss"), m, "MiB")));
        Ok(())
    };
    resnet(20, &mut figures)?;
    for (name, method) in [("kd", Method::Kd), ("ieft", Method::IeFt)] {
        let (ips, rss) = distill_step_images_per_sec(method, batch, 5)?;
        println!(
            "{method} step (ResNet-56 teacher -> ResNet-20 student): {ips:.1} images/s{}",
            rss_note(rss)
        );
        figures.push((format!("cpu_{name}_step"), ips, "img/s"));
        figures.extend(rss.map(|m| (format!("cpu_{name}_step_peak_rss"), m, "MiB")));
    }
    resnet(56, &mut figures)?;
    for (name, value, unit) in &figures {
        println!("BENCH {name} {value:.1} {unit}");
    }
    Ok(figures)
}

/// The figures as a JSON object `{name: {"value": v, "unit": u}}`.
pub fn figures_json(figures: &[Figure]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = figures
        .iter()
        .map(|(name, value, unit)| (name.clone(), serde_json::json!({ "value": value, "unit": unit })))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The median wall time of `runs` calls of `f`, after one warm-up call.
pub fn median_seconds(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One convolution shape of ResNet-20: name, input `[N, H, W, C]`, weight, stride.
pub struct ConvShape {
    /// A short label.
    pub name: &'static str,
    /// The geometry at the benchmark's batch size.
    pub geometry: ConvGeometry,
}

/// The six distinct 3x3 convolutions of ResNet-20 at batch `n`.
pub fn resnet20_conv_shapes(n: usize) -> Result<Vec<ConvShape>> {
    let shapes = [
        ("c1  3->16 32x32 s1", [n, 32, 32, 3], [16, 3, 3, 3], 1),
        ("c2 16->16 32x32 s1", [n, 32, 32, 16], [16, 16, 3, 3], 1),
        ("c3 16->32 32->16 s2", [n, 32, 32, 16], [32, 16, 3, 3], 2),
        ("c4 32->32 16x16 s1", [n, 16, 16, 32], [32, 32, 3, 3], 1),
        ("c5 32->64 16->8 s2", [n, 16, 16, 32], [64, 32, 3, 3], 2),
        ("c6 64->64 8x8 s1", [n, 8, 8, 64], [64, 64, 3, 3], 1),
    ];
    shapes
        .into_iter()
        .map(|(name, x, w, s)| Ok(ConvShape { name, geometry: ConvGeometry::new("bench", &x, &w, s, 1)? }))
        .collect()
}

/// GFLOP/s of one shape's forward, backward-data and backward-weight on the CPU.
pub fn conv_gflops(g: &ConvGeometry, runs: usize) -> Result<[f64; 3]> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = Tensor::randn(&[g.n, g.h, g.w, g.c_in], 1.0, &mut rng).to_vec()?;
    let w = Tensor::randn(&[g.c_out, g.c_in, g.kh, g.kw], 0.1, &mut rng).to_vec()?;
    let dy = Tensor::randn(&[g.n, g.h_out, g.w_out, g.c_out], 1.0, &mut rng).to_vec()?;
    let flop = 2.0 * g.macs() as f64 * 1e-9;
    let fwd = median_seconds(runs, || {
        std::hint::black_box(cpu::forward(g, &x, &w, None));
        Ok(())
    })?;
    let data = median_seconds(runs, || {
        std::hint::black_box(cpu::backward_data(g, &dy, &w));
        Ok(())
    })?;
    let weight = median_seconds(runs, || {
        std::hint::black_box(cpu::backward_weight(g, &x, &dy));
        Ok(())
    })?;
    Ok([flop / fwd, flop / data, flop / weight])
}

const SGD: SgdConfig = SgdConfig { lr: 0.01, momentum: 0.9, weight_decay: 5e-4, nesterov: true };

/// A random batch of `n` 32x32x3 images and their labels.
fn random_batch(n: usize, rng: &mut ChaCha8Rng) -> (Tensor, Vec<usize>) {
    let x = Tensor::randn(&[n, 32, 32, 3], 1.0, rng);
    (x, (0..n).map(|_| rng.random_range(0..10)).collect())
}

/// Images per second of ResNet-`depth` (option A) training steps on random 32x32x3 data at batch
/// `n` (forward, cross-entropy, backward and a Nesterov SGD update), and the peak resident memory
/// of one step in MiB where the system reports it.
pub fn resnet_train_images_per_sec(depth: usize, n: usize, runs: usize) -> Result<(f64, Option<f64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut net = ResNet::new(depth, 3, 10, Shortcut::A, &mut rng)?;
    let mut sgd = Sgd::new(SGD)?;
    let (x, labels) = random_batch(n, &mut rng);
    let mut step = || {
        let out = net.forward(&x, true)?;
        let grads = autograd::backward(&cross_entropy(&out.logits, &labels)?)?;
        drop(out);
        sgd.step(&mut net.params_mut(), &grads)
    };
    let seconds = median_seconds(runs, &mut step)?;
    Ok((n as f64 / seconds, step_peak_rss_mib(step)?))
}

/// Images per second of distillation steps at batch `n` (a ResNet-56 teacher's forward, the
/// ResNet-20 student's training step with `method`'s losses and encoders), and one step's peak
/// resident memory in MiB where the system reports it.
pub fn distill_step_images_per_sec(method: Method, n: usize, runs: usize) -> Result<(f64, Option<f64>)> {
    let mut t = resnet56_to_resnet20(method, SGD, 4)?;
    let (x, labels) = random_batch(n, &mut ChaCha8Rng::seed_from_u64(3));
    let mut step = || t.train_step(&x, &labels, SGD.lr).map(drop);
    let seconds = median_seconds(runs, &mut step)?;
    Ok((n as f64 / seconds, step_peak_rss_mib(step)?))
}

/// The process's peak resident memory, in MiB, during one call of `step`: the high-water mark
/// is reset first (Linux's `/proc/self/clear_refs`); `None` where that is not available. Pages
/// the allocator kept from earlier work stay resident, so the figure is the larger of this
/// step's peak and what the process already held.
fn step_peak_rss_mib(mut step: impl FnMut() -> Result<()>) -> Result<Option<f64>> {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    step()?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    Ok(hwm.filter(|_| reset).map(|kb| kb / 1024.0))
}

/// ", peak RSS N MiB" for a step's line, when measured.
fn rss_note(rss: Option<f64>) -> String {
    rss.map(|m| format!(", peak RSS {m:.0} MiB")).unwrap_or_default()
}

/// The fp32 fused-multiply-add ceiling of the rayon pool, in GFLOP/s (0 where no FMA unit is known).
pub fn fma_peak_gflops() -> f64 {
    const ITERS: usize = 10_000_000;
    let start = Instant::now();
    let flops: f64 = rayon::broadcast(|_| fma_loop(ITERS)).iter().sum();
    flops / start.elapsed().as_secs_f64() * 1e-9
}

/// Runs `iters` rounds of 12 independent vector FMAs; returns the flops done.
#[cfg(target_arch = "x86_64")]
fn fma_loop(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    /// The 12 accumulators after `iters` rounds of `v = v * 0.9999 + 1e-7`, with the vector
    /// intrinsics `set1` and `fmadd` (expanded inside each `#[target_feature]` function).
    macro_rules! fma_rounds {
        ($set1:ident, $fmadd:ident, $iters:expr) => {{
            let (a, b) = ($set1(0.999_9), $set1(1e-7));
            let mut acc = [$set1(1.0); 12];
            for _ in 0..$iters {
                for v in &mut acc {
                    *v = $fmadd(*v, a, b);
                }
            }
            acc
        }};
    }
    /// # Safety: needs AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(iters: usize) -> f32 {
        fma_rounds!(_mm512_set1_ps, _mm512_fmadd_ps, iters).iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }
    /// # Safety: needs AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(iters: usize) -> f32 {
        let acc = fma_rounds!(_mm256_set1_ps, _mm256_fmadd_ps, iters);
        let mut lanes = [0.0f32; 8];
        acc.iter()
            .map(|&v| {
                // SAFETY: `lanes` holds the 8 floats stored.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
                lanes.iter().sum::<f32>()
            })
            .sum()
    }
    let (sink, lanes) = if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        (unsafe { avx512(iters) }, 16)
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        (unsafe { avx2(iters) }, 8)
    } else {
        return 0.0;
    };
    std::hint::black_box(sink);
    (iters * 12 * lanes * 2) as f64
}

/// No FMA ceiling is measured on other architectures.
#[cfg(not(target_arch = "x86_64"))]
fn fma_loop(_iters: usize) -> f64 {
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distillation_steps_are_timed_with_their_peak_memory() {
        for method in [Method::Kd, Method::IeFt] {
            let (ips, rss) = distill_step_images_per_sec(method, 2, 1).unwrap();
            assert!(ips.is_finite() && ips > 0.0, "{method}: {ips}");
            if cfg!(target_os = "linux") {
                // The teacher alone holds ~3.4 MB of weights; a step cannot fit in less.
                let rss = rss.expect("Linux reports VmHWM");
                assert!(rss > 3.0 && rss < 24_000.0, "{method}: {rss} MiB");
            }
        }
    }
}
