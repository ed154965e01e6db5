//! The device launchers of the linear layer's tensor-core GEMM (`kernels/gemm_tc.cu`): the
//! products of [`launch::linear`](super::launch::linear) with TF32 (`gemm_tf32`, `mma.sync`
//! m16n8k8) or bf16 (`gemm_bf16`, m16n8k16) operands, each rounded by the kernel as it stages
//! it, and fp32 accumulation; the same buffers and layouts.
//!
//! Tiles: 64 by 64 outputs per block of 128 threads (four warps of 16 rows); TF32 stages 16 of
//! the reduction at a time in a three-stage cp.async pipeline (29 184 bytes of dynamic shared
//! memory), bf16 32 at a time in two register-staged stages (19 456 bytes).

use super::launch::{LinearProduct, gemm_params};
use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::launch::{MAX_YZ, int, output};
use crate::error::{Error, Result};
use crate::ops::precision::Precision;

/// Threads of a block (`__launch_bounds__(128)`).
const THREADS: u32 = 128;
/// The output tile of a block (`tc_gemm::BM` = `tc_gemm::BN`).
const TILE: usize = 64;

/// One product of the linear layer with `n` rows, `k` inputs and `m` outputs on tensor cores at
/// precision `p` (TF32 or bf16; fp32 products run on [`launch::linear`](super::launch::linear)):
/// its values up to the rounding of the operands to `p`, from the same operands. `Forward` takes
/// `(x, W)` and the optional bias, `BackwardData` `(dy, W)`, `BackwardWeight` `(dy, x)`.
pub fn linear_tc<E: Exec>(
    e: &E,
    p: Precision,
    product: LinearProduct,
    sizes: [usize; 3],
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
    bias: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda linear tensor core";
    let g = gemm_params(OP, product, sizes)?;
    let (rows, cols) = (g.m as usize, g.n as usize);
    let blocks = [rows.div_ceil(TILE), cols.div_ceil(TILE)];
    if blocks[1] > MAX_YZ {
        return Err(Error::invalid(OP, format!("grid {blocks:?} exceeds the launch limits")));
    }
    let grid = Grid {
        blocks: [int(OP, "blocks", blocks[0])? as u32, blocks[1] as u32, 1],
        threads: [THREADS, 1, 1],
    };
    output(e, rows * cols, |c| match p {
        Precision::Tf32 => kernels::gemm_tf32(e, grid, &g, a, b, bias, c),
        Precision::Bf16 => kernels::gemm_bf16(e, grid, &g, a, b, bias, c),
        Precision::Fp32 => Err(Error::invalid(OP, "fp32 products run on the fp32 kernel")),
    })
}

#[cfg(all(test, feature = "cuda-emulation"))]
mod tests {
    use super::super::cpu::{self, Sizes};
    use super::super::launch::LinearProduct::{BackwardData, BackwardWeight, Forward};
    use super::super::parity_tc::{self, small_ints};
    use super::linear_tc;
    use crate::cuda::emu::Emulator;
    use crate::cuda::exec::Exec;
    use crate::ops::check::parity::Ctx;
    use crate::ops::precision::Precision;

    /// Small integers (the parity suite's exact case at other sizes): every operand, product and
    /// fp32 sum is exact, so each product must equal the CPU path's bit for bit.
    #[test]
    fn exact_on_small_integers() {
        let e = Emulator;
        // Sizes 1, a classifier head, and several column tiles with k = 80 (a multiple of 16, not
        // of the bf16 stage's 32).
        for [n, k, m] in [[1, 1, 1], [3, 64, 10], [70, 80, 130]] {
            let g = Sizes { n, k, m };
            let [x, w, b, dy] =
                [(n * k, 1), (m * k, 2), (m, 3), (n * m, 4)].map(|(len, s)| small_ints(len, s));
            let [xb, wb, bb, dyb] = [&x, &w, &b, &dy].map(|v| e.upload(v).unwrap());
            for p in [Precision::Tf32, Precision::Bf16] {
                let y = linear_tc(&e, p, Forward, [n, k, m], &xb, &wb, Some(&bb)).unwrap();
                assert_eq!(e.download(&y).unwrap(), cpu::forward(&g, &x, &w, Some(&b)), "{p} {n} {k} {m} y");
                let dx = linear_tc(&e, p, BackwardData, [n, k, m], &dyb, &wb, None).unwrap();
                assert_eq!(e.download(&dx).unwrap(), cpu::backward_data(&g, &dy, &w), "{p} {n} {k} {m} dx");
                let dw = linear_tc(&e, p, BackwardWeight, [n, k, m], &dyb, &xb, None).unwrap();
                assert_eq!(e.download(&dw).unwrap(), cpu::backward_weight(&g, &x, &dy), "{p} {n} {k} {m} dw");
            }
        }
    }

