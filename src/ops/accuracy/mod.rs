//! Top-1 hits of a batch of logits, counted where the logits are (no gradient: a metric).
//!
//! `hits = #{ n : argmax_k z[n, k] = y[n] }`, the argmax being the first largest entry of the
//! row (a NaN never wins, as with `v > best`).

pub mod launch;
pub mod parity;
pub mod reference;

use crate::cuda::exec::Exec;
use crate::error::{Error, Result};
use crate::ops::map_on;
use crate::tensor::Tensor;

const OP: &str = "count_correct";

/// The CPU path.
pub(crate) mod cpu {
    /// The first index of the largest entry of `row`.
    pub(crate) fn argmax(row: &[f32]) -> usize {
        row.iter().enumerate().fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
    }

    /// 1 where row `n` of `z: [rows, k]` has its argmax at `labels[n]`, else 0.
    pub(crate) fn hits(z: &[f32], k: usize, labels: &[usize]) -> Vec<f32> {
        z.chunks_exact(k).zip(labels).map(|(row, &y)| f32::from(argmax(row) == y)).collect()
    }
}

/// The number of rows of `logits: [N, K]` whose first largest entry is at their label, as a
/// one-element tensor where the logits are (read it with [`crate::tensor::read_scalars`] or
/// [`Tensor::item`]).
pub fn count_correct(logits: &Tensor, labels: &[usize]) -> Result<Tensor> {
    logits.expect_shape(OP, "logits", &[None, None])?;
    let [n, k] = [logits.shape()[0], logits.shape()[1]];
    if n == 0 || k == 0 || labels.len() != n {
        return Err(Error::shape(OP, format!("{} labels for logits {:?}", labels.len(), logits.shape())));
    }
    map_on(
        logits,
        &[1],
        |z| vec![cpu::hits(z, k, labels).iter().sum()],
        |gpu, z| {
            // Labels are compared, never used as indices; any value fits i32 for that purpose.
            let labels: Vec<i32> = labels.iter().map(|&y| i32::try_from(y).unwrap_or(-1)).collect();
            launch::count_correct(gpu, [n, k], z, &gpu.upload(&labels)?)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_maxima_and_rejects_bad_shapes() {
        let z = Tensor::from_vec(vec![1.0, 3.0, 3.0, 0.0, f32::NAN, -1.0, 2.0, 2.0, 2.0], &[3, 3]).unwrap();
        // Row 0: first maximum at 1; row 1: NaN never wins, so 0 stays; row 2: ties go to 0.
        assert_eq!(count_correct(&z, &[1, 0, 0]).unwrap().item().unwrap(), 3.0);
        assert_eq!(count_correct(&z, &[2, 1, 1]).unwrap().item().unwrap(), 0.0);
        let err = count_correct(&z, &[0, 1]).unwrap_err().to_string();
        assert!(err.contains("count_correct") && err.contains("[3, 3]"), "{err}");
    }

    #[test]
    fn matches_the_reference_on_rounded_random_logits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (n, k) = (97, 7);
        let z: Vec<f32> = (0..n * k).map(|_| rng.random_range(-3i32..=3) as f32).collect();
        let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
        let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let want = reference::count_correct(&z64, k, &labels);
        let got = count_correct(&Tensor::from_vec(z, &[n, k]).unwrap(), &labels).unwrap().item().unwrap();
        assert_eq!(got as f64, want);
    }
}
