//! The losses' forward and backward pieces, each run where its operands are: the rayon path (the
//! `cpu` module of each loss) for host tensors, the kernels of `kernels/losses.cu` through
//! [`super::launch`] for tensors on a device, composed the same way on both (the device parity
//! checks compare each piece). Results carry no gradient: each loss records one tape entry over
//! these pieces. On a device, per-row values are summed there; the only copy to the host in a
//! backward is the upstream gradient of the loss, one number, when it is not known already.

use super::factor::{FactorNorm, cpu as factor_cpu};
use super::launch::{self as kernels, RowReduce, TwoGrads};
use super::{attention, cross_entropy as ce, kd, recon};
use crate::cuda::exec::Exec;
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::cuda::launch::builtin::{self, column_sums};
use crate::error::{Error, Result};
use crate::ops::activation::launch::leaky_relu_forward;
use crate::ops::{gpu_of, map_on, map2_on};
use crate::tensor::Tensor;

/// The upstream gradient of a one-element loss, on the host: known there for a backward seed and
/// its scalings (the usual weighted sum of losses), else copied back.
pub(super) fn upstream(dy: &Tensor) -> Result<f32> {
    dy.known_scalar().map_or_else(|| dy.item(), Ok)
}

/// A one-element loss on the host.
fn host_loss(v: f64) -> Tensor {
    Tensor::new_cpu(vec![v as f32], &[1], false)
}

/// The one-element loss `scale * sum(per_row)` on `gpu`.
fn device_total(gpu: &Gpu, per_row: &GpuBuf<f32>, scale: f32) -> Result<GpuBuf<f32>> {
    column_sums(gpu, gpu.len(per_row), 1, scale, per_row)
}

/// Class labels, with their device copy when the logits are on a device.
pub(super) struct Labels {
    host: Vec<usize>,
    device: Option<GpuBuf<i32>>,
}

impl Labels {
    fn new(labels: &[usize], logits: &Tensor) -> Result<Labels> {
        // Labels are below the class count, itself a tensor extent that fits in 32 bits.
        let device = match logits.gpu() {
            Some((_, gpu)) => Some(gpu.upload(&labels.iter().map(|&y| y as i32).collect::<Vec<i32>>())?),
            None => None,
        };
        Ok(Labels { host: labels.to_vec(), device })
    }

    fn device(&self) -> Result<&GpuBuf<i32>> {
        self.device.as_ref().ok_or_else(|| Error::Device("labels were not copied to the device".into()))
    }
}

/// Batch-mean softmax cross-entropy of `logits: [n, k]`: the loss and the softmax.
pub(super) fn ce_forward(
    logits: &Tensor,
    labels: &[usize],
    [n, k]: [usize; 2],
) -> Result<(Tensor, Tensor, Labels)> {
    let labels = Labels::new(labels, logits)?;
    match logits.gpu() {
        Some((z, gpu)) => {
            let out = kernels::softmax_ce(&**gpu, [n, k], z, labels.device()?, true, None)?;
            let prob = out.prob.ok_or_else(|| Error::Device("softmax_ce kept no softmax".into()))?;
            let prob = Tensor::new_gpu(prob, gpu, &[n, k], false);
            Ok((Tensor::new_gpu(out.loss, gpu, &[1], false), prob, labels))
        }
        None => {
            let mut p = vec![0.0; n * k];
            let loss = ce::cpu::forward(k, logits.host()?, &labels.host, &mut p) / n as f64;
            Ok((host_loss(loss), Tensor::new_cpu(p, &[n, k], false), labels))
        }
    }
}

/// `scale * (prob - onehot(labels))`.
pub(super) fn ce_backward(prob: &Tensor, labels: &Labels, [n, k]: [usize; 2], scale: f32) -> Result<Tensor> {
    map_on(
        prob,
        &[n, k],
        |p| ce::cpu::backward(k, p, &labels.host, scale),
        |gpu, p| kernels::softmax_ce_backward(gpu, [n, k], scale, p, labels.device()?),
    )
}

