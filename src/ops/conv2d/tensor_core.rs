//! The device launchers of the tensor-core convolutions (`kernels/conv2d_tf32.cu` with TF32
//! `mma.sync`, `kernels/conv2d_bf16.cu` with bf16 `mma.sync`): the products of
//! [`launch::conv2d`](super::launch::conv2d) as implicit GEMMs (fp32 storage and accumulation,
//! operands rounded to the precision), the same buffers and layouts.
//!
//! Tiles: 64 rows (pixels, or `(tap, ci)` for the weight gradient) by a column tile of 16, 32 or
//! 64 channels chosen from the column count ([`tile_n`]), so the ResNet-20 widths fill their tile;
//! 128 threads (four warps of 16 rows), 16-deep k stages: TF32 in a three-stage cp.async pipeline
//! (29 184 bytes of dynamic shared memory), bf16 in two register-staged stages (10 752 bytes).

use super::ConvGeometry;
use super::launch::{ConvProduct, STAT_GROUP, WeightSplit, conv_params};
use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::launch::{MAX_YZ, expect_len, int, output};
use crate::cuda::params::ConvParams;
use crate::error::{Error, Result};
use crate::ops::batchnorm::launch::{BnAffine, Trained};
use crate::ops::precision::Precision;

/// Threads of a block (`__launch_bounds__(128)`).
const THREADS: u32 = 128;
/// Rows of a block tile (`tc_conv::BM`).
const TILE_M: usize = 64;
/// The smallest column tile; the ticket count of the weight gradient's contract assumes it.
const MIN_TILE_N: usize = 16;
const OP: &str = "cuda conv2d tensor cores";

/// The column tile of a product with `columns` output columns: 16, 32 or 64 (`tc_conv::tile_n_for`
/// in the kernel file, which recomputes it from the parameters).
pub fn tile_n(columns: usize) -> usize {
    match columns {
        0..=16 => 16,
        17..=32 => 32,
        _ => 64,
    }
}

/// A grid of `rows` by `columns` tiles (`columns` tiled by [`tile_n`]) in `slices` slices.
fn grid(rows: usize, columns: usize, slices: usize) -> Result<Grid> {
    let blocks = [rows.div_ceil(TILE_M), columns.div_ceil(tile_n(columns)), slices];
    if blocks[1] > MAX_YZ || blocks[2] > MAX_YZ {
        return Err(Error::invalid(OP, format!("grid {blocks:?} exceeds the launch limits")));
    }
    let x = int(OP, "blocks", blocks[0])? as u32;
    Ok(Grid { blocks: [x, blocks[1] as u32, blocks[2] as u32], threads: [THREADS, 1, 1] })
}

/// An error unless `p` has tensor-core kernels (TF32 or bf16).
fn check_precision(p: Precision) -> Result<()> {
    match p {
        Precision::Tf32 | Precision::Bf16 => Ok(()),
        Precision::Fp32 => {
            Err(Error::invalid(OP, "fp32 products run on the fp32 kernels, not the tensor cores"))
        }
    }
}

/// One product of the convolution of geometry `g` on its operands `[a, b]` on tensor cores at
/// precision `p` (TF32 or bf16 products, fp32 sums), the values of
/// [`launch::conv2d`](super::launch::conv2d) on operands rounded to `p`, up to the order of the
/// sums; `bias` only with [`ConvProduct::Forward`]. The weight gradient splits the output pixels
/// into slices as the fp32 kernel does, the last block of each tile adding them in order (the same
/// result on every run).
pub fn conv2d_tc<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    p: Precision,
    product: ConvProduct,
    [a, b]: [&E::Buf<f32>; 2],
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    check_precision(p)?;
    if bias.is_some() && product != ConvProduct::Forward {
        return Err(Error::invalid(OP, format!("{product:?} takes no bias")));
    }
    let bf16 = p == Precision::Bf16;
    match product {
        ConvProduct::Forward => {
            let params = conv_params(OP, g, 1, false)?;
            let rows = g.n * g.h_out * g.w_out;
            let grid = grid(rows, g.c_out, 1)?;
            output(e, rows * g.c_out, |y| match bf16 {
                true => kernels::conv2d_forward_bf16(e, grid, &params, a, b, bias, y),
                false => kernels::conv2d_forward_tf32(e, grid, &params, a, b, bias, y),
            })
        }
        ConvProduct::BackwardData => {
            output(e, g.n * g.in_image_len(), |dx| backward_data(e, g, p, [a, b], dx, false))
        }
        ConvProduct::BackwardWeight => {
            let WeightSplit { rows: split_rows, slices } = WeightSplit::of(g);
            let params = conv_params(OP, g, split_rows, false)?;
            let grid = grid(g.k(), g.c_out, slices)?;
            let mut partial = e.alloc(slices * g.c_out * g.k())?;
            let tickets = g.k().div_ceil(TILE_M) * g.c_out.div_ceil(MIN_TILE_N);
            output(e, g.c_out * g.k(), |dw| {
                e.with_tickets(tickets, |t| match bf16 {
                    true => kernels::conv2d_backward_weight_bf16(e, grid, &params, a, b, &mut partial, t, dw),
                    false => {
                        kernels::conv2d_backward_weight_tf32(e, grid, &params, a, b, &mut partial, t, dw)
                    }
                })
            })
        }
    }
}

