//! Reshapes: the same row-major elements under another shape, without a copy.
//!
//! Backward: `dx` is `dy` viewed with the shape of `x`.

pub mod gradcheck;
pub mod reference;

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// `x` viewed as `shape`, which must have the same number of elements.
pub fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    view("reshape", x, shape)
}

/// `x: [N, ...]` viewed as `[N, product of the rest]`.
pub fn flatten(x: &Tensor) -> Result<Tensor> {
    let Some((&n, rest)) = x.shape().split_first() else {
        return Err(Error::shape("flatten", "cannot flatten a tensor of rank 0"));
    };
    view("flatten", x, &[n, rest.iter().product()])
}

fn view(op: &'static str, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let numel: usize = shape.iter().product();
    if numel != x.numel() {
        return Err(Error::shape(
            op,
            format!("cannot view {:?} ({} elements) as {shape:?} ({numel} elements)", x.shape(), x.numel()),
        ));
    }
    let y = x.with_shape(shape, autograd::is_recording() && x.requires_grad());
    let x = x.clone();
    autograd::record(&y, move |dy, grads| grads.accumulate(&x, dy.with_shape(x.shape(), false)));
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_count_mismatch_names_the_op() {
        let x = Tensor::zeros(&[2, 3, 4]);
        let err = reshape(&x, &[5, 5]).unwrap_err().to_string();
        assert!(err.starts_with("reshape:") && err.contains("[2, 3, 4]") && err.contains("[5, 5]"), "{err}");
        assert!(flatten(&Tensor::zeros(&[])).unwrap_err().to_string().starts_with("flatten:"));
    }

    #[test]
    fn views_share_storage_and_gradients_come_back_shaped() {
        let x = Tensor::from_vec((0..24).map(|i| i as f32).collect(), &[2, 3, 2, 2]).unwrap().into_param();
        let y = flatten(&x).unwrap();
        assert_eq!(y.shape(), &[2, 12]);
        assert_eq!(y.host().unwrap().as_ptr(), x.host().unwrap().as_ptr());
        let g = autograd::backward_with(&y, Tensor::full(&[2, 12], 2.0)).unwrap();
        let gx = g.get(&x).unwrap();
        assert_eq!(gx.shape(), x.shape());
        assert!(gx.to_vec().unwrap().iter().all(|&v| v == 2.0));
    }
}
