//! Fully connected layer: `y = x W^T + b` for `x: [N, in]`, `W: [out, in]` (PyTorch's layout),
//! `b: [out]`.
//!
//! Backward: `dx = dy W`, `dW = dy^T x`, `db = sum_n dy[n, :]`. Every product takes its operands
//! at the current [`precision`]: on a device at TF32 or bf16 the tensor-core kernels
//! ([`tensor_core`]) round them as they stage them, elsewhere the op rounds them
//! (`precision::operand`) for the fp32 products.

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod parity_tc;
pub mod reference;
pub mod tensor_core;

use self::launch::LinearProduct;
use crate::cpu::reduce::column_sums;
use crate::cuda::exec::Exec;
use crate::cuda::launch::builtin;
use crate::error::{Error, Result};
use crate::ops::precision::{self, Precision};
use crate::ops::{gpu_of, map_on, map2_on};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// A CPU gradient of `linear` from the sizes, `dy` and the other operand.
type CpuBackward = fn(&cpu::Sizes, &[f32], &[f32]) -> Vec<f32>;

/// `x W^T + b` for `x: [N, in]`, `w: [out, in]`, optional `bias: [out]`.
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    x.expect_shape(OP, "input", &[None, None])?;
    let [n, k] = [x.shape()[0], x.shape()[1]];
    w.expect_shape(OP, "weight", &[None, Some(k)])?;
    let m = w.shape()[0];
    if n == 0 || k == 0 || m == 0 {
        return Err(Error::shape(OP, format!("empty input {:?} or weight {:?}", x.shape(), w.shape())));
    }
    if let Some(b) = bias {
        b.expect_shape(OP, "bias", &[Some(m)])?;
    }
    let g = cpu::Sizes { n, k, m };
    let mut inputs = vec![x, w];
    inputs.extend(bias);
    let p = precision::current();
    let (xr, wr) = (operand(p, x)?, operand(p, w)?);
    let y = match gpu_of(OP, &inputs)? {
        Some(gpu) => {
            let b = bias.map(Tensor::gpu_buf).transpose()?;
            let y =
                device_product(&*gpu, p, LinearProduct::Forward, [n, k, m], xr.gpu_buf()?, wr.gpu_buf()?, b)?;
            Tensor::new_gpu(y, &gpu, &[n, m], false)
        }
        None => Tensor::new_cpu(
            cpu::forward(&g, xr.host()?, wr.host()?, bias.map(Tensor::host).transpose()?),
            &[n, m],
            false,
        ),
    }
    .result_of(&inputs);
    let (x, w, bias) = (x.clone(), w.clone(), bias.cloned());
    autograd::record(&y, move |dy, grads| {
        let sizes = [n, k, m];
        let dyr = operand(p, dy)?;
        // Each of `x`, `w`: its gradient from `dy` and the other operand.
        let products: [(&Tensor, &Tensor, LinearProduct, CpuBackward); 2] = [
            (&x, &wr, LinearProduct::BackwardData, |g, dy, w| cpu::backward_data(g, dy, w)),
            (&w, &xr, LinearProduct::BackwardWeight, |g, dy, x| cpu::backward_weight(g, x, dy)),
        ];
        for (input, other, product, cpu_backward) in products.into_iter().filter(|p| p.0.requires_grad()) {
            let d = map2_on(
                OP,
                [&dyr, other],
                input.shape(),
                |dy, other| cpu_backward(&g, dy, other),
                |e, dy, other| device_product(e, p, product, sizes, dy, other, None),
            )?;
            grads.accumulate(input, d)?;
        }
        if let Some(b) = bias.filter(Tensor::requires_grad) {
            let db = map_on(
                dy,
                b.shape(),
                |dy| column_sums(m, dy),
                |e, dy| builtin::column_sums(e, n, m, 1.0, dy),
            )?;
            grads.accumulate(&b, db)?;
        }
        Ok(())
    });
    Ok(y)
}