/// Both gradients of the convolution of geometry `g` from `[x, dy, w]` in one launch on tensor
/// cores at precision `p`: the data gradient into `dx` (`[N, H, W, C_in]`; added to it with
/// `accumulate`) and the weight gradient returned, the values of [`conv2d_tc`]'s
/// [`ConvProduct::BackwardData`] and [`ConvProduct::BackwardWeight`] bit for bit (the same tiles
/// in the same order): the kernel's first blocks are the one's grid, the rest the other's.
pub fn conv2d_backward_tc<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    p: Precision,
    [x, dy, w]: [&E::Buf<f32>; 3],
    dx: &mut E::Buf<f32>,
    accumulate: bool,
) -> Result<E::Buf<f32>> {
    check_precision(p)?;
    expect_len(e, OP, "the data gradient", dx, g.n * g.in_image_len())?;
    let WeightSplit { rows: split_rows, slices } = WeightSplit::of(g);
    let params = conv_params(OP, g, split_rows, accumulate)?;
    let data_blocks = (g.n * g.h * g.w).div_ceil(TILE_M) * g.c_in.div_ceil(tile_n(g.c_in));
    let weight_tiles = g.k().div_ceil(TILE_M) * g.c_out.div_ceil(tile_n(g.c_out));
    let blocks = int(OP, "blocks", data_blocks + weight_tiles * slices)? as u32;
    let grid = Grid { blocks: [blocks, 1, 1], threads: [THREADS, 1, 1] };
    let mut partial = e.alloc(slices * g.c_out * g.k())?;
    let tickets = g.k().div_ceil(TILE_M) * g.c_out.div_ceil(MIN_TILE_N);
    output(e, g.c_out * g.k(), |dw| {
        e.with_tickets(tickets, |t| match p {
            Precision::Bf16 => {
                kernels::conv2d_backward_bf16(e, grid, &params, x, dy, w, dx, &mut partial, t, dw)
            }
            _ => kernels::conv2d_backward_tf32(e, grid, &params, x, dy, w, dx, &mut partial, t, dw),
        })
    })
}

/// `dx += ` the data gradient of the convolution of geometry `g` from `[dy, w]` on tensor cores at
/// precision `p`, in place in `dx` (`[N, H, W, C_in]`): [`conv2d_tc`]'s
/// [`ConvProduct::BackwardData`] added where the first gradient is.
pub fn conv2d_backward_data_into_tc<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    p: Precision,
    [dy, w]: [&E::Buf<f32>; 2],
    dx: &mut E::Buf<f32>,
) -> Result<()> {
    check_precision(p)?;
    expect_len(e, OP, "the gradient to add into", dx, g.n * g.in_image_len())?;
    backward_data(e, g, p, [dy, w], dx, true)
}

fn backward_data<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    p: Precision,
    [dy, w]: [&E::Buf<f32>; 2],
    dx: &mut E::Buf<f32>,
    accumulate: bool,
) -> Result<()> {
    let params = conv_params(OP, g, 1, accumulate)?;
    let grid = grid(g.n * g.h * g.w, g.c_in, 1)?;
    match p {
        Precision::Bf16 => kernels::conv2d_backward_data_bf16(e, grid, &params, dy, w, dx),
        _ => kernels::conv2d_backward_data_tf32(e, grid, &params, dy, w, dx),
    }
}

