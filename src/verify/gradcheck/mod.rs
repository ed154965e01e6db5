//! Gradient checks of every op against its f64 reference: the runner and its report. Each op's
//! cases are in its folder (`ops::<op>::gradcheck`, written with [`crate::ops::check`]); [`cases`]
//! lists them in a fixed order, with the case of a whole small network.
//!
//! For each [`Case`]: inputs are drawn from a seeded generator and rounded to f32, so the fast path
//! and the reference see the same numbers. The forward result is compared element-wise with the
//! reference (`|y - r| <= atol + rtol * |r|`). The scalar `L = sum(proj * y)`, with a random
//! projection `proj`, is back-propagated through the tape, and each input's analytic gradient is
//! compared with central finite differences of `L` computed on the f64 reference. The reported
//! gradient error is normwise: `max |analytic - numeric| / max |numeric|`.

pub mod cases;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::error::Result;
pub use crate::ops::check::gradcheck::{Case, FastFn, Init, Input, ReferenceFn};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct Report {
    /// The op's name.
    pub op: &'static str,
    /// The configuration.
    pub detail: String,
    /// Largest `|y - r| / (atol + rtol * |r|)` of the forward pass (passes at <= 1).
    pub forward_ratio: f64,
    /// Per differentiable input: its name and normwise relative gradient error.
    pub grad_errors: Vec<(&'static str, f64)>,
    /// The gradient bound.
    pub grad_bound: f64,
}

impl Report {
    /// Whether the forward and every gradient are within their bounds.
    pub fn passed(&self) -> bool {
        self.forward_ratio <= 1.0 && self.grad_errors.iter().all(|&(_, e)| e <= self.grad_bound)
    }

    /// The largest gradient error.
    pub fn max_grad_error(&self) -> f64 {
        self.grad_errors.iter().map(|&(_, e)| e).fold(0.0, f64::max)
    }
}

const FD_STEP: f64 = 1e-6;

fn draw(init: &Init, n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let v: f64 = match *init {
                Init::Normal(std) => {
                    std * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
                }
                Init::Uniform(lo, hi) => Uniform::new(lo, hi).expect("lo < hi").sample(rng),
            };
            v as f32 as f64
        })
        .collect()
}

fn projected(reference: &ReferenceFn, values: &[Vec<f64>], proj: &[f64]) -> f64 {
    reference(values).iter().zip(proj).map(|(y, p)| y * p).sum()
}

/// Runs one case with inputs drawn from `seed`.
pub fn run_case(case: &Case, seed: u64) -> Result<Report> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<Vec<f64>> =
        case.inputs.iter().map(|i| draw(&i.init, i.shape.iter().product(), &mut rng)).collect();
    let tensors: Vec<Tensor> = case
        .inputs
        .iter()
        .zip(&values)
        .map(|(i, v)| {
            let t = Tensor::from_vec(v.iter().map(|&x| x as f32).collect(), &i.shape)?;
            Ok(if i.differentiable { t.into_param() } else { t })
        })
        .collect::<Result<_>>()?;

    autograd::clear_tape();
    let y = (case.fast)(&tensors)?;
    let reference = (case.reference)(&values);
    let forward_ratio = y
        .to_vec()?
        .iter()
        .zip(&reference)
        .map(|(&a, &r)| (a as f64 - r).abs() / (case.atol + case.rtol * r.abs()))
        .fold(0.0, f64::max);

    let proj = draw(&Init::Normal(1.0), y.numel(), &mut rng);
    let seed_grad = Tensor::from_vec(proj.iter().map(|&p| p as f32).collect(), y.shape())?;
    let grads = autograd::backward_with(&y, seed_grad)?;

    let mut grad_errors = Vec::new();
    for (k, input) in case.inputs.iter().enumerate() {
        if !input.differentiable {
            continue;
        }
        let analytic = grads
            .get(&tensors[k])
            .map(Tensor::to_vec)
            .transpose()?
            .unwrap_or_else(|| vec![0.0; values[k].len()]);
        let mut probe = values.clone();
        let (mut max_diff, mut max_ref) = (0.0f64, 0.0f64);
        for j in 0..values[k].len() {
            probe[k][j] = values[k][j] + FD_STEP;
            let up = projected(&case.reference, &probe, &proj);
            probe[k][j] = values[k][j] - FD_STEP;
            let down = projected(&case.reference, &probe, &proj);
            probe[k][j] = values[k][j];
            let numeric = (up - down) / (2.0 * FD_STEP);
            max_diff = max_diff.max((analytic[j] as f64 - numeric).abs());
            max_ref = max_ref.max(numeric.abs());
        }
        grad_errors.push((input.name, max_diff / max_ref.max(1e-12)));
    }
    Ok(Report {
        op: case.op,
        detail: case.detail.clone(),
        forward_ratio,
        grad_errors,
        grad_bound: case.grad_bound,
    })
}

/// Runs every case whose op name contains `filter` (all when `None`), seeds `seed, seed + 1, ...`.
pub fn run_all(filter: Option<&str>, seed: u64) -> Result<Vec<Report>> {
    cases::all()
        .iter()
        .filter(|c| filter.is_none_or(|f| c.op.contains(f)))
        .enumerate()
        .map(|(i, c)| run_case(c, seed + i as u64))
        .collect()
}

/// The reports as a text table, one row per case.
pub fn format_table(reports: &[Report]) -> String {
    let mut out = format!(
        "{:<26} {:<44} {:>10} {:>12} {:>9}  {}\n",
        "op", "configuration", "fwd ratio", "grad error", "bound", "result"
    );
    for r in reports {
        out += &format!(
            "{:<26} {:<44} {:>10.3} {:>12.2e} {:>9.0e}  {}\n",
            r.op,
            r.detail,
            r.forward_ratio,
            r.max_grad_error(),
            r.grad_bound,
            if r.passed() { "ok" } else { "FAIL" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;

    #[test]
    fn detects_a_wrong_gradient() {
        // x * detach(x): the forward is x^2, but the gradient misses one of its two terms.
        let case = Case::unary(
            "square",
            String::new(),
            &[5],
            Box::new(|t| ops::arith::mul(&t[0], &t[0].detach())),
            Box::new(|v| v[0].iter().map(|x| x * x).collect()),
        );
        let report = run_case(&case, 1).unwrap();
        assert!(report.forward_ratio <= 1.0);
        assert!((report.max_grad_error() - 0.5).abs() < 1e-3, "{report:?}");
        assert!(!report.passed());
    }

    #[test]
    fn detects_a_wrong_forward() {
        let case = Case::unary(
            "scale",
            String::new(),
            &[4],
            Box::new(|t| ops::arith::scale(&t[0], 2.0)),
            Box::new(|v| v[0].iter().map(|x| 2.001 * x).collect()),
        );
        assert!(!run_case(&case, 2).unwrap().passed());
    }
}
