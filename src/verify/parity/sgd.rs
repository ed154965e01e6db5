//! The SGD kernel against `optim::cpu`.

use super::{Ctx, Tol};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::optim::launch::sgd_step;
use crate::optim::{SgdConfig, cpu as sgd};

/// A few operations that a GPU may fuse into one multiply-add.
const FUSED: Tol = Tol { atol: 1e-7, rtol: 1e-6 };

/// Two steps of each optimiser setting (the first initialises the momentum buffer).
pub(super) fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let settings = [(0.0, 0.0, false), (0.0, 5e-4, false), (0.9, 5e-4, false), (0.9, 5e-4, true)];
    for (momentum, weight_decay, nesterov) in settings {
        let cfg = SgdConfig { lr: 0.1, momentum, weight_decay, nesterov };
        let len = 1000;
        let case = format!("len {len} m {momentum} wd {weight_decay} nesterov {nesterov}");
        let (mut p, mut buf) = (cx.normal(len), vec![0.0; len]);
        let (mut pb, mut bb) = (cx.up(&p)?, cx.up(&buf)?);
        for first in [true, false] {
            let g = cx.normal(len);
            let gb = cx.up(&g)?;
            if momentum > 0.0 {
                sgd::step_momentum(&cfg, &mut p, &g, &mut buf, first);
                sgd_step(cx.e, &cfg, first, &gb, &mut pb, Some(&mut bb))?;
                cx.compare("sgd_step", &format!("{case} buffer"), &bb, &buf, FUSED)?;
            } else {
                sgd::step_plain(&cfg, &mut p, &g);
                sgd_step(cx.e, &cfg, first, &gb, &mut pb, None)?;
            }
            cx.compare("sgd_step", &format!("{case} first {first}"), &pb, &p, FUSED)?;
        }
    }
    Ok(())
}
