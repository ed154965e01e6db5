//! Every CPU path (pointwise, im2col, shifted rows, flipped backward-data, direct) against the f64
//! reference at sizes the gradient checks are too small to reach: several chunks of images, and
//! images large enough for the shifted-rows path.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::reference::{self, Operands};
use super::{ConvGeometry, cpu};
use crate::tensor::Tensor;

/// Naive f64 `dx` and `dw` of `y = conv(x, w)` for the upstream gradient `dy`.
fn reference_grads(g: &ConvGeometry, x: &[f64], w: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; w.len()]);
    for n in 0..g.n {
        for oh in 0..g.h_out {
            for ow in 0..g.w_out {
                for co in 0..g.c_out {
                    let d = dy[((n * g.h_out + oh) * g.w_out + ow) * g.c_out + co];
                    for ci in 0..g.c_in {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let ih = (oh * g.stride + i) as isize - g.pad as isize;
                                let iw = (ow * g.stride + j) as isize - g.pad as isize;
                                if ih < 0 || iw < 0 || ih as usize >= g.h || iw as usize >= g.w {
                                    continue;
                                }
                                let xi = ((n * g.h + ih as usize) * g.w + iw as usize) * g.c_in + ci;
                                let wi = ((co * g.c_in + ci) * g.kh + i) * g.kw + j;
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (&a, &r)) in got.iter().zip(want).enumerate() {
        assert!((a as f64 - r).abs() <= 1e-4 * scale + 1e-5, "{what}[{i}]: {a} vs {r}");
    }
}

fn check(x_shape: [usize; 4], w_shape: [usize; 4], stride: usize, pad: usize, bias: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let g = ConvGeometry::new("conv2d", &x_shape, &w_shape, stride, pad).unwrap();
    let x = Tensor::randn(&x_shape, 1.0, &mut rng).to_vec().unwrap();
    let w = Tensor::randn(&w_shape, 1.0, &mut rng).to_vec().unwrap();
    let b = Tensor::randn(&[w_shape[0]], 1.0, &mut rng).to_vec().unwrap();
    let dy = Tensor::randn(&[g.n, g.h_out, g.w_out, g.c_out], 1.0, &mut rng).to_vec().unwrap();
    let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let (x64, w64, b64, dy64) = (f64s(&x), f64s(&w), f64s(&b), f64s(&dy));
    let want_y = reference::conv2d(
        Operands { x: &x64, xs: x_shape, w: &w64, ws: w_shape, b: bias.then_some(&b64[..]) },
        stride,
        pad,
    );
    let (want_dx, want_dw) = reference_grads(&g, &x64, &w64, &dy64);
    let label = format!("x{x_shape:?} w{w_shape:?} s{stride} p{pad}");
    assert_close(&format!("{label} forward"), &cpu::forward(&g, &x, &w, bias.then_some(&b[..])), &want_y);
    assert_close(&format!("{label} backward-data"), &cpu::backward_data(&g, &dy, &w), &want_dx);
    assert_close(&format!("{label} backward-weight"), &cpu::backward_weight(&g, &x, &dy), &want_dw);
}

#[test]
fn shifted_rows_path_on_large_images() {
    check([3, 24, 23, 5], [7, 5, 3, 3], 1, 1, true);
    check([2, 32, 17, 9], [8, 9, 3, 3], 1, 0, false);
}

#[test]
fn im2col_path_over_several_chunks() {
    check([37, 6, 5, 3], [4, 3, 3, 3], 1, 1, true);
    check([20, 9, 8, 4], [6, 4, 3, 3], 2, 1, false);
    check([1, 24, 24, 3], [5, 3, 5, 5], 2, 2, false);
}

#[test]
fn pointwise_paths() {
    check([40, 5, 5, 6], [3, 6, 1, 1], 1, 0, true);
    check([9, 8, 7, 4], [8, 4, 1, 1], 2, 0, false);
}

#[test]
fn direct_paths_with_whole_vectors_of_channels() {
    check([3, 10, 9, 16], [32, 16, 3, 3], 1, 1, true);
    check([2, 11, 12, 32], [16, 32, 3, 3], 2, 1, false);
    check([2, 9, 10, 16], [16, 16, 5, 5], 3, 2, true);
    check([2, 7, 8, 3], [48, 3, 3, 3], 1, 1, true);
    check([2, 8, 8, 64], [64, 64, 3, 3], 1, 0, false);
    check([1, 6, 7, 16], [80, 16, 2, 2], 2, 0, true);
    check([2, 9, 9, 16], [16, 16, 1, 1], 2, 0, false);
}
