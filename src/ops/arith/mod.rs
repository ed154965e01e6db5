//! Elementwise arithmetic on tensors of the same shape.
//!
//! `add(a, b) = a + b` (backward `da = db = dy`), `scale(x, s) = s * x` (backward `dx = s * dy`),
//! `mul(a, b) = a * b` (backward `da = dy * b`, `db = dy * a`). No broadcasting.

#[cfg(all(test, feature = "cuda-emulation"))]
mod accumulate_tests;
pub mod gradcheck;
pub mod parity;
pub mod reference;

use crate::cuda::launch::builtin::{self, Binary};
use crate::error::{Error, Result};
use crate::ops::{map_on, map2_on};
use crate::tensor::Tensor;
use crate::tensor::autograd;

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() == b.shape() {
        return Ok(());
    }
    Err(Error::shape(
        op,
        format!("operands have shapes {:?} and {:?}; they must be equal", a.shape(), b.shape()),
    ))
}

/// `a + b`, elementwise; the shapes must be equal.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("add", a, b)?;
    let y = map2_on("add", [a, b], a.shape(), cpu::add, |g, a, b| builtin::binary(g, Binary::Add, a, b))?
        .result_of(&[a, b]);
    let (a, b) = (a.clone(), b.clone());
    autograd::record(&y, move |dy, grads| {
        grads.accumulate(&a, dy.clone())?;
        grads.accumulate(&b, dy.clone())
    });
    Ok(y)
}

/// `s * x`, elementwise; `s` must be finite.
pub fn scale(x: &Tensor, s: f32) -> Result<Tensor> {
    if !s.is_finite() {
        return Err(Error::invalid("scale", format!("factor {s} is not finite")));
    }
    let y = scaled(x, s)?.result_of(&[x]);
    let x = x.clone();
    autograd::record(&y, move |dy, grads| grads.accumulate(&x, scaled(dy, s)?));
    Ok(y)
}

/// `a * b`, elementwise; the shapes must be equal.
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    let y = product(a, b)?.result_of(&[a, b]);
    let (a, b) = (a.clone(), b.clone());
    autograd::record(&y, move |dy, grads| {
        if a.requires_grad() {
            grads.accumulate(&a, product(dy, &b)?)?;
        }
        if b.requires_grad() {
            grads.accumulate(&b, product(dy, &a)?)?;
        }
        Ok(())
    });
    Ok(y)
}

/// `s * x` on `x`'s device, without gradient.
pub(crate) fn scaled(x: &Tensor, s: f32) -> Result<Tensor> {
    let y = map_on(x, x.shape(), |x| cpu::scale(x, s), |g, x| builtin::scale(g, s, x))?;
    Ok(y.with_scalar(x.known_scalar().map(|v| s * v)))
}

/// `a * b` on their device, without gradient.
fn product(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    map2_on("mul", [a, b], a.shape(), cpu::mul, |g, a, b| builtin::binary(g, Binary::Mul, a, b))
}

/// The CPU kernels, rayon over fixed-size chunks of elements.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Elements per rayon task.
    const CHUNK: usize = 1 << 14;

    fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
        let mut y = vec![0.0; a.len()];
        y.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).zip(b.par_chunks(CHUNK)).for_each(|((y, a), b)| {
            y.iter_mut().zip(a).zip(b).for_each(|((y, &a), &b)| *y = f(a, b));
        });
        y
    }

    /// `a + b`.
    pub(crate) fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
        zip_map(a, b, |a, b| a + b)
    }

    /// `a * b`.
    pub(crate) fn mul(a: &[f32], b: &[f32]) -> Vec<f32> {
        zip_map(a, b, |a, b| a * b)
    }

    /// `s * x`.
    pub(crate) fn scale(x: &[f32], s: f32) -> Vec<f32> {
        let mut y = vec![0.0; x.len()];
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &v)| *y = s * v);
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_known_scalars_follow_scalings_and_end_with_writes() {
        let seed = Tensor::full(&[1], 2.0);
        assert_eq!(seed.known_scalar(), Some(2.0));
        assert_eq!(scaled(&seed, 3.0).unwrap().known_scalar(), Some(6.0));
        assert_eq!(Tensor::full(&[2], 2.0).known_scalar(), None);
        let mut moved = seed.to_device(&crate::Device::Cpu).unwrap().into_param();
        assert_eq!(moved.known_scalar(), Some(2.0));
        moved.set_values(&[5.0]).unwrap();
        assert_eq!(moved.known_scalar(), None);
    }

    #[test]
    fn shape_mismatch_names_the_op() {
        let (a, b) = (Tensor::zeros(&[2, 3]), Tensor::zeros(&[3, 2]));
        let err = add(&a, &b).unwrap_err().to_string();
        assert!(err.starts_with("add:") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
        assert!(mul(&a, &b).unwrap_err().to_string().starts_with("mul:"));
        assert!(scale(&a, f32::INFINITY).unwrap_err().to_string().starts_with("scale:"));
    }

    #[test]
    fn adding_a_tensor_to_itself_doubles_the_gradient() {
        let x = Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap().into_param();
        let y = add(&x, &x).unwrap();
        let g = autograd::backward_with(&y, Tensor::from_vec(vec![0.5, 3.0], &[2]).unwrap()).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![1.0, 6.0]);
    }
}
