//! The products at a reduced precision are the fp32 products of rounded operands: forward and
//! gradients, convolution and linear layer, on the CPU exactly and on the emulated device within
//! the fp32 tolerance of a reordered sum.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Precision, set};
use crate::ops::{conv2d, linear};
use crate::tensor::Tensor;
use crate::tensor::autograd::backward_with;

fn rounded(t: &Tensor, p: Precision) -> Tensor {
    let v = t.to_vec().unwrap().iter().map(|&v| p.round(v)).collect();
    Tensor::from_vec(v, t.shape()).unwrap().into_param()
}

/// `f(x, w)` at precision `p` (output, dx, dw for the seed `dy`).
fn run(
    p: Precision,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    f: fn(&Tensor, &Tensor) -> Tensor,
) -> [Vec<f32>; 3] {
    let _p = set(p);
    let y = f(x, w);
    let g = backward_with(&y, dy.clone()).unwrap();
    [y.to_vec().unwrap(), g.get(x).unwrap().to_vec().unwrap(), g.get(w).unwrap().to_vec().unwrap()]
}

fn conv(x: &Tensor, w: &Tensor) -> Tensor {
    conv2d(x, w, None, 2, 1).unwrap()
}

fn lin(x: &Tensor, w: &Tensor) -> Tensor {
    linear(x, w, None).unwrap()
}

/// The products of `f` at `p` on the CPU, against fp32 products of operands rounded by hand: the
/// forward from rounded `x` and `w`; `dx` from rounded `dy` and `w`; `dw` from rounded `dy` and `x`.
fn check_cpu(p: Precision, shapes: [&[usize]; 3], f: fn(&Tensor, &Tensor) -> Tensor) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = Tensor::randn(shapes[0], 1.0, &mut rng).into_param();
    let w = Tensor::randn(shapes[1], 1.0, &mut rng).into_param();
    let dy = Tensor::randn(shapes[2], 1.0, &mut rng);
    let got = run(p, &x, &w, &dy, f);
    let (xr, wr, dyr) = (rounded(&x, p), rounded(&w, p), rounded(&dy, p));
    let want_y = run(Precision::Fp32, &xr, &wr, &dy, f)[0].clone();
    let [_, want_dx, want_dw] = run(Precision::Fp32, &xr, &wr, &dyr, f);
    assert_eq!(got, [want_y, want_dx, want_dw], "{p}");
    // And the rounding matters: fp32 products differ.
    assert_ne!(run(Precision::Fp32, &x, &w, &dy, f)[0], got[0], "{p}");
}

#[test]
fn convolution_products_round_their_operands() {
    for p in [Precision::Tf32, Precision::Bf16] {
        check_cpu(p, [&[2, 7, 6, 3], &[5, 3, 3, 3], &[2, 4, 3, 5]], conv);
    }
}

#[test]
fn linear_products_round_their_operands() {
    for p in [Precision::Tf32, Precision::Bf16] {
        check_cpu(p, [&[3, 17], &[5, 17], &[3, 5]], lin);
    }
}

/// On the emulated device, bf16 and tf32 products match the CPU's at the same precision.
#[cfg(feature = "cuda-emulation")]
#[test]
fn the_device_rounds_as_the_cpu() {
    use crate::tensor::device::Device;
    let device = Device::emulated().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let x = Tensor::randn(&[2, 7, 6, 3], 1.0, &mut rng).into_param();
    let w = Tensor::randn(&[5, 3, 3, 3], 1.0, &mut rng).into_param();
    let dy = Tensor::randn(&[2, 4, 3, 5], 1.0, &mut rng);
    let on = |t: &Tensor| t.to_device(&device).unwrap().into_param();
    for p in [Precision::Tf32, Precision::Bf16] {
        let cpu = run(p, &x, &w, &dy, conv);
        let gpu = run(p, &on(&x), &on(&w), &dy.to_device(&device).unwrap(), conv);
        for (what, (a, b)) in ["y", "dx", "dw"].iter().zip(cpu.iter().zip(&gpu)) {
            let worst =
                a.iter().zip(b).map(|(a, b)| (a - b).abs() / (1e-4 + 1e-5 * a.abs())).fold(0f32, f32::max);
            assert!(worst <= 1.0, "{p} {what}: worst {worst}");
        }
    }
}
