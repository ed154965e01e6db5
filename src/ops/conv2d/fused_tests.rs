//! The one-launch weight gradient, the data gradient added in place and both gradients in one
//! launch, on the emulated device:
//! launches and allocations counted, and each result bit for bit the one of the separate steps it
//! replaces.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::launch::ConvProduct::{BackwardData, BackwardWeight};
use super::launch::{conv2d as launch_conv, conv2d_backward, conv2d_backward_data_into};
use super::{ConvGeometry, conv2d};
use crate::cuda::exec::Exec;
use crate::cuda::gpu::Gpu;
use crate::cuda::launch::builtin::{Binary, binary, scale as scale_buf};
use crate::ops::{add, scale};
use crate::tensor::Tensor;
use crate::tensor::autograd::backward_with;
use crate::tensor::device::Device;

fn random(shape: &[usize], rng: &mut ChaCha8Rng) -> Vec<f32> {
    Tensor::randn(shape, 1.0, rng).to_vec().expect("host tensor")
}

/// The weight gradient as the split-K design with a separate reduce computed it: slice `z` of
/// `split_rows` output pixels summed in order per `(co, k)`, then the slices added in order.
fn split_then_reduce(g: &ConvGeometry, x: &[f32], dy: &[f32], split_rows: usize) -> Vec<f32> {
    let (taps, rows) = (g.kh * g.kw, g.n * g.h_out * g.w_out);
    let im2col = |m: usize, k: usize| {
        let (ci, tap) = (k % g.c_in, k / g.c_in);
        let (ow, oh, n) = (m % g.w_out, m / g.w_out % g.h_out, m / (g.w_out * g.h_out));
        let ih = (oh * g.stride + tap / g.kw) as isize - g.pad as isize;
        let iw = (ow * g.stride + tap % g.kw) as isize - g.pad as isize;
        if ih < 0 || iw < 0 || ih as usize >= g.h || iw as usize >= g.w {
            return 0.0;
        }
        x[((n * g.h + ih as usize) * g.w + iw as usize) * g.c_in + ci]
    };
    let mut dw = vec![0.0f32; g.c_out * g.k()];
    for co in 0..g.c_out {
        for k in 0..g.k() {
            let mut sum = 0.0f32;
            for first in (0..rows).step_by(split_rows) {
                let mut slice = 0.0f32;
                for m in first..rows.min(first + split_rows) {
                    slice += dy[m * g.c_out + co] * im2col(m, k);
                }
                sum += slice;
            }
            dw[(co * g.c_in + k % g.c_in) * taps + k / g.c_in] = sum;
        }
    }
    dw
}

#[test]
fn backward_weight_is_one_launch_equal_to_split_then_reduce() {
    let gpu = Gpu::emulated();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // 768 output pixels: three slices of 256; 70 x 81 weights: 2 x 2 output tiles.
    let g = ConvGeometry::new("test", &[3, 16, 16, 9], &[70, 9, 3, 3], 1, 1).unwrap();
    let x = random(&[3, 16, 16, 9], &mut rng);
    let dy = random(&[3, 16, 16, 70], &mut rng);
    let want = split_then_reduce(&g, &x, &dy, 256);
    let (xb, dyb) = (gpu.upload(&x).unwrap(), gpu.upload(&dy).unwrap());
    for run in 0..2 {
        let before = gpu.counts();
        let dw = launch_conv(&gpu, &g, BackwardWeight, [&xb, &dyb], None).unwrap();
        let d = gpu.counts() - before;
        assert_eq!(d.launches, 1, "run {run}: {d:?}");
        // The workspace and dw; the tickets are uploaded once, on the first run.
        assert_eq!((d.buffers, d.uploads), (if run == 0 { (3, 1) } else { (2, 0) }), "run {run}: {d:?}");
        let got = gpu.download(&dw).unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "run {run}");
        let tickets = gpu.with_tickets(4, |t| gpu.download(t)).unwrap();
        assert!(tickets.iter().all(|&t| t == 0), "tickets left {tickets:?}");
    }
}

