//! Linear centred kernel alignment (Kornblith et al. 2019) between two sets of features.
//!
//! For `X: [n, d1]` and `Y: [n, d2]` (one row per example) with centred columns,
//! `CKA = ||Y^T X||_F^2 / (||X^T X||_F * ||Y^T Y||_F)`. The same value through the `n x n` Gram
//! matrices `K = X X^T`, `L = Y Y^T` is `<K, L>_F / (||K||_F * ||L||_F)`; whichever of the two is
//! cheaper is used (the Gram form when the features are wider than the batch, e.g. `64*8*8`
//! dimensions). Everything is accumulated in f64. Forward only: an analysis, not a loss.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

const OP: &str = "linear_cka";

/// `X` as f64 with every column's mean subtracted; `x` is row-major `[n, d]`.
fn centred(x: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    x.chunks_exact(d).flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v as f64 - m)).collect()
}

/// The transpose of a row-major `[rows, cols]` matrix.
fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| x[r * cols + c])).collect()
}

/// All dot products between the rows of `a` and those of `b` (both of length `len`), row-major
/// `[a_rows, b_rows]`.
fn row_products(a: &[f64], b: &[f64], len: usize) -> Vec<f64> {
    a.par_chunks(len)
        .flat_map_iter(|ra| b.chunks(len).map(move |rb| ra.iter().zip(rb).map(|(u, v)| u * v).sum::<f64>()))
        .collect()
}

fn frobenius(m: &[f64]) -> f64 {
    m.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// `(||Y^T X||_F^2, ||X^T X||_F, ||Y^T Y||_F)` of centred `[n, d]` features, computed through the
/// `n x n` Gram matrices (`gram`) or the feature-space products.
fn alignment_terms(xc: &[f64], yc: &[f64], n: usize, gram: bool) -> (f64, f64, f64) {
    let (d1, d2) = (xc.len() / n, yc.len() / n);
    if gram {
        let (k, l) = (row_products(xc, xc, d1), row_products(yc, yc, d2));
        (k.iter().zip(&l).map(|(a, b)| a * b).sum::<f64>(), frobenius(&k), frobenius(&l))
    } else {
        let (xt, yt) = (transpose(xc, n, d1), transpose(yc, n, d2));
        let cross = frobenius(&row_products(&yt, &xt, n)).powi(2);
        (cross, frobenius(&row_products(&xt, &xt, n)), frobenius(&row_products(&yt, &yt, n)))
    }
}

/// Linear CKA of `x: [n, d1]` and `y: [n, d2]` (row-major, one row per example), in `[0, 1]`.
/// Errors when `n < 2`, when a slice is not `n` whole rows, or when a feature set is constant.
pub fn linear_cka(x: &[f32], y: &[f32], n: usize) -> Result<f64> {
    if n < 2 || x.is_empty() || y.is_empty() || !x.len().is_multiple_of(n) || !y.len().is_multiple_of(n) {
        return Err(Error::shape(
            OP,
            format!("{} and {} elements are not [n, d] features of n = {n} >= 2 examples", x.len(), y.len()),
        ));
    }
    let (d1, d2) = (x.len() / n, y.len() / n);
    let (xc, yc) = (centred(x, n, d1), centred(y, n, d2));
    let gram = n * n * (d1 + d2) <= n * (d1 * d1 + d2 * d2 + d1 * d2);
    let (cross, norm_x, norm_y) = alignment_terms(&xc, &yc, n, gram);
    if norm_x == 0.0 || norm_y == 0.0 {
        return Err(Error::invalid(
            OP,
            format!("features [{n}, {d1}] or [{n}, {d2}] are constant over the examples"),
        ));
    }
    Ok(cross / (norm_x * norm_y))
}

/// [`linear_cka`] of two feature tensors `[n, ...]` flattened to `[n, rest]`.
pub fn linear_cka_tensors(x: &Tensor, y: &Tensor) -> Result<f64> {
    if x.rank() == 0 || y.rank() == 0 || x.shape()[0] != y.shape()[0] {
        return Err(Error::shape(
            OP,
            format!("features {:?} and {:?} differ in examples", x.shape(), y.shape()),
        ));
    }
    linear_cka(x.host()?, y.host()?, x.shape()[0])
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn randn(n: usize, seed: u64) -> Vec<f32> {
        Tensor::randn(&[n], 1.0, &mut ChaCha8Rng::seed_from_u64(seed)).to_vec().unwrap()
    }

    /// `x [n, d]` times a random orthogonal `d x d` matrix (Gram-Schmidt of a Gaussian one).
    fn rotate(x: &[f32], n: usize, d: usize) -> Vec<f32> {
        let mut q: Vec<Vec<f64>> =
            randn(d * d, 99).chunks(d).map(|r| r.iter().map(|&v| v as f64).collect()).collect();
        for i in 0..d {
            for j in 0..i {
                let dot: f64 = q[i].iter().zip(&q[j]).map(|(a, b)| a * b).sum();
                let qj = q[j].clone();
                q[i].iter_mut().zip(&qj).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = q[i].iter().map(|v| v * v).sum::<f64>().sqrt();
            q[i].iter_mut().for_each(|v| *v /= norm);
        }
        (0..n)
            .flat_map(|r| (0..d).map(move |c| (r, c)))
            .map(|(r, c)| (0..d).map(|k| x[r * d + k] as f64 * q[k][c]).sum::<f64>() as f32)
            .collect()
    }

    #[test]
    fn self_similarity_and_invariances_in_both_forms() {
        // d < n uses the feature form, d > n the Gram form.
        for (n, d) in [(40, 6), (6, 40)] {
            let x = randn(n * d, 1);
            assert!((linear_cka(&x, &x, n).unwrap() - 1.0).abs() < 1e-9);
            let scaled: Vec<f32> = x.iter().map(|v| 3.5 * v + 2.0).collect();
            assert!((linear_cka(&x, &scaled, n).unwrap() - 1.0).abs() < 1e-6);
            assert!((linear_cka(&x, &rotate(&x, n, d), n).unwrap() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn forms_agree_and_independent_features_score_below_one() {
        let (n, d1, d2) = (30, 12, 50);
        let (x, y) = (randn(n * d1, 2), randn(n * d2, 3));
        let cka = linear_cka(&x, &y, n).unwrap();
        assert!(cka > 0.0 && cka < 0.9, "{cka}");
        let (n, d) = (400, 5);
        let cka = linear_cka(&randn(n * d, 4), &randn(n * d, 5), n).unwrap();
        assert!(cka < 0.1, "{cka}");
        let (xc, yc) = (centred(&x, 30, 12), centred(&y, 30, 50));
        let (a, b) = (alignment_terms(&xc, &yc, 30, true), alignment_terms(&xc, &yc, 30, false));
        for (u, v) in [(a.0, b.0), (a.1, b.1), (a.2, b.2)] {
            assert!((u - v).abs() <= 1e-10 * u.abs(), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn shape_errors() {
        let x = randn(12, 8);
        assert!(linear_cka(&x, &x[..10], 4).unwrap_err().to_string().contains("linear_cka"));
        assert!(linear_cka(&x, &x, 1).is_err());
        assert!(linear_cka(&[1.0; 8], &x[..8], 4).unwrap_err().to_string().contains("constant"));
        let (a, b) = (Tensor::zeros(&[3, 4]), Tensor::zeros(&[2, 4]));
        assert!(linear_cka_tensors(&a, &b).unwrap_err().to_string().contains("[3, 4]"));
    }
}
