//! Kernel parity cases: random inputs, uploads to an [`Exec`] and the comparison of each output
//! with the CPU function its kernel mirrors, `|got - want| <= atol + rtol * |want|`. A NaN never
//! passes, so an element a kernel fails to write (fresh outputs are poisoned where the backend
//! can) shows up.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::cuda::exec::Exec;
use crate::error::Result;

/// A tolerance: an element passes when `|got - want| <= atol + rtol * |want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    /// Absolute part.
    pub atol: f32,
    /// Relative part.
    pub rtol: f32,
}

impl Tol {
    /// Bit-for-bit: the same single operations in the same order.
    pub const EXACT: Tol = Tol { atol: 0.0, rtol: 0.0 };

    /// A sum of `k` products of N(0, 1) values in another order: rounding grows with `k`.
    pub fn dot(k: usize) -> Tol {
        Tol { atol: 1e-6 * k as f32, rtol: 1e-5 }
    }
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

/// Random inputs, uploads and comparisons for the parity cases, the checks in the order made.
pub struct Ctx<'e, E: Exec> {
    /// The backend the kernels run on.
    pub e: &'e E,
    /// The seeded generator every input is drawn from.
    pub rng: ChaCha8Rng,
    checks: Vec<Check>,
}

impl<'e, E: Exec> Ctx<'e, E> {
    /// A context on `e` with no checks yet and inputs drawn from `seed`.
    pub fn new(e: &'e E, seed: u64) -> Self {
        Ctx { e, rng: ChaCha8Rng::seed_from_u64(seed), checks: Vec::new() }
    }

    /// The checks made, in order.
    pub fn into_checks(self) -> Vec<Check> {
        self.checks
    }

    /// Prints every check made (kernel, case, largest error, worst ratio to the tolerance) and
    /// panics with those outside their tolerance: the end of a parity test.
    #[cfg(test)]
    pub(crate) fn assert_all_passed(self) {
        for c in &self.checks {
            println!("{:<28} {:<48} {:>10.2e} {:>7.3}", c.kernel, c.case, c.max_abs, c.worst);
        }
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| format!("{} [{}]: {}", c.kernel, c.case, c.worst))
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    /// `n` independent N(0, 1) samples.
    pub fn normal(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| <StandardNormal as Distribution<f32>>::sample(&StandardNormal, &mut self.rng))
            .collect()
    }

    /// `v` uploaded to the backend.
    pub fn up(&self, v: &[f32]) -> Result<E::Buf<f32>> {
        self.e.upload(v)
    }

    /// Downloads `got` and records its comparison with `want`.
    pub fn compare(
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
    pub fn compare_opt(
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

    /// Records the comparison of `got`, already on the host, with `want`.
    pub fn compare_host(&mut self, kernel: &'static str, case: &str, got: &[f32], want: &[f32], tol: Tol) {
        self.checks.push(compare(kernel, case.to_string(), got, want, tol));
    }
}

/// Compares `got` with `want` element by element under `tol`; a NaN or a length mismatch never
/// passes.
pub fn compare(kernel: &'static str, case: String, got: &[f32], want: &[f32], tol: Tol) -> Check {
    let (mut max_abs, mut worst) = (0.0f32, if got.len() == want.len() { 0.0f64 } else { f64::INFINITY });
    for (&g, &w) in got.iter().zip(want) {
        let err = (g - w).abs();
        let ratio = if err == 0.0 { 0.0 } else { err as f64 / (tol.atol + tol.rtol * w.abs()) as f64 };
        max_abs = max_abs.max(if err.is_nan() { f32::INFINITY } else { err });
        worst = if ratio.is_nan() { f64::INFINITY } else { worst.max(ratio) };
    }
    Check { kernel, case, max_abs, worst, tol }
}