/// `y = conv(x, w)` (no bias) and the batch statistics of its output channels in one launch on
/// tensor cores at precision `p`: [`launch::conv2d_forward_stats`](super::launch::conv2d_forward_stats)
/// with the products of [`conv2d_tc`] (the same `y` bit for bit) and the same merge of the tiles'
/// statistics, over column tiles of [`tile_n`] channels.
pub fn conv2d_forward_stats_tc<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    p: Precision,
    [x, w]: [&E::Buf<f32>; 2],
) -> Result<Trained<E::Buf<f32>>> {
    check_precision(p)?;
    let params = conv_params(OP, g, 1, false)?;
    let rows = g.n * g.h_out * g.w_out;
    let grid = grid(rows, g.c_out, 1)?;
    let (row_tiles, groups) = (rows.div_ceil(TILE_M), rows.div_ceil(STAT_GROUP * TILE_M));
    let mut partial = e.alloc(2 * (row_tiles + groups) * g.c_out)?;
    let (mut y, mut mean, mut var) = (e.alloc(rows * g.c_out)?, e.alloc(g.c_out)?, e.alloc(g.c_out)?);
    let tickets = g.c_out.div_ceil(MIN_TILE_N) * (groups + 1);
    e.with_tickets(tickets, |t| match p {
        Precision::Bf16 => kernels::conv2d_forward_stats_bf16(
            e,
            grid,
            &params,
            x,
            w,
            &mut y,
            &mut partial,
            t,
            &mut mean,
            &mut var,
        ),
        _ => kernels::conv2d_forward_stats_tf32(
            e,
            grid,
            &params,
            x,
            w,
            &mut y,
            &mut partial,
            t,
            &mut mean,
            &mut var,
        ),
    })?;
    Ok(Trained { y, mean, var })
}

/// `y = act((conv(x, w) - center) * gamma / sqrt(var + eps) + beta [+ residual])` in one launch on
/// tensor cores at precision `p`: [`launch::conv2d_forward_bn`](super::launch::conv2d_forward_bn)
/// with the products of [`conv2d_tc`].
pub fn conv2d_forward_bn_tc<E: Exec>(
    e: &E,
    g: &ConvGeometry,
    p: Precision,
    [x, w]: [&E::Buf<f32>; 2],
    n: &BnAffine<'_, E::Buf<f32>>,
    [center, var]: [&E::Buf<f32>; 2],
) -> Result<E::Buf<f32>> {
    check_precision(p)?;
    let params = ConvParams { relu: n.relu.into(), eps: n.eps, ..conv_params(OP, g, 1, false)? };
    let rows = g.n * g.h_out * g.w_out;
    let grid = grid(rows, g.c_out, 1)?;
    output(e, rows * g.c_out, |y| match p {
        Precision::Bf16 => kernels::conv2d_forward_bn_bf16(
            e, grid, &params, x, w, center, var, n.gamma, n.beta, n.residual, y,
        ),
        _ => kernels::conv2d_forward_bn_tf32(
            e, grid, &params, x, w, center, var, n.gamma, n.beta, n.residual, y,
        ),
    })
}

#[cfg(all(test, feature = "cuda-emulation"))]
mod tests {
    use super::super::launch::ConvProduct::{BackwardData, BackwardWeight, Forward};
    use super::super::{ConvGeometry, cpu, parity_tc};
    use super::{conv2d_tc, tile_n};
    use crate::cuda::emu::Emulator;
    use crate::cuda::exec::Exec;
    use crate::ops::check::parity::Ctx;
    use crate::ops::precision::Precision::{Bf16, Fp32, Tf32};

