//! The losses on a device, composed from the kernels of `kernels/losses.cu` exactly as the CPU
//! versions compose their `cpu` functions (the device parity checks compare
//! each piece). Per-row values are summed on the device; the only copy to the host in a backward
//! is the upstream gradient of the loss, one number.

use std::sync::Arc;

use super::factor::FactorNorm;
use super::launch::{self as kernels, RowReduce, TwoGrads};
use crate::cuda::exec::Exec;
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::cuda::launch::builtin::{self, column_sums};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// The one-element loss `scale * sum(per_row)` as a tensor on `gpu`.
fn total(gpu: &Arc<Gpu>, per_row: &GpuBuf<f32>, scale: f32) -> Result<Tensor> {
    let sum = column_sums(&**gpu, gpu.len(per_row), 1, scale, per_row)?;
    Ok(Tensor::new_gpu(sum, gpu, &[1], false))
}

/// The labels as the kernels read them.
fn labels_on(gpu: &Gpu, labels: &[usize]) -> Result<GpuBuf<i32>> {
    // Labels are below the class count, itself a tensor extent that fits in 32 bits.
    gpu.upload(&labels.iter().map(|&y| y as i32).collect::<Vec<i32>>())
}

/// The upstream gradient of a one-element loss, on the host: known there for a backward seed and
/// its scalings (the usual weighted sum of losses), else copied back.
fn upstream(dy: &Tensor) -> Result<f32> {
    dy.known_scalar().map_or_else(|| dy.item(), Ok)
}

/// Mean softmax cross-entropy, taped.
pub(super) fn cross_entropy(
    gpu: &Arc<Gpu>,
    logits: &Tensor,
    labels: &[usize],
    [n, k]: [usize; 2],
) -> Result<Tensor> {
    let lb = labels_on(gpu, labels)?;
    let out = kernels::softmax_ce(&**gpu, [n, k], logits.gpu_buf()?, &lb, true, None)?;
    let y = Tensor::new_gpu(out.loss, gpu, &[1], false).result_of(&[logits]);
    let prob = out.prob.map(|p| Tensor::new_gpu(p, gpu, &[n, k], false));
    let (logits, gpu) = (logits.clone(), Arc::clone(gpu));
    autograd::record(&y, move |dy, grads| {
        let prob = prob.as_ref().ok_or_else(|| crate::Error::Device("softmax_ce kept no softmax".into()))?;
        let scale = upstream(dy)? / n as f32;
        let dz = kernels::softmax_ce_backward(&*gpu, [n, k], scale, prob.gpu_buf()?, &lb)?;
        grads.accumulate(&logits, Tensor::new_gpu(dz, &gpu, &[n, k], false))
    });
    Ok(y)
}

/// Cross-entropy and its gradient in one launch, untaped; the loss stays on the device.
pub(super) fn cross_entropy_fused(
    gpu: &Arc<Gpu>,
    logits: &Tensor,
    labels: &[usize],
    [n, k]: [usize; 2],
) -> Result<(Tensor, Tensor)> {
    let lb = labels_on(gpu, labels)?;
    let out = kernels::softmax_ce(&**gpu, [n, k], logits.gpu_buf()?, &lb, false, Some(1.0 / n as f32))?;
    let dz = out.dz.ok_or_else(|| crate::Error::Device("softmax_ce returned no gradient".into()))?;
    Ok((Tensor::new_gpu(out.loss, gpu, &[1], false), Tensor::new_gpu(dz, gpu, &[n, k], false)))
}

/// Hinton's KD loss, taped.
pub(super) fn kd_loss(gpu: &Arc<Gpu>, student: &Tensor, teacher: &Tensor, t: f32) -> Result<Tensor> {
    let [n, k] = [student.shape()[0], student.shape()[1]];
    let out = kernels::kd_forward(&**gpu, [n, k], t, student.gpu_buf()?, teacher.gpu_buf()?)?;
    let y = Tensor::new_gpu(out.loss, gpu, &[1], false).result_of(&[student, teacher]);
    let (ls, lt) = (out.ls, out.lt);
    let (student, teacher, gpu) = (student.clone(), teacher.clone(), Arc::clone(gpu));
    autograd::record(&y, move |dy, grads| {
        let scale = upstream(dy)? * t / n as f32;
        let want_teacher = teacher.requires_grad();
        let TwoGrads { first, second } =
            kernels::kd_backward(&*gpu, [n, k], scale, [&ls, &lt], want_teacher)?;
        grads.accumulate(&student, Tensor::new_gpu(first, &gpu, &[n, k], false))?;
        if let Some(dt) = second {
            grads.accumulate(&teacher, Tensor::new_gpu(dt, &gpu, &[n, k], false))?;
        }
        Ok(())
    });
    Ok(y)
}

/// Two factors normalised per sample on the device, with their norms.
struct Normalized {
    rows_d: [usize; 2],
    phi: [GpuBuf<f32>; 2],
    norms: [GpuBuf<f32>; 2],
}

impl Normalized {
    fn new(gpu: &Gpu, rows_d: [usize; 2], a: &Tensor, b: &Tensor) -> Result<Normalized> {
        let (pa, na) = kernels::normalize_rows(gpu, rows_d, a.gpu_buf()?)?;
        let (pb, nb) = kernels::normalize_rows(gpu, rows_d, b.gpu_buf()?)?;
        Ok(Normalized { rows_d, phi: [pa, pb], norms: [na, nb] })
    }

