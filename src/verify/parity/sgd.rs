//! The SGD kernel against `optim::cpu`: several tensors of awkward lengths in one launch.

use super::{Ctx, Tol};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::optim::launch::{SgdTensor, sgd_step};
use crate::optim::{SgdConfig, cpu as sgd};

/// A few operations that a GPU may fuse into one multiply-add.
const FUSED: Tol = Tol { atol: 1e-7, rtol: 1e-6 };

/// The lengths of the tensors updated together.
const LENS: [usize; 3] = [1000, 37, 1];

/// Two steps of each optimiser setting (the first initialises the momentum buffers), the
/// learning rate passed as a parameter or read from device memory.
pub(super) fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let settings = [(0.0, 0.0, false), (0.0, 5e-4, false), (0.9, 5e-4, false), (0.9, 5e-4, true)];
    for ((momentum, weight_decay, nesterov), lr_on_device) in
        settings.into_iter().zip([false, true, false, true])
    {
        let cfg = SgdConfig { lr: 0.1, momentum, weight_decay, nesterov };
        let case = format!(
            "lens {LENS:?} m {momentum} wd {weight_decay} nesterov {nesterov} lr on device {lr_on_device}"
        );
        let mut p: Vec<Vec<f32>> = LENS.iter().map(|&n| cx.normal(n)).collect();
        let mut buf: Vec<Vec<f32>> = LENS.iter().map(|&n| vec![0.0; n]).collect();
        let mut pb = p.iter().map(|v| cx.up(v)).collect::<Result<Vec<_>>>()?;
        let mut bb = buf.iter().map(|v| cx.up(v)).collect::<Result<Vec<_>>>()?;
        let lr_at = cx.up(&[cfg.lr])?;
        for first in [true, false] {
            let g: Vec<Vec<f32>> = LENS.iter().map(|&n| cx.normal(n)).collect();
            let gb = g.iter().map(|v| cx.up(v)).collect::<Result<Vec<_>>>()?;
            for ((p, g), buf) in p.iter_mut().zip(&g).zip(&mut buf) {
                if momentum > 0.0 {
                    sgd::step_momentum(&cfg, p, g, buf, first);
                } else {
                    sgd::step_plain(&cfg, p, g);
                }
            }
            let mut tensors: Vec<SgdTensor<'_, E>> = pb
                .iter_mut()
                .zip(&gb)
                .zip(&mut bb)
                .map(|((param, grad), m)| SgdTensor { param, grad, momentum: (momentum > 0.0).then_some(m) })
                .collect();
            let lr = lr_on_device.then_some(&lr_at);
            sgd_step(
                cx.e,
                &SgdConfig { lr: if lr_on_device { 0.0 } else { cfg.lr }, ..cfg },
                first,
                lr,
                &mut tensors,
            )?;
            for (i, n) in LENS.iter().enumerate() {
                if momentum > 0.0 {
                    cx.compare("sgd_step", &format!("{case} buffer {n}"), &bb[i], &buf[i], FUSED)?;
                }
                cx.compare("sgd_step", &format!("{case} first {first} param {n}"), &pb[i], &p[i], FUSED)?;
            }
        }
    }
    Ok(())
}
