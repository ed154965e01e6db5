//! Parity of every kernel with the rayon CPU path, on any [`Exec`]: the CPU emulation in tests,
//! a real GPU in `scripts/gpu-check.sh`. Each check draws seeded random inputs at awkward sizes
//! (1, tile - 1, tile, tile + 1, odd channel counts), runs a launcher and compares each output
//! element with the CPU function it mirrors: `|got - want| <= atol + rtol * |want|`, tolerances
//! stated per kernel. Fresh outputs are poisoned where the backend can (NaN on the emulation), and
//! a NaN never passes, so an element a kernel fails to write shows up.

mod conv;
mod loss;
mod map;
mod norm;
pub mod recipe;
pub mod step;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::cuda::exec::{Exec, Recorder};
use crate::error::{Error, Result};
use crate::tensor::device::Device;

/// A tolerance: an element passes when `|got - want| <= atol + rtol * |want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    /// Absolute part.
    pub atol: f32,
    /// Relative part.
    pub rtol: f32,
}

/// The outcome of comparing one output of one kernel on one case.
#[derive(Clone, Debug)]
pub struct Check {
    /// The kernel (or kernel sequence) checked.
    pub kernel: &'static str,
    /// The sizes and options of the case.
    pub case: String,
    /// The largest `|got - want|`.
    pub max_abs: f32,
    /// The largest `|got - want| / (atol + rtol * |want|)`; infinite for a NaN or a length
    /// mismatch.
    pub worst: f64,
    /// The tolerance used.
    pub tol: Tol,
}

impl Check {
    /// Whether every element was within the tolerance.
    pub fn passed(&self) -> bool {
        self.worst <= 1.0
    }
}

/// Random inputs, uploads and comparisons for the suites.
struct Ctx<'e, E: Exec> {
    e: &'e E,
    rng: ChaCha8Rng,
    checks: Vec<Check>,
}

impl<E: Exec> Ctx<'_, E> {
    /// `n` independent N(0, 1) samples.
    fn normal(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| <StandardNormal as Distribution<f32>>::sample(&StandardNormal, &mut self.rng))
            .collect()
    }

    fn up(&self, v: &[f32]) -> Result<E::Buf<f32>> {
        self.e.upload(v)
    }

    /// Downloads `got` and records its comparison with `want`.
    fn compare(
        &mut self,
        kernel: &'static str,
        case: &str,
        got: &E::Buf<f32>,
        want: &[f32],
        tol: Tol,
    ) -> Result<()> {
        let got = self.e.download(got)?;
        self.compare_host(kernel, case, &got, want, tol);
        Ok(())
    }

    /// [`Ctx::compare`] for an optional output, which must be present.
    fn compare_opt(
        &mut self,
        kernel: &'static str,
        case: &str,
        got: Option<&E::Buf<f32>>,
        want: &[f32],
        tol: Tol,
    ) -> Result<()> {
        match got {
            Some(got) => self.compare(kernel, case, got, want, tol),
            None => {
                self.compare_host(kernel, &format!("{case} (output missing)"), &[], &[f32::NAN], tol);
                Ok(())
            }
        }
    }

    fn compare_host(&mut self, kernel: &'static str, case: &str, got: &[f32], want: &[f32], tol: Tol) {
        self.checks.push(compare(kernel, case.to_string(), got, want, tol));
    }
}

/// Compares `got` with `want` element by element under `tol`; a NaN or a length mismatch never
/// passes.
pub(crate) fn compare(kernel: &'static str, case: String, got: &[f32], want: &[f32], tol: Tol) -> Check {
    let (mut max_abs, mut worst) = (0.0f32, if got.len() == want.len() { 0.0f64 } else { f64::INFINITY });
    for (&g, &w) in got.iter().zip(want) {
        let err = (g - w).abs();
        let ratio = if err == 0.0 { 0.0 } else { err as f64 / (tol.atol + tol.rtol * w.abs()) as f64 };
        max_abs = max_abs.max(if err.is_nan() { f32::INFINITY } else { err });
        worst = if ratio.is_nan() { f64::INFINITY } else { worst.max(ratio) };
    }
    Check { kernel, case, max_abs, worst, tol }
}

/// The results of [`run_all`].
pub struct Report {
    /// Every comparison, suite by suite.
    pub checks: Vec<Check>,
    /// The kernels launched.
    pub launched: BTreeSet<&'static str>,
}

impl Report {
    /// Every problem, one line each: a comparison outside its tolerance, or a kernel of
    /// `kernels/` that no check launched. Empty when the run is complete and within tolerance.
    pub fn problems(&self) -> Vec<String> {
        let failed = self
            .checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| format!("{} [{}]: worst {}", c.kernel, c.case, c.worst));
        let missed = crate::cuda::sources::kernel_names()
            .filter(|k| !self.launched.contains(k))
            .map(|k| format!("{k}: launched by no check"));
        failed.chain(missed).collect()
    }
}

/// Runs every parity check on `e` with inputs drawn from `seed`.
pub fn run_all<E: Exec>(e: &E, seed: u64) -> Result<Report> {
    let recorder = Recorder::new(e);
    let mut cx = Ctx { e: &recorder, rng: ChaCha8Rng::seed_from_u64(seed), checks: Vec::new() };
    conv::run(&mut cx)?;
    norm::run(&mut cx)?;
    map::run(&mut cx)?;
    loss::run(&mut cx)?;
    Ok(Report { checks: cx.checks, launched: recorder.launched() })
}

/// Every check of a device against the CPU: each kernel ([`run_all`]), then a whole training
/// step ([`step::whole_step`]) and every recipe's steps ([`recipe::recipe_steps`]) through the
/// tensors and the tape; an error on the CPU.
pub fn run_device(device: &Device, seed: u64) -> Result<Report> {
    let Device::Cuda(gpu) = device else {
        return Err(Error::Device("the device checks need --device cuda (or cuda-emulated)".into()));
    };
    let mut report = run_all(&**gpu, seed)?;
    report.checks.extend(step::whole_step(device, seed)?);
    report.checks.extend(recipe::recipe_steps(device, seed)?);
    Ok(report)
}

/// A text table of the checks: kernel, case, max error, the bound's parts and the worst ratio.
pub fn table(checks: &[Check]) -> String {
    let mut s = format!(
        "{:<28} {:<44} {:>10} {:>8} {:>8} {:>7} {}\n",
        "kernel", "case", "max error", "atol", "rtol", "worst", "ok"
    );
    for c in checks {
        writeln!(
            s,
            "{:<28} {:<44} {:>10.2e} {:>8.0e} {:>8.0e} {:>7.3} {}",
            c.kernel,
            c.case,
            c.max_abs,
            c.tol.atol,
            c.tol.rtol,
            c.worst,
            if c.passed() { "yes" } else { "NO" }
        )
        .expect("write to String");
    }
    s
}