    #[test]
    fn fp32_and_empty_products_are_errors() {
        let e = Emulator;
        let (a, b) = (e.upload(&[1f32; 4]).unwrap(), e.upload(&[1f32; 4]).unwrap());
        assert!(linear_tc(&e, Precision::Fp32, Forward, [2, 2, 2], &a, &b, None).is_err());
        assert!(linear_tc(&e, Precision::Bf16, Forward, [0, 2, 2], &a, &b, None).is_err());
        // A buffer shorter than the product: the checked launcher refuses it.
        assert!(linear_tc(&e, Precision::Tf32, Forward, [3, 2, 2], &a, &b, None).is_err());
    }

    #[test]
    fn parity_within_the_operand_rounding_tolerances() {
        let mut cx = Ctx::new(&Emulator, 0x9e_44);
        parity_tc::run(&mut cx).unwrap();
        cx.assert_all_passed();
    }

    /// Training-mode `linear` (forward, then the gradients of the input, weight and bias) on the
    /// emulated device at TF32 and bf16, where the tensor-core kernels round the operands, gives
    /// the CPU's values at the same precision (fp32 products of operands the op rounded) up to the
    /// order of the fp32 sums.
    #[test]
    fn the_device_at_reduced_precision_matches_the_cpu() {
        use rand::SeedableRng;
        use rand_chacha::ChaCha8Rng;

        use crate::ops::linear;
        use crate::ops::precision::parity::sum_order;
        use crate::ops::precision::set;
        use crate::tensor::Tensor;
        use crate::tensor::autograd::backward_with;
        use crate::tensor::device::Device;

        let device = Device::emulated().unwrap();
        let [n, k, m] = [33, 70, 10];
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = Tensor::randn(&[n, k], 1.0, &mut rng).into_param();
        let w = Tensor::randn(&[m, k], 1.0, &mut rng).into_param();
        let b = Tensor::randn(&[m], 1.0, &mut rng).into_param();
        let dy = Tensor::randn(&[n, m], 1.0, &mut rng);
        let run = |p: Precision, [x, w, b, dy]: [&Tensor; 4]| -> Vec<Vec<f32>> {
            let _p = set(p);
            let y = linear(x, w, Some(b)).unwrap();
            let g = backward_with(&y, dy.clone()).unwrap();
            [&y, g.get(x).unwrap(), g.get(w).unwrap(), g.get(b).unwrap()]
                .map(|t| t.to_vec().unwrap())
                .to_vec()
        };
        let on = |t: &Tensor| t.to_device(&device).unwrap().into_param();
        for p in [Precision::Tf32, Precision::Bf16] {
            let cpu = run(p, [&x, &w, &b, &dy]);
            let gpu = run(p, [&on(&x), &on(&w), &on(&b), &dy.to_device(&device).unwrap()]);
            // The sums: k for y, m for dx, n for dw and db.
            for ((what, len), (want, got)) in
                [("y", k), ("dx", m), ("dw", n), ("db", n)].iter().zip(cpu.iter().zip(&gpu))
            {
                let tol = sum_order(*len);
                let worst = want
                    .iter()
                    .zip(got)
                    .map(|(a, b)| (a - b).abs() / (tol.atol + tol.rtol * a.abs()))
                    .fold(0f32, f32::max);
                assert!(worst <= 1.0, "{p} {what}: worst {worst}");
            }
        }
    }
}