    /// Small integers: every TF32 operand, product and fp32 sum of the cases is exact, so each
    /// product must equal the CPU path's bit for bit, whatever the order of the sums.
    fn small_ints(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7 + seed * 13) % 5) as f32 - 2.0).collect()
    }

    #[test]
    fn column_tiles_fit_the_resnet_widths() {
        assert_eq!([1, 16, 17, 32, 33, 64, 65, 128].map(tile_n), [16, 16, 32, 32, 64, 64, 64, 64]);
    }

    #[test]
    fn exact_on_small_integers() {
        let e = Emulator;
        // Odd channels on the element path, 16 channels on the vector path with two weight
        // gradient slices, stride 2 with a remainder row.
        for (xs, ws, stride, pad) in [
            ([2, 7, 5, 3], [5, 3, 3, 3], 1, 1),
            ([2, 16, 16, 16], [16, 16, 3, 3], 1, 1),
            ([1, 9, 8, 8], [40, 8, 3, 3], 2, 1),
        ] {
            let g = ConvGeometry::new("test", &xs, &ws, stride, pad).unwrap();
            let (x, w) = (small_ints(xs.iter().product(), 1), small_ints(ws.iter().product(), 2));
            let dy = small_ints(g.n * g.out_image_len(), 3);
            let (xb, wb, dyb) = (e.upload(&x).unwrap(), e.upload(&w).unwrap(), e.upload(&dy).unwrap());
            if xs[3] % 4 == 0 {
                // The 16-byte copies need 16-byte aligned activations, else the kernels take the
                // element path.
                assert!(e.addr(&xb) % 16 == 0 && e.addr(&dyb) % 16 == 0, "the vector path is not exercised");
            }
            for p in [Tf32, Bf16] {
                let y = conv2d_tc(&e, &g, p, Forward, [&xb, &wb], None).unwrap();
                assert_eq!(e.download(&y).unwrap(), cpu::forward(&g, &x, &w, None), "{p} {g:?} forward");
                let dx = conv2d_tc(&e, &g, p, BackwardData, [&dyb, &wb], None).unwrap();
                assert_eq!(e.download(&dx).unwrap(), cpu::backward_data(&g, &dy, &w), "{p} {g:?} data");
                let dw = conv2d_tc(&e, &g, p, BackwardWeight, [&xb, &dyb], None).unwrap();
                assert_eq!(e.download(&dw).unwrap(), cpu::backward_weight(&g, &x, &dy), "{p} {g:?} weight");
            }
        }
    }

    #[test]
    fn weight_gradient_slices_add_in_a_fixed_order() {
        let e = Emulator;
        // 768 pixels: three slices whose last blocks may differ from run to run.
        let g = ConvGeometry::new("test", &[3, 16, 16, 4], &[8, 4, 3, 3], 1, 1).unwrap();
        let mut cx = Ctx::new(&e, 7);
        let (x, dy) = (cx.normal(g.n * g.in_image_len()), cx.normal(g.n * g.out_image_len()));
        let (xb, dyb) = (e.upload(&x).unwrap(), e.upload(&dy).unwrap());
        for p in [Tf32, Bf16] {
            let first =
                e.download(&conv2d_tc(&e, &g, p, BackwardWeight, [&xb, &dyb], None).unwrap()).unwrap();
            for _ in 0..2 {
                let again = conv2d_tc(&e, &g, p, BackwardWeight, [&xb, &dyb], None).unwrap();
                assert_eq!(e.download(&again).unwrap(), first, "{p}");
            }
        }
    }

    #[test]
    fn bias_only_with_the_forward_and_tensor_core_precisions_only() {
        let e = Emulator;
        let g = ConvGeometry::new("test", &[1, 4, 4, 2], &[3, 2, 3, 3], 1, 1).unwrap();
        let (a, b, bias) =
            (e.upload(&[0f32; 96]).unwrap(), e.upload(&[0f32; 48]).unwrap(), e.upload(&[0f32; 3]).unwrap());
        assert!(conv2d_tc(&e, &g, Tf32, BackwardData, [&a, &b], Some(&bias)).is_err());
        assert!(conv2d_tc(&e, &g, Fp32, Forward, [&a, &b], None).is_err(), "fp32 has no tensor-core kernel");
    }

    #[test]
    fn parity_within_the_rounding_tolerances() {
        let mut cx = Ctx::new(&Emulator, 0x1e_4d);
        parity_tc::run(&mut cx).unwrap();
        cx.assert_all_passed();
    }
}