/// Cross-entropy and its gradient at the logits (for a loss of weight 1) in one pass.
pub(super) fn ce_fused(logits: &Tensor, labels: &[usize], [n, k]: [usize; 2]) -> Result<(Tensor, Tensor)> {
    let Some((z, gpu)) = logits.gpu() else {
        let (loss, prob, labels) = ce_forward(logits, labels, [n, k])?;
        return Ok((loss, ce_backward(&prob, &labels, [n, k], 1.0 / n as f32)?));
    };
    let labels = Labels::new(labels, logits)?;
    let out = kernels::softmax_ce(&**gpu, [n, k], z, labels.device()?, false, Some(1.0 / n as f32))?;
    let dz = out.dz.ok_or_else(|| Error::Device("softmax_ce returned no gradient".into()))?;
    Ok((Tensor::new_gpu(out.loss, gpu, &[1], false), Tensor::new_gpu(dz, gpu, &[n, k], false)))
}

/// Hinton's loss of `[n, k]` logits at temperature `temp`: the loss and both tempered
/// log-softmaxes.
pub(super) fn kd_forward(s: &Tensor, t: &Tensor, temp: f32, [n, k]: [usize; 2]) -> Result<[Tensor; 3]> {
    match gpu_of("kd_loss", &[s, t])? {
        Some(gpu) => {
            let out = kernels::kd_forward(&*gpu, [n, k], temp, s.gpu_buf()?, t.gpu_buf()?)?;
            let on = |b, shape: &[usize]| Tensor::new_gpu(b, &gpu, shape, false);
            Ok([on(out.loss, &[1]), on(out.ls, &[n, k]), on(out.lt, &[n, k])])
        }
        None => {
            let (mut ls, mut lt) = (vec![0.0; n * k], vec![0.0; n * k]);
            let sum = kd::cpu::forward(k, s.host()?, t.host()?, 1.0 / temp, &mut ls, &mut lt);
            let loss = (temp as f64).powi(2) * sum / n as f64;
            Ok([host_loss(loss), Tensor::new_cpu(ls, &[n, k], false), Tensor::new_cpu(lt, &[n, k], false)])
        }
    }
}

/// The gradients of `scale * sum KL` at the student and the teacher logits, each when `want`s it.
pub(super) fn kd_backward(
    [ls, lt]: [&Tensor; 2],
    [n, k]: [usize; 2],
    scale: f32,
    want: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    match gpu_of("kd_loss", &[ls, lt])? {
        Some(gpu) => {
            let TwoGrads { first, second } =
                kernels::kd_backward(&*gpu, [n, k], scale, [ls.gpu_buf()?, lt.gpu_buf()?], want[1])?;
            let on = |b| Tensor::new_gpu(b, &gpu, &[n, k], false);
            Ok([want[0].then(|| on(first)), second.map(on)])
        }
        None => {
            let (ls, lt) = (ls.host()?, lt.host()?);
            let ds =
                want[0].then(|| Tensor::new_cpu(kd::cpu::backward_student(ls, lt, scale), &[n, k], false));
            let dt =
                want[1].then(|| Tensor::new_cpu(kd::cpu::backward_teacher(k, ls, lt, scale), &[n, k], false));
            Ok([ds, dt])
        }
    }
}

/// `x / max(||x||, NORM_EPS)` per row of `d`, shaped `shape`, and the norms `[rows]`.
pub(super) fn normalize_rows(x: &Tensor, [rows, d]: [usize; 2], shape: &[usize]) -> Result<[Tensor; 2]> {
    match x.gpu() {
        Some((buf, gpu)) => {
            let (phi, norms) = kernels::normalize_rows(&**gpu, [rows, d], buf)?;
            Ok([Tensor::new_gpu(phi, gpu, shape, false), Tensor::new_gpu(norms, gpu, &[rows], false)])
        }
        None => {
            let mut phi = vec![0.0; rows * d];
            let norms = factor_cpu::normalize_rows(d, x.host()?, &mut phi);
            Ok([Tensor::new_cpu(phi, shape, false), Tensor::new_cpu(norms, &[rows], false)])
        }
    }
}

