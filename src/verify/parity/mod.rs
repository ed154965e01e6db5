//! Parity of every kernel with the rayon CPU path, on any [`Exec`]: the CPU emulation in tests,
//! a real GPU in `scripts/gpu-check.sh`. Each check draws seeded random inputs at awkward sizes
//! (1, tile - 1, tile, tile + 1, odd channel counts), runs a launcher and compares each output
//! element with the CPU function it mirrors: `|got - want| <= atol + rtol * |want|`, tolerances
//! stated per kernel. Fresh outputs are poisoned where the backend can (NaN on the emulation), and
//! a NaN never passes, so an element a kernel fails to write shows up.
//!
//! Each op's cases are in its folder (`ops::<op>::parity`, written with [`crate::ops::check`]);
//! [`run_all`] runs them in a fixed order from one seeded generator, with the SGD kernel's. The
//! checks of a whole training step ([`step`]), of every recipe ([`recipe`]) and of the
//! tensor-core building blocks ([`tensor_core`]) are here.

pub mod graph;
pub mod recipe;
mod sgd;
pub mod step;
pub mod tensor_core;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::cuda::exec::{Exec, Recorder};
use crate::error::{Error, Result};
use crate::ops;
pub use crate::ops::check::parity::{Check, Tol};
use crate::ops::check::parity::{Ctx, compare};
use crate::tensor::device::Device;

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
    let mut cx = Ctx::new(&recorder, seed);
    ops::conv2d::parity::run(&mut cx)?;
    ops::conv2d::parity_tc::run(&mut cx)?;
    ops::linear::parity::run(&mut cx)?;
    ops::linear::parity_tc::run(&mut cx)?;
    ops::batchnorm::parity::run(&mut cx)?;
    ops::pool::parity::run(&mut cx)?;
    elementwise(&mut cx)?;
    ops::channels::parity::run(&mut cx)?;
    sgd::run(&mut cx)?;
    ops::loss::parity::run(&mut cx)?;
    ops::maxpool::parity::run(&mut cx)?;
    ops::depthwise::parity::run(&mut cx)?;
    ops::activation::parity::run_clamp(&mut cx)?;
    ops::accuracy::parity::run(&mut cx)?;
    ops::margin::parity::run(&mut cx)?;
    ops::precision::parity::run(&mut cx)?;
    ops::loss::parity::partial_l2(&mut cx)?;
    tensor_core::run(&mut cx)?;
    Ok(Report { checks: cx.into_checks(), launched: recorder.launched() })
}

/// The activation and arithmetic kernels at lengths 1, a block - 1, a block, a block + 1 and
/// several blocks, sharing each length's inputs.
fn elementwise<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for len in [1, 255, 256, 257, 5000] {
        let (x, y, dy) = (cx.normal(len), cx.normal(len), cx.normal(len));
        ops::activation::parity::check(cx, &x, &dy)?;
        ops::arith::parity::check(cx, &x, &y)?;
    }
    Ok(())
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