    /// Records the backward of `y`: `phi_grads(gpu, dL, phi)` gives the gradients reaching both
    /// normalised factors, which then go through the normalisation to `a` and `b`.
    fn record(
        self,
        gpu: &Arc<Gpu>,
        y: &Tensor,
        [a, b]: [&Tensor; 2],
        phi_grads: impl FnOnce(&Gpu, f32, &[GpuBuf<f32>; 2]) -> Result<[GpuBuf<f32>; 2]> + 'static,
    ) {
        let (a, b, gpu) = (a.clone(), b.clone(), Arc::clone(gpu));
        autograd::record(y, move |dy, grads| {
            let g = phi_grads(&gpu, upstream(dy)?, &self.phi)?;
            for (i, t) in [&a, &b].into_iter().enumerate() {
                if t.requires_grad() {
                    let parts = [&self.phi[i], &self.norms[i], &g[i]];
                    let dt = kernels::normalize_rows_backward(&*gpu, self.rows_d, parts)?;
                    grads.accumulate(t, Tensor::new_gpu(dt, &gpu, t.shape(), false))?;
                }
            }
            Ok(())
        });
    }
}

/// `sign / (B*D) * sum |phi(a) - phi(b)|^p`, taped.
pub(super) fn factor_loss(
    gpu: &Arc<Gpu>,
    [a, b]: [&Tensor; 2],
    [batch, d]: [usize; 2],
    norm: FactorNorm,
    sign: f32,
) -> Result<Tensor> {
    let normalized = Normalized::new(gpu, [batch, d], a, b)?;
    let squared = norm == FactorNorm::L2;
    let f = if squared { RowReduce::SquaredDiff } else { RowReduce::AbsDiff };
    let per_sample = kernels::row_reduce(&**gpu, [batch, d], f, &normalized.phi[0], &normalized.phi[1])?;
    let count = (batch * d) as f32;
    let y = total(gpu, &per_sample, sign / count)?.result_of(&[a, b]);
    normalized.record(gpu, &y, [a, b], move |gpu, dy, [pa, pb]| {
        let g = kernels::diff_backward(gpu, squared, sign * dy / count, pa, pb, true)?;
        let gb =
            g.second.ok_or_else(|| crate::Error::Device("diff_backward returned one gradient".into()))?;
        Ok([g.first, gb])
    });
    Ok(y)
}

/// `1/B * sum_b |<phi(a_b), phi(b_b)>|`, taped.
pub(super) fn factor_dot_loss(
    gpu: &Arc<Gpu>,
    [a, b]: [&Tensor; 2],
    [batch, d]: [usize; 2],
) -> Result<Tensor> {
    let normalized = Normalized::new(gpu, [batch, d], a, b)?;
    let dots =
        kernels::row_reduce(&**gpu, [batch, d], RowReduce::Dot, &normalized.phi[0], &normalized.phi[1])?;
    // |v| as the leaky ReLU of slope -1.
    let abs = crate::ops::activation::launch::leaky_relu_forward(&**gpu, -1.0, &dots)?;
    let y = total(gpu, &abs, 1.0 / batch as f32)?.result_of(&[a, b]);
    normalized.record(gpu, &y, [a, b], move |gpu, dy, [pa, pb]| {
        let scale = dy / batch as f32;
        Ok([
            kernels::dots_backward(gpu, [batch, d], scale, &dots, pb)?,
            kernels::dots_backward(gpu, [batch, d], scale, &dots, pa)?,
        ])
    });
    Ok(y)
}

/// Mean absolute (`squared = false`) or squared error, taped.
pub(super) fn recon_loss(gpu: &Arc<Gpu>, a: &Tensor, b: &Tensor, squared: bool) -> Result<Tensor> {
    let m = a.numel();
    let f = if squared { RowReduce::SquaredDiff } else { RowReduce::AbsDiff };
    let sum = kernels::row_reduce(&**gpu, [1, m], f, a.gpu_buf()?, b.gpu_buf()?)?;
    let y =
        Tensor::new_gpu(builtin::scale(&**gpu, 1.0 / m as f32, &sum)?, gpu, &[1], false).result_of(&[a, b]);
    let (a, b, gpu) = (a.clone(), b.clone(), Arc::clone(gpu));
    autograd::record(&y, move |dy, grads| {
        let scale = upstream(dy)? / m as f32;
        let g = kernels::diff_backward(&*gpu, squared, scale, a.gpu_buf()?, b.gpu_buf()?, b.requires_grad())?;
        if let Some(db) = g.second {
            grads.accumulate(&b, Tensor::new_gpu(db, &gpu, b.shape(), false))?;
        }
        grads.accumulate(&a, Tensor::new_gpu(g.first, &gpu, a.shape(), false))
    });
    Ok(y)
}

/// The normalised attention map `[N, H*W]` of `x: [N, H, W, C]`, taped.
pub(super) fn attention_map(gpu: &Arc<Gpu>, x: &Tensor, [n, hw, c]: [usize; 3]) -> Result<Tensor> {
    let q = kernels::channel_mean_square(&**gpu, [n * hw, c], x.gpu_buf()?, None)?;
    let (map, norms) = kernels::normalize_rows(&**gpu, [n, hw], &q)?;
    let y = Tensor::new_gpu(map, gpu, &[n, hw], false).result_of(&[x]);
    let (x, map, gpu) = (x.clone(), y.detach(), Arc::clone(gpu));
    autograd::record(&y, move |dy, grads| {
        let dq = kernels::normalize_rows_backward(&*gpu, [n, hw], [map.gpu_buf()?, &norms, dy.gpu_buf()?])?;
        let dx = kernels::channel_mean_square(&*gpu, [n * hw, c], x.gpu_buf()?, Some(&dq))?;
        grads.accumulate(&x, Tensor::new_gpu(dx, &gpu, x.shape(), false))
    });
    Ok(y)
}
