//! The precision of the matrix products: the convolutions ([`mod@crate::ops::conv2d`],
//! [`crate::ops::conv_bn`]) and the linear layer ([`mod@crate::ops::linear`]).
//!
//! `Fp32` multiplies fp32 operands. `Tf32` and `Bf16` compute as the tensor cores do: each operand
//! of a product (the input and the weight in the forward, the output gradient and the other
//! operand in the backward) is rounded to TF32 (10 mantissa bits, to nearest with ties away from
//! zero, `cvt.rna.tf32.f32`) or bf16 (7 mantissa bits, to nearest even), then the products are
//! summed in fp32. A product of two such values is exact in fp32, so rounding the operands and
//! running the fp32 product is that computation, on the CPU and on a device alike. Everything
//! else (batch norm, losses, the optimiser, the weights themselves: fp32 master copies) stays
//! fp32, and gradients pass the rounding unchanged (it is not differentiated).
//!
//! The precision is set per thread for a scope ([`set`]), as gradient recording is
//! ([`crate::tensor::autograd::no_grad`]); the ops read it when they run.

pub mod launch;
pub mod parity;
#[cfg(test)]
mod products_tests;

use std::cell::Cell;

use half::bf16;

use crate::error::Result;
use crate::ops::map_on;
use crate::tensor::Tensor;

/// The operand format of the matrix products (`--precision`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    /// fp32 operands.
    #[default]
    Fp32,
    /// Operands rounded to TF32, fp32 sums.
    Tf32,
    /// Operands rounded to bf16, fp32 sums.
    Bf16,
}

impl Precision {
    /// `v` rounded to this precision's operand format (unchanged for fp32, infinities and NaN).
    pub fn round(self, v: f32) -> f32 {
        match self {
            Precision::Fp32 => v,
            Precision::Tf32 if v.is_finite() => f32::from_bits((v.to_bits() + 0x1000) & 0xffff_e000),
            Precision::Bf16 if v.is_finite() => bf16::from_f32(v).to_f32(),
            _ => v,
        }
    }

    /// The unit roundoff of the operand format: `2^-11` (TF32), `2^-8` (bf16), `2^-24` (fp32).
    pub fn unit_roundoff(self) -> f32 {
        match self {
            Precision::Fp32 => 2f32.powi(-24),
            Precision::Tf32 => 2f32.powi(-11),
            Precision::Bf16 => 2f32.powi(-8),
        }
    }

    /// The kernel mode of `round_values` (`kernels/elementwise.cu`).
    fn mode(self) -> i32 {
        match self {
            Precision::Fp32 => 0,
            Precision::Tf32 => 1,
            Precision::Bf16 => 2,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        })
    }
}

thread_local! {
    static PRECISION: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// The precision of the products run on this thread now.
pub fn current() -> Precision {
    PRECISION.with(Cell::get)
}

/// Restores the previous precision when dropped.
#[must_use = "the precision applies while the guard lives"]
pub struct PrecisionGuard {
    previous: Precision,
}

/// Sets this thread's precision until the returned guard is dropped.
pub fn set(p: Precision) -> PrecisionGuard {
    PrecisionGuard { previous: PRECISION.with(|c| c.replace(p)) }
}

impl Drop for PrecisionGuard {
    fn drop(&mut self) {
        PRECISION.with(|c| c.set(self.previous));
    }
}

/// `t` as an operand of a product at precision `p`: `t` itself at fp32, otherwise a copy with
/// every value rounded (no gradient: the op records its gradient against `t`). An op takes `p`
/// from [`current`] when it runs forward and keeps it for its backward.
pub(crate) fn operand(p: Precision, t: &Tensor) -> Result<Tensor> {
    if p == Precision::Fp32 {
        return Ok(t.clone());
    }
    map_on(t, t.shape(), |v| v.iter().map(|&v| p.round(v)).collect(), |e, v| launch::round(e, p.mode(), v))
}

#[cfg(test)]
mod tests {
    use super::{Precision, current, operand, set};
    use crate::tensor::Tensor;

    /// Special values and overflow on the device, bit for bit as on the CPU.
    #[cfg(feature = "cuda-emulation")]
    #[test]
    fn the_device_rounds_special_values_as_the_cpu() {
        use crate::cuda::exec::Exec;
        let gpu = crate::cuda::gpu::Gpu::emulated();
        let x = [f32::MAX, -f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 65504.0, 3.4e38];
        let xb = gpu.upload(&x).unwrap();
        for p in [Precision::Tf32, Precision::Bf16] {
            let got = gpu.download(&super::launch::round(&gpu, p.mode(), &xb).unwrap()).unwrap();
            let want = x.map(|v| p.round(v));
            let bits = |v: &[f32]| {
                v.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>()
            };
            assert_eq!(bits(&got), bits(&want), "{p}");
        }
    }

    #[test]
    fn rounding_follows_the_operand_formats() {
        let t = Precision::Tf32;
        // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: away from zero.
        assert_eq!(t.round(1.0 + 2f32.powi(-11)), 1.0 + 2f32.powi(-10));
        assert_eq!(t.round(-(1.0 + 2f32.powi(-11))), -(1.0 + 2f32.powi(-10)));
        assert_eq!(t.round(1.0 + 2f32.powi(-12)), 1.0);
        let b = Precision::Bf16;
        // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1).
        assert_eq!(b.round(1.0 + 2f32.powi(-8)), 1.0);
        assert_eq!(b.round(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        for p in [Precision::Fp32, t, b] {
            assert!(p.round(f32::NAN).is_nan());
            assert_eq!(p.round(f32::INFINITY), f32::INFINITY);
            assert_eq!(p.round(0.1f32.next_up()) == 0.1f32.next_up(), p == Precision::Fp32);
        }
    }

    #[test]
    fn the_precision_is_scoped_and_operands_are_rounded_copies() {
        let x = Tensor::from_vec(vec![1.0 + 2f32.powi(-9), 3.0], &[2]).unwrap().into_param();
        assert_eq!(current(), Precision::Fp32);
        assert_eq!(operand(current(), &x).unwrap().to_vec().unwrap(), x.to_vec().unwrap());
        {
            let _bf16 = set(Precision::Bf16);
            assert_eq!(current(), Precision::Bf16);
            let r = operand(current(), &x).unwrap();
            assert_eq!(r.to_vec().unwrap(), [1.0, 3.0]);
            assert!(!r.requires_grad());
        }
        assert_eq!(current(), Precision::Fp32);
    }
}