#[test]
fn backward_data_adds_in_place_as_the_separate_add() {
    let gpu = Gpu::emulated();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let g = ConvGeometry::new("test", &[2, 9, 7, 5], &[66, 5, 3, 3], 2, 1).unwrap();
    let dy = gpu.upload(&random(&[2, g.h_out, g.w_out, 66], &mut rng)).unwrap();
    let w = gpu.upload(&random(&[66, 5, 3, 3], &mut rng)).unwrap();
    let acc = random(&[2, 9, 7, 5], &mut rng);
    let product = launch_conv(&gpu, &g, BackwardData, [&dy, &w], None).unwrap();
    let separate = gpu.download(&binary(&gpu, Binary::Add, &gpu.upload(&acc).unwrap(), &product).unwrap());
    let mut sum = gpu.upload(&acc).unwrap();
    let before = gpu.counts();
    conv2d_backward_data_into(&gpu, &g, [&dy, &w], &mut sum).unwrap();
    let d = gpu.counts() - before;
    assert_eq!((d.launches, d.buffers), (1, 0), "{d:?}");
    let got = gpu.download(&sum).unwrap();
    assert!(got.iter().zip(&separate.unwrap()).all(|(a, b)| a.to_bits() == b.to_bits()));
    let mut short = gpu.upload(&acc[1..]).unwrap();
    let err = conv2d_backward_data_into(&gpu, &g, [&dy, &w], &mut short).unwrap_err().to_string();
    assert!(err.contains("the gradient to add into"), "{err}");
}

/// `x` read by a convolution and by a scaling, as a residual block's input is read by its first
/// convolution and its shortcut: the scaling's gradient reaches `x` first, and the convolution's
/// backward adds into it.
#[test]
fn a_second_gradient_from_a_convolution_is_added_in_place() {
    let gpu = Arc::new(Gpu::emulated());
    let device = Device::Cuda(Arc::clone(&gpu));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let shape = [2, 6, 5, 4];
    let x = Tensor::randn(&shape, 1.0, &mut rng).to_device(&device).unwrap().into_param();
    let w = Tensor::randn(&[4, 4, 3, 3], 1.0, &mut rng).to_device(&device).unwrap();
    let seed_host = Tensor::randn(&shape, 1.0, &mut rng);
    let seed = seed_host.to_device(&device).unwrap();
    let z = add(&conv2d(&x, &w, None, 1, 1).unwrap(), &scale(&x, 0.5).unwrap()).unwrap();
    let before = gpu.counts();
    let grads = backward_with(&z, seed.clone()).unwrap();
    let d = gpu.counts() - before;
    // The scaling's gradient (one launch, one buffer), then the convolution's added into it.
    assert_eq!((d.launches, d.buffers), (2, 1), "{d:?}");
    let got = grads.get(&x).expect("x has a gradient").to_vec().unwrap();

    // The separate steps: both gradients, then their sum in a new buffer.
    let g = ConvGeometry::new("test", &shape, &[4, 4, 3, 3], 1, 1).unwrap();
    let (dy, wb) = (seed.gpu_buf().unwrap(), w.gpu_buf().unwrap());
    let scaled = scale_buf(&*gpu, 0.5, dy).unwrap();
    let product = launch_conv(&*gpu, &g, BackwardData, [dy, wb], None).unwrap();
    let want = gpu.download(&binary(&*gpu, Binary::Add, &scaled, &product).unwrap()).unwrap();
    assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(seed.to_vec().unwrap(), seed_host.to_vec().unwrap(), "the seed is untouched");
}