/// The gradient reaching the rows of [`normalize_rows`] from `g` reaching its output.
pub(super) fn normalize_rows_backward(
    [phi, norms, g]: [&Tensor; 3],
    [rows, d]: [usize; 2],
) -> Result<Tensor> {
    match gpu_of("normalize_rows", &[phi, norms, g])? {
        Some(gpu) => {
            let dx = kernels::normalize_rows_backward(
                &*gpu,
                [rows, d],
                [phi.gpu_buf()?, norms.gpu_buf()?, g.gpu_buf()?],
            )?;
            Ok(Tensor::new_gpu(dx, &gpu, phi.shape(), false))
        }
        None => {
            let dx = factor_cpu::normalize_rows_backward(d, phi.host()?, norms.host()?, g.host()?);
            Ok(Tensor::new_cpu(dx, phi.shape(), false))
        }
    }
}

/// `sign / count * sum |pa - pb|^p` over rows of `d` (`p` from `norm`), one element.
pub(super) fn factor_distance(
    [pa, pb]: [&Tensor; 2],
    [rows, d]: [usize; 2],
    norm: FactorNorm,
    sign: f32,
) -> Result<Tensor> {
    let count = rows * d;
    match gpu_of("factor_loss", &[pa, pb])? {
        Some(gpu) => {
            let f = if norm == FactorNorm::L2 { RowReduce::SquaredDiff } else { RowReduce::AbsDiff };
            let per_row = kernels::row_reduce(&*gpu, [rows, d], f, pa.gpu_buf()?, pb.gpu_buf()?)?;
            Ok(Tensor::new_gpu(device_total(&gpu, &per_row, sign / count as f32)?, &gpu, &[1], false))
        }
        None => {
            let per_row = factor_cpu::distance(d, pa.host()?, pb.host()?, norm);
            Ok(host_loss(sign as f64 * per_row.iter().sum::<f64>() / count as f64))
        }
    }
}

/// The gradients at `pa` and `pb` of `sign / count * sum |pa - pb|^p` for a loss gradient `dy`.
pub(super) fn factor_distance_backward(
    [pa, pb]: [&Tensor; 2],
    norm: FactorNorm,
    sign: f32,
    dy: f32,
) -> Result<[Tensor; 2]> {
    let count = pa.numel();
    match gpu_of("factor_loss", &[pa, pb])? {
        Some(gpu) => {
            let scale = sign * dy / count as f32;
            let squared = norm == FactorNorm::L2;
            let g = kernels::diff_backward(&*gpu, squared, scale, pa.gpu_buf()?, pb.gpu_buf()?, true)?;
            let gb = g.second.ok_or_else(|| Error::Device("diff_backward returned one gradient".into()))?;
            Ok([g.first, gb].map(|b| Tensor::new_gpu(b, &gpu, pa.shape(), false)))
        }
        None => {
            let scale = (sign as f64 * dy as f64 / count as f64) as f32;
            let ga = factor_cpu::distance_backward(pa.host()?, pb.host()?, norm, scale);
            let gb = ga.iter().map(|g| -g).collect();
            Ok([Tensor::new_cpu(ga, pa.shape(), false), Tensor::new_cpu(gb, pb.shape(), false)])
        }
    }
}

/// The row dots `<pa, pb>` over rows of `d` (`[rows]`) and `1/rows * sum |dots|`, one element.
pub(super) fn factor_dots([pa, pb]: [&Tensor; 2], [rows, d]: [usize; 2]) -> Result<[Tensor; 2]> {
    match gpu_of("factor_dot_loss", &[pa, pb])? {
        Some(gpu) => {
            let dots = kernels::row_reduce(&*gpu, [rows, d], RowReduce::Dot, pa.gpu_buf()?, pb.gpu_buf()?)?;
            // |v| as the leaky ReLU of slope -1.
            let abs = leaky_relu_forward(&*gpu, -1.0, &dots)?;
            let loss = device_total(&gpu, &abs, 1.0 / rows as f32)?;
            Ok([Tensor::new_gpu(dots, &gpu, &[rows], false), Tensor::new_gpu(loss, &gpu, &[1], false)])
        }
        None => {
            let dots = factor_cpu::dots(d, pa.host()?, pb.host()?);
            let loss = dots.iter().map(|v| v.abs()).sum::<f64>() / rows as f64;
            let dots = dots.iter().map(|&v| v as f32).collect();
            Ok([Tensor::new_cpu(dots, &[rows], false), host_loss(loss)])
        }
    }
}