/// `t` as an operand of a product at precision `p`: rounded here, except on a device at TF32 or
/// bf16, where the tensor-core kernels round their operands themselves.
fn operand(p: Precision, t: &Tensor) -> Result<Tensor> {
    match (p, t.gpu()) {
        (Precision::Tf32 | Precision::Bf16, Some(_)) => Ok(t.clone()),
        _ => precision::operand(p, t),
    }
}

/// `product` on a device at precision `p`: on tensor cores at TF32 or bf16, else by the fp32
/// kernel.
fn device_product<E: Exec>(
    e: &E,
    p: Precision,
    product: LinearProduct,
    sizes: [usize; 3],
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    match p {
        Precision::Fp32 => launch::linear(e, product, sizes, a, b, bias),
        Precision::Tf32 | Precision::Bf16 => tensor_core::linear_tc(e, p, product, sizes, a, b, bias),
    }
}

/// The CPU kernels: one GEMM each, split over rayon threads by gemm when the product is large.
pub(crate) mod cpu {
    use crate::cpu::matmul::{Mat, matmul};

    /// Multiply-accumulates above which a product uses every rayon thread.
    const PARALLEL_MACS: usize = 1 << 20;

    /// The sizes of one product: `n` rows, `k` inputs, `m` outputs.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Sizes {
        pub n: usize,
        pub k: usize,
        pub m: usize,
    }

    fn threads(g: &Sizes) -> usize {
        if g.n * g.k * g.m >= PARALLEL_MACS { rayon::current_num_threads() } else { 1 }
    }

    /// `y[n, m] = b[m] + sum_k x[n, k] w[m, k]`.
    pub(crate) fn forward(g: &Sizes, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let mut y = vec![0.0; g.n * g.m];
        if let Some(b) = bias {
            y.chunks_exact_mut(g.m).for_each(|row| row.copy_from_slice(b));
        }
        let wt = Mat::row_major(w, g.m, g.k).t();
        matmul(&mut y, Mat::row_major(x, g.n, g.k), wt, bias.is_some(), threads(g));
        y
    }

    /// `dx[n, k] = sum_m dy[n, m] w[m, k]`.
    pub(crate) fn backward_data(g: &Sizes, dy: &[f32], w: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; g.n * g.k];
        matmul(&mut dx, Mat::row_major(dy, g.n, g.m), Mat::row_major(w, g.m, g.k), false, threads(g));
        dx
    }

    /// `dw[m, k] = sum_n dy[n, m] x[n, k]`.
    pub(crate) fn backward_weight(g: &Sizes, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dw = vec![0.0; g.m * g.k];
        matmul(&mut dw, Mat::row_major(dy, g.n, g.m).t(), Mat::row_major(x, g.n, g.k), false, threads(g));
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_errors_name_the_op_and_shapes() {
        let x = Tensor::zeros(&[2, 3]);
        let err = linear(&x, &Tensor::zeros(&[4, 5]), None).unwrap_err().to_string();
        assert!(err.starts_with("linear:") && err.contains("[4, 5]"), "{err}");
        let err = linear(&x, &Tensor::zeros(&[4, 3]), Some(&Tensor::zeros(&[3]))).unwrap_err().to_string();
        assert!(err.starts_with("linear:") && err.contains("bias"), "{err}");
        let err = linear(&Tensor::zeros(&[0, 3]), &Tensor::zeros(&[4, 3]), None).unwrap_err().to_string();
        assert!(err.starts_with("linear:") && err.contains("empty"), "{err}");
        assert!(linear(&Tensor::zeros(&[2, 3, 1]), &Tensor::zeros(&[4, 3]), None).is_err());
    }

    #[test]
    fn matches_a_hand_product() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
        let w = Tensor::from_vec(vec![1.0, 0.0, 3.0, -1.0, 0.5, 0.5], &[3, 2]).unwrap();
        let b = Tensor::from_vec(vec![0.0, 1.0, -1.0], &[3]).unwrap();
        assert_eq!(linear(&x, &w, Some(&b)).unwrap().to_vec().unwrap(), vec![1.0, 2.0, 0.5]);
    }
}
