//! A minimal reverse-mode tape.
//!
//! Ops record a backward closure for each output that requires a gradient. [`backward`] runs the
//! closures in reverse order of recording; each takes the gradient of its output and adds the
//! gradients of its inputs into [`Gradients`]. Leaves (tensors made with
//! [`Tensor::into_param`](crate::Tensor::into_param)) keep their gradients; the gradients of
//! intermediate results are dropped as soon as they have been used. [`no_grad`] stops recording,
//! for frozen teachers and evaluation.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use crate::cuda::launch::builtin::add_into;
use crate::error::{Error, Result};
use crate::tensor::dispatch::add_untracked;
use crate::tensor::{Tensor, TensorId};

/// The backward rule of one recorded op: given the output's gradient, accumulate the inputs'.
type BackwardFn = Box<dyn FnOnce(&Tensor, &mut Gradients) -> Result<()>>;

struct Node {
    output: TensorId,
    backward: BackwardFn,
}

thread_local! {
    static TAPE: RefCell<Vec<Node>> = const { RefCell::new(Vec::new()) };
    static RECORDING: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread are being recorded.
pub fn is_recording() -> bool {
    RECORDING.with(Cell::get)
}

/// Records the backward rule of an op whose result is `output`; nothing when it needs no gradient.
pub(crate) fn record(
    output: &Tensor,
    backward: impl FnOnce(&Tensor, &mut Gradients) -> Result<()> + 'static,
) {
    if output.requires_grad() {
        TAPE.with(|t| t.borrow_mut().push(Node { output: output.id(), backward: Box::new(backward) }));
    }
}

/// Forgets everything recorded on this thread (after an aborted step, say).
pub fn clear_tape() {
    TAPE.with(|t| t.borrow_mut().clear());
}

/// While alive, ops record nothing and their results need no gradient.
#[must_use = "recording resumes when the guard is dropped"]
pub struct NoGradGuard {
    previous: bool,
}

/// Stops recording until the returned guard is dropped.
pub fn no_grad() -> NoGradGuard {
    NoGradGuard { previous: RECORDING.with(|r| r.replace(false)) }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        RECORDING.with(|r| r.set(self.previous));
    }
}

/// Gradients of the leaves (and, during the backward pass, of pending intermediate results).
#[derive(Default)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl Gradients {
    /// The gradient of `t`, if any reached it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    /// Adds `grad` to the gradient of `t`; ignored when `t` needs no gradient. A second gradient
    /// is added into the first one's storage where it can be (`add_grads`).
    pub fn accumulate(&mut self, t: &Tensor, grad: Tensor) -> Result<()> {
        if !t.requires_grad() {
            return Ok(());
        }
        check_shape(t, &grad)?;
        let sum = match self.map.remove(&t.id()) {
            Some(acc) => add_grads(acc, &grad)?,
            None => grad.detach(),
        };
        self.map.insert(t.id(), sum);
        Ok(())
    }

    /// Takes out the gradient of `t` accumulated so far, for an op whose kernel adds its own
    /// gradient of `t` into that buffer (the convolution's data gradient); the op gives the sum
    /// back with [`Gradients::put_grad`]. `None` when no gradient reached `t` yet.
    pub fn take_grad(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }

    /// Sets the gradient of `t` to `grad`: the sum built on what [`Gradients::take_grad`] took
    /// out, or the first gradient when it took nothing; ignored when `t` needs no gradient.
    pub fn put_grad(&mut self, t: &Tensor, grad: Tensor) -> Result<()> {
        if !t.requires_grad() {
            return Ok(());
        }
        check_shape(t, &grad)?;
        self.map.insert(t.id(), grad.detach());
        Ok(())
    }

    fn take(&mut self, id: TensorId) -> Option<Tensor> {
        self.map.remove(&id)
    }
}

/// Checks that `grad` has the shape of `t`.
fn check_shape(t: &Tensor, grad: &Tensor) -> Result<()> {
    if grad.shape() == t.shape() {
        return Ok(());
    }
    Err(Error::shape(
        "backward",
        format!("gradient of shape {:?} for a tensor of shape {:?}", grad.shape(), t.shape()),
    ))
}

/// `acc + grad`, two gradients of one tensor, in `acc`'s storage where it can be: on the CPU
/// (copied first when another tensor shares it), or on a device when no other tensor holds
/// `acc`'s buffer (one launch, no new buffer); else in a new buffer. The same values everywhere.
pub(crate) fn add_grads(mut acc: Tensor, grad: &Tensor) -> Result<Tensor> {
    if acc.device().is_cpu() && grad.device().is_cpu() {
        for (a, g) in acc.host_mut()?.iter_mut().zip(grad.host()?) {
            *a += g;
        }
        return Ok(acc);
    }
    let in_place = match (acc.gpu_mut_unshared(), grad.gpu()) {
        (Some((buf, gpu)), Some((g, g_gpu))) if Arc::ptr_eq(gpu, g_gpu) => {
            add_into(&**gpu, g, buf)?;
            true
        }
        _ => false,
    };
    if in_place { Ok(acc) } else { add_untracked(&acc, grad) }
}

/// Back-propagates from a one-element `loss`; returns the gradients of the leaves.
pub fn backward(loss: &Tensor) -> Result<Gradients> {
    if loss.numel() != 1 {
        clear_tape();
        return Err(Error::shape(
            "backward",
            format!("loss must have one element, got shape {:?}", loss.shape()),
        ));
    }
    let seed = Tensor::full(loss.shape(), 1.0).to_device(&loss.device());
    match seed {
        Ok(seed) => backward_with(loss, seed),
        Err(e) => {
            clear_tape();
            Err(e)
        }
    }
}

/// Back-propagates the gradient `seed` of `output`; returns the gradients of the leaves.
/// The whole tape of this thread is consumed.
pub fn backward_with(output: &Tensor, seed: Tensor) -> Result<Gradients> {
    let nodes = TAPE.with(|t| std::mem::take(&mut *t.borrow_mut()));
    if seed.shape() != output.shape() {
        return Err(Error::shape(
            "backward",
            format!("seed of shape {:?} for an output of shape {:?}", seed.shape(), output.shape()),
        ));
    }
    let mut grads = Gradients::default();
    grads.map.insert(output.id(), seed);
    for node in nodes.into_iter().rev() {
        if let Some(dy) = grads.take(node.output) {
            (node.backward)(&dy, &mut grads)?;
        }
    }
    Ok(grads)
}