/// `scale * sign(dots[r]) * other[r, :]`, the gradient of `scale * sum_r |dots[r]|` at the factor
/// that multiplies `other`.
pub(super) fn dots_backward(
    dots: &Tensor,
    other: &Tensor,
    [rows, d]: [usize; 2],
    scale: f32,
) -> Result<Tensor> {
    map2_on(
        "factor_dot_loss",
        [dots, other],
        other.shape(),
        |dots, other| factor_cpu::dots_backward(d, dots, other, scale),
        |gpu, dots, other| kernels::dots_backward(gpu, [rows, d], scale, dots, other),
    )
}

/// `1/M * sum |a - b|` (`squared = false`) or `1/M * sum (a - b)^2` over all `M` elements.
pub(super) fn recon_forward(a: &Tensor, b: &Tensor, squared: bool) -> Result<Tensor> {
    let m = a.numel();
    match gpu_of("recon_loss", &[a, b])? {
        Some(gpu) => {
            let f = if squared { RowReduce::SquaredDiff } else { RowReduce::AbsDiff };
            let sum = kernels::row_reduce(&*gpu, [1, m], f, a.gpu_buf()?, b.gpu_buf()?)?;
            Ok(Tensor::new_gpu(builtin::scale(&*gpu, 1.0 / m as f32, &sum)?, &gpu, &[1], false))
        }
        None => Ok(host_loss(recon::cpu::forward(a.host()?, b.host()?, squared) / m as f64)),
    }
}

/// The gradient at `a` of `scale * sum |a - b|^p`, and at `b` (its negation) when `want_b`.
pub(super) fn recon_backward(
    [a, b]: [&Tensor; 2],
    squared: bool,
    scale: f32,
    want_b: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    match gpu_of("recon_loss", &[a, b])? {
        Some(gpu) => {
            let g = kernels::diff_backward(&*gpu, squared, scale, a.gpu_buf()?, b.gpu_buf()?, want_b)?;
            let on = |buf| Tensor::new_gpu(buf, &gpu, a.shape(), false);
            Ok((on(g.first), g.second.map(on)))
        }
        None => {
            let da = recon::cpu::backward(a.host()?, b.host()?, squared, scale);
            let db = want_b.then(|| Tensor::new_cpu(da.iter().map(|g| -g).collect(), b.shape(), false));
            Ok((Tensor::new_cpu(da, a.shape(), false), db))
        }
    }
}

/// `q[p] = sum_c x[p, c]^2 / C` for `x` of `pixels` rows of `c` channels.
pub(super) fn channel_mean_square(x: &Tensor, [pixels, c]: [usize; 2]) -> Result<Tensor> {
    map_on(
        x,
        &[pixels],
        |x| attention::cpu::channel_mean_square(c, x),
        |gpu, x| kernels::channel_mean_square(gpu, [pixels, c], x, None),
    )
}

/// `dx = 2 / C * dq[p] * x[p, :]`, the backward of [`channel_mean_square`].
pub(super) fn channel_mean_square_backward(
    x: &Tensor,
    dq: &Tensor,
    [pixels, c]: [usize; 2],
) -> Result<Tensor> {
    map2_on(
        "attention_map",
        [x, dq],
        x.shape(),
        |x, dq| attention::cpu::channel_mean_square_backward(c, x, dq),
        |gpu, x, dq| kernels::channel_mean_square(gpu, [pixels, c], x, Some(dq)),
    )
}
