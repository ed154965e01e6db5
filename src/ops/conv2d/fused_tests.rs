//! The one-launch weight gradient on the emulated device: launches and allocations counted, and
//! the result bit for bit the one of the separate steps it replaces.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::ConvGeometry;
use super::launch::ConvProduct::BackwardWeight;
use super::launch::conv2d as launch_conv;
use crate::cuda::exec::Exec;
use crate::cuda::gpu::Gpu;
use crate::tensor::Tensor;

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
        assert_eq!((d.allocs, d.uploads), (if run == 0 { (3, 1) } else { (2, 0) }), "run {run}: {d:?}");
        let got = gpu.download(&dw).unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "run {run}");
        let tickets = gpu.with_tickets(4, |t| gpu.download(t)).unwrap();
        assert!(tickets.iter().all(|&t| t == 0), "tickets left {tickets:?}");
    }
}