/// Both gradients from one launch equal the two separate launches bit for bit, overwriting the
/// data gradient and adding into it, on awkward sizes: odd channels, stride 2, two weight slices
/// and two data-gradient column tiles.
#[test]
fn both_gradients_are_one_launch_equal_to_the_separate_products() {
    let gpu = Gpu::emulated();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (xs, ws) = ([3, 13, 11, 67], [5, 67, 3, 3]);
    let g = ConvGeometry::new("test", &xs, &ws, 2, 1).unwrap();
    let x = gpu.upload(&random(&xs, &mut rng)).unwrap();
    let w = gpu.upload(&random(&ws, &mut rng)).unwrap();
    let dy = gpu.upload(&random(&[3, g.h_out, g.w_out, 5], &mut rng)).unwrap();
    let acc = random(&xs, &mut rng);
    let want_dw = gpu.download(&launch_conv(&gpu, &g, BackwardWeight, [&x, &dy], None).unwrap()).unwrap();
    let product = launch_conv(&gpu, &g, BackwardData, [&dy, &w], None).unwrap();
    let added = binary(&gpu, Binary::Add, &gpu.upload(&acc).unwrap(), &product).unwrap();
    for (accumulate, want_dx) in [(false, &product), (true, &added)] {
        let want_dx = gpu.download(want_dx).unwrap();
        let mut dx = gpu.upload(&acc).unwrap();
        let before = gpu.counts();
        let dw = conv2d_backward(&gpu, &g, [&x, &dy, &w], &mut dx, accumulate).unwrap();
        let d = gpu.counts() - before;
        assert_eq!(d.launches, 1, "accumulate {accumulate}: {d:?}");
        let same = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        assert!(same(&gpu.download(&dx).unwrap(), &want_dx), "dx, accumulate {accumulate}");
        assert!(same(&gpu.download(&dw).unwrap(), &want_dw), "dw, accumulate {accumulate}");
    }
    let tickets = gpu.with_tickets(1, |t| gpu.download(t)).unwrap();
    assert!(tickets.iter().all(|&t| t == 0), "tickets left {tickets:?}");
    let mut short = gpu.upload(&acc[1..]).unwrap();
    let err = conv2d_backward(&gpu, &g, [&x, &dy, &w], &mut short, true).unwrap_err().to_string();
    assert!(err.contains("the data gradient"), "{err}");
}

/// Through autograd, a convolution whose input and weight both need gradients runs one backward
/// launch, adding into the input's gradient from the other reader in place.
#[test]
fn a_convolution_backward_is_one_launch() {
    let gpu = Arc::new(Gpu::emulated());
    let device = Device::Cuda(Arc::clone(&gpu));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let shape = [1, 5, 6, 3];
    let x = Tensor::randn(&shape, 1.0, &mut rng).to_device(&device).unwrap().into_param();
    let w = Tensor::randn(&[3, 3, 3, 3], 1.0, &mut rng).to_device(&device).unwrap().into_param();
    let seed = Tensor::randn(&shape, 1.0, &mut rng).to_device(&device).unwrap();
    let z = add(&conv2d(&x, &w, None, 1, 1).unwrap(), &scale(&x, 0.5).unwrap()).unwrap();
    let before = gpu.counts();
    let grads = backward_with(&z, seed.clone()).unwrap();
    let d = gpu.counts() - before;
    // The scaling's gradient (one launch, one buffer); then both of the convolution's (one
    // launch; dw, the weight slices' workspace, and the device's tickets, uploaded on first use).
    assert_eq!(d.launches, 2, "{d:?}");
    assert_eq!((d.buffers, d.uploads), (4, 1), "{d:?}");
    let g = ConvGeometry::new("test", &shape, &[3, 3, 3, 3], 1, 1).unwrap();
    let (dy, xb) = (seed.gpu_buf().unwrap(), x.gpu_buf().unwrap());
    let want = gpu.download(&launch_conv(&*gpu, &g, BackwardWeight, [xb, dy], None).unwrap()).unwrap();
    assert_eq!(grads.get(&w).expect("w has a gradient").to_vec().unwrap(), want);
}
