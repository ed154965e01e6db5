//! Gradient accumulation on a device: a second gradient of a tensor is added into the first one's
//! buffer when no other tensor holds it (`crate::tensor::autograd::Gradients::accumulate`).

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cuda::counters::Counts;
use crate::cuda::gpu::Gpu;
use crate::ops::{add, scale};
use crate::tensor::Tensor;
use crate::tensor::autograd::backward_with;
use crate::tensor::device::Device;

/// `x` and `seed` of `shape` on the CPU and on an emulated device of their own (whose counts
/// are this test's alone).
fn inputs(shape: &[usize]) -> ([Tensor; 2], [Tensor; 2]) {
    let device = Device::Cuda(Arc::new(Gpu::emulated()));
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let host = [Tensor::randn(shape, 1.0, &mut rng), Tensor::randn(shape, 1.0, &mut rng)];
    let on = |t: &Tensor| t.to_device(&device).unwrap();
    ([on(&host[0]), on(&host[1])], host)
}

/// The gradient of `x` for `f(x)` with the upstream gradient `seed`, and what the backward
/// pass did on the device (nothing on the CPU).
fn grad_of(x: &Tensor, seed: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> (Vec<f32>, Counts) {
    let x = x.clone().into_param();
    let y = f(&x);
    let counts = || x.gpu().map(|(_, gpu)| gpu.counts()).unwrap_or_default();
    let before = counts();
    let grads = backward_with(&y, seed.clone()).unwrap();
    let done = counts() - before;
    (grads.get(&x).expect("a gradient of x").to_vec().unwrap(), done)
}

#[test]
fn a_second_gradient_is_added_into_the_first_ones_buffer() {
    let ([x, seed], [x_cpu, seed_cpu]) = inputs(&[3, 70]);
    let f = |x: &Tensor| add(&scale(x, 2.0).unwrap(), &scale(x, -3.0).unwrap()).unwrap();
    let (got, d) = grad_of(&x, &seed, f);
    // Two scalings, each a launch and a buffer, and the add in place.
    assert_eq!((d.launches, d.buffers), (3, 2), "{d:?}");
    assert_eq!(got, grad_of(&x_cpu, &seed_cpu, f).0, "the CPU's values, bit for bit");
}

#[test]
fn a_gradient_shared_with_another_tensor_is_not_changed_in_place() {
    let ([x, seed], [_, seed_cpu]) = inputs(&[257]);
    // Both gradients of x are the upstream gradient itself, which `seed` still holds.
    let (got, d) = grad_of(&x, &seed, |x| add(x, x).unwrap());
    assert_eq!((d.launches, d.buffers), (1, 1), "a new buffer: {d:?}");
    let seed_values = seed_cpu.to_vec().unwrap();
    assert_eq!(got, seed_values.iter().map(|v| v + v).collect::<Vec<_>>());
    assert_eq!(seed.to_vec().unwrap(), seed_values, "the seed is untouched");
}
