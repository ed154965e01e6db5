//! The tensor-core building blocks of `kernels/tensor_core.cuh` (mma, ldmatrix, cp.async and the
//! operand conversions), run by the kernels of `kernels/tensor_core_test.cu` and compared with the
//! scalar references of [`mod@reference`]: rounding and ldmatrix bit for bit, products within
//! [`sum_tol`].

pub mod reference;
#[cfg(all(test, feature = "cuda-emulation"))]
mod tests;

use self::reference::{Kind, LANES, M, N};
use super::{Ctx, Tol};
use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::params::{GemmParams, MapParams};
use crate::error::Result;

/// A sum of `k` exact products of N(0, 1) operands and c, added in f32 in an order and with an
/// internal precision the PTX ISA leaves open (the emulation adds in order; tensor cores may
/// truncate while aligning): about one f32 ulp of the partial sums (~1e-6 near 8) per term.
pub fn sum_tol(k: usize) -> Tol {
    Tol { atol: 2e-6 * (k + 1) as f32, rtol: 1e-5 }
}

/// One warp per block.
pub fn warps(blocks: [u32; 2]) -> Grid {
    Grid { blocks: [blocks[0], blocks[1], 1], threads: [LANES as u32, 1, 1] }
}

/// The parameters of the matrix-product kernels for row-major `[m, k] x [k, n]`.
pub fn gemm_params(m: usize, n: usize, k: usize) -> GemmParams {
    let [m, n, k] = [m, n, k].map(|v| v as i32);
    GemmParams { m, n, k, a_row: k, a_col: 1, b_row: n, b_col: 1 }
}

/// Row-major bf16 values packed two to a word, the first in the low half.
pub fn bf16_words(x: &[f32]) -> Vec<i32> {
    x.chunks(2).map(|pair| Kind::Bf16.word(pair)).collect()
}

/// Every check of the tensor-core kernels.
pub(super) fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    rounding(cx)?;
    for kind in [Kind::Tf32, Kind::Bf16] {
        fragments(cx, kind)?;
    }
    ldmatrix(cx)?;
    for (m, n, k) in [(16, 8, 16), (48, 24, 64)] {
        gemm(cx, Kind::Tf32, (m, n, k))?;
        gemm(cx, Kind::Bf16, (m, n, k))?;
    }
    Ok(())
}

/// Values whose rounding is a tie, or just past one, for tf32 and for bf16, in both signs.
const TIES: [u32; 8] =
    [0x3f80_1000, 0xbf80_1000, 0x3f80_3000, 0x3f80_1001, 0x3f80_8000, 0x3f81_8000, 0xbf81_8000, 0x3f80_8001];

/// `to_tf32` and `pack_bf16x2` on random values and ties, bit for bit.
fn rounding<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let mut x = cx.normal(1000);
    x.extend(TIES.map(f32::from_bits));
    let len = x.len();
    for kind in [Kind::Tf32, Kind::Bf16] {
        let p = MapParams { len: len as i32, mode: kind.mode(), a: 0.0 };
        let xb = cx.up(&x)?;
        let mut y = cx.e.alloc::<f32>(len)?;
        let grid = Grid { blocks: [4, 1, 1], threads: [256, 1, 1] };
        kernels::tensor_core_round(cx.e, grid, &p, &xb, &mut y)?;
        let want: Vec<f32> = x.iter().map(|&v| kind.round(v)).collect();
        cx.compare("tensor_core_round", &format!("{kind:?} len {len} with ties"), &y, &want, Tol::EXACT)?;
    }
    Ok(())
}

/// `tiles` random tiles of one mma given as registers: the A, B and C registers of every lane and
/// the D registers the reference expects.
pub fn random_fragments<E: Exec>(
    cx: &mut Ctx<'_, E>,
    kind: Kind,
    tiles: usize,
) -> (Vec<i32>, Vec<i32>, Vec<f32>, Vec<f32>) {
    let (mut fa, mut fb, mut fc, mut want) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..tiles {
        let (a, b, c) = (cx.normal(M * kind.k()), cx.normal(kind.k() * N), cx.normal(M * N));
        for lane in 0..LANES {
            fa.extend(kind.a_words(lane, |r, k| a[r * kind.k() + k]));
            fb.extend(kind.b_words(lane, |k, col| b[k * N + col]));
        }
        fc.extend(reference::to_accumulators(&c));
        want.extend(reference::to_accumulators(&reference::matmul(kind, &a, &b, &c, (M, N, kind.k()))));
    }
    (fa, fb, fc, want)
}

