//! The device launcher of the SGD step (`kernels/optim.cu`): every tensor of a model in one launch.

use std::collections::HashSet;

use super::SgdConfig;
use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::launch::{fits, flat, non_empty};
use crate::cuda::params::SgdParams;
use crate::error::{Error, Result};

const OP: &str = "cuda sgd_step";

/// The most tensors one launch updates (the grid's y extent).
const MAX_TENSORS: usize = 65_535;

/// One tensor of an SGD step: its parameter (updated in place), its gradient, and its momentum
/// buffer when the step uses momentum.
pub struct SgdTensor<'a, E: Exec> {
    /// The parameter.
    pub param: &'a mut E::Buf<f32>,
    /// Its gradient, as many elements.
    pub grad: &'a E::Buf<f32>,
    /// Its momentum buffer, as many elements (overwritten on the first step).
    pub momentum: Option<&'a mut E::Buf<f32>>,
}

/// One SGD update of every tensor of `tensors` in one launch, as `crate::optim::cpu::step_plain`
/// and `step_momentum` do for each: the learning rate is read from `lr_at` (one element) when
/// given, so a replayed step follows the schedule, else `cfg.lr`.
pub fn sgd_step<E: Exec>(
    e: &E,
    cfg: &SgdConfig,
    first: bool,
    lr_at: Option<&E::Buf<f32>>,
    tensors: &mut [SgdTensor<'_, E>],
) -> Result<()> {
    non_empty(OP, "the tensor list", tensors.len())?;
    if tensors.len() > MAX_TENSORS {
        return Err(Error::invalid(OP, format!("{} tensors; at most {MAX_TENSORS}", tensors.len())));
    }
    let mut table = Vec::with_capacity(4 * tensors.len());
    let mut params = HashSet::new();
    let mut longest = 0;
    for (i, t) in tensors.iter().enumerate() {
        let len = e.len(t.param);
        non_empty(OP, "a parameter", len)?;
        fits(OP, &[("elements", len)])?;
        let momentum = t.momentum.as_deref().map(|m| e.len(m));
        if e.len(t.grad) != len || momentum.is_some_and(|m| m != len) {
            return Err(Error::shape(
                OP,
                format!(
                    "tensor {i}: parameter of {len} elements, gradient of {}, momentum buffer of {}",
                    e.len(t.grad),
                    momentum.unwrap_or(0)
                ),
            ));
        }
        match (cfg.momentum > 0.0, momentum.is_some()) {
            (true, false) => return Err(Error::invalid(OP, format!("tensor {i}: momentum needs a buffer"))),
            (false, true) => {
                return Err(Error::invalid(OP, format!("tensor {i}: a momentum buffer without momentum")));
            }
            _ => {}
        }
        if !params.insert(e.addr(t.param)) {
            return Err(Error::invalid(OP, format!("tensor {i}: a parameter listed twice")));
        }
        let m = t.momentum.as_deref().map_or(0, |m| e.addr(m));
        table.extend([e.addr(t.param), e.addr(t.grad), m, len as u64]);
        longest = longest.max(len);
    }
    let p = SgdParams {
        tensors: tensors.len() as i32,
        nesterov: cfg.nesterov as i32,
        first: first as i32,
        // Unused when read from device memory: a constant, so replayed steps record the same.
        lr: if lr_at.is_some() { 0.0 } else { cfg.lr },
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    let table = e.upload(&table)?;
    let Grid { blocks: [x, ..], threads } = flat(longest);
    let grid = Grid { blocks: [x, tensors.len() as u32, 1], threads };
    // SAFETY: the addresses in `table` are those of the live buffers borrowed by `tensors`, with
    // the lengths checked above and no parameter listed twice: the kernel touches nothing else.
    unsafe { kernels::sgd_step(e, grid, &p, &table, lr_at) }
}