/// One mma per tile on registers laid out by the PTX ISA's tables, its D registers against the
/// reference product.
fn fragments<E: Exec>(cx: &mut Ctx<'_, E>, kind: Kind) -> Result<()> {
    let tiles = 3;
    let (fa, fb, fc, want) = random_fragments(cx, kind, tiles);
    let p = MapParams { len: tiles as i32, mode: kind.mode(), a: 0.0 };
    let (a, b, c) = (cx.e.upload(&fa)?, cx.e.upload(&fb)?, cx.up(&fc)?);
    let mut d = cx.e.alloc::<f32>(want.len())?;
    kernels::mma_fragments(cx.e, warps([tiles as u32, 1]), &p, &a, &b, &c, &mut d)?;
    cx.compare("mma_fragments", &format!("{kind:?} {tiles} tiles"), &d, &want, sum_tol(kind.k()))
}

/// Every ldmatrix variant with the lanes addressing the rows of a random bf16 tile in a shuffled
/// order, bit for bit.
fn ldmatrix<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let len = 40;
    let values: Vec<f32> = cx.normal(len * 8).into_iter().map(|v| Kind::Bf16.round(v)).collect();
    let rows: Vec<i32> = (0..LANES).map(|l| ((l * 13 + 5) % len) as i32).collect();
    let row_of: Vec<[f32; 8]> =
        rows.iter().map(|&r| std::array::from_fn(|e| values[r as usize * 8 + e])).collect();
    let (src, rows_buf) = (cx.e.upload(&bf16_words(&values))?, cx.e.upload(&rows)?);
    for mode in 0..6 {
        let (x, trans) = (1 << (mode % 3), mode >= 3);
        let p = MapParams { len: len as i32, mode, a: 0.0 };
        let mut out = cx.e.alloc::<f32>(LANES * 8)?;
        kernels::ldmatrix_rows(cx.e, warps([1, 1]), &p, &src, &rows_buf, &mut out)?;
        let want = reference::ldmatrix(x, trans, &row_of);
        cx.compare("ldmatrix_rows", &format!("x{x} trans {trans}, {len} rows"), &out, &want, Tol::EXACT)?;
    }
    Ok(())
}

/// `D = A B + C` through cp.async, (for bf16) ldmatrix and mma, against the f64 product.
fn gemm<E: Exec>(cx: &mut Ctx<'_, E>, kind: Kind, (m, n, k): (usize, usize, usize)) -> Result<()> {
    let (a, b, c) = (cx.normal(m * k), cx.normal(k * n), cx.normal(m * n));
    let want = reference::matmul(kind, &a, &b, &c, (m, n, k));
    let got = run_gemm(cx.e, kind, (&a, &b, &c), (m, n, k))?;
    let kernel = match kind {
        Kind::Tf32 => "mma_tf32_gemm",
        Kind::Bf16 => "mma_bf16_gemm",
    };
    cx.compare_host(kernel, &format!("{m} x {n} x {k}"), &got, &want, sum_tol(k));
    Ok(())
}

/// Runs `mma_tf32_gemm` or `mma_bf16_gemm` (operands packed to bf16 on the host) on row-major
/// `a [m, k]`, `b [k, n]` and `c [m, n]`, and downloads D.
pub fn run_gemm<E: Exec>(
    e: &E,
    kind: Kind,
    (a, b, c): (&[f32], &[f32], &[f32]),
    (m, n, k): (usize, usize, usize),
) -> Result<Vec<f32>> {
    let p = gemm_params(m, n, k);
    let grid = warps([m.div_ceil(M).max(1) as u32, n.div_ceil(N).max(1) as u32]);
    let cb = e.upload(c)?;
    let mut d = e.alloc::<f32>(m * n)?;
    match kind {
        Kind::Tf32 => kernels::mma_tf32_gemm(e, grid, &p, &e.upload(a)?, &e.upload(b)?, &cb, &mut d)?,
        Kind::Bf16 => {
            let (ab, bb) = (e.upload(&bf16_words(a))?, e.upload(&bf16_words(b))?);
            kernels::mma_bf16_gemm(e, grid, &p, &ab, &bb, &cb, &mut d)?
        }
    }
    e.download(&d)
}
