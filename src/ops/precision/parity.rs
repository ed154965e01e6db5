//! Parity of the operand rounding with [`Precision::round`], bit for bit.

use super::{Precision, launch};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Normal values over a wide range of magnitudes, the ties of both formats, zeros and a
/// subnormal, rounded to TF32 and to bf16 (infinities, NaN and overflow: the unit tests).
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let mut x: Vec<f32> =
        cx.normal(1000).iter().enumerate().map(|(i, v)| v * 2f32.powi(i as i32 % 60 - 30)).collect();
    x.extend([1.0 + 2f32.powi(-11), -(1.0 + 2f32.powi(-11)), 1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8)]);
    x.extend([0.0, -0.0, f32::MIN_POSITIVE / 3.0]);
    let xb = cx.up(&x)?;
    for p in [Precision::Tf32, Precision::Bf16] {
        let want: Vec<f32> = x.iter().map(|&v| p.round(v)).collect();
        let got = launch::round(cx.e, p.mode(), &xb)?;
        cx.compare("round_values", &format!("{p}, {} values", x.len()), &got, &want, Tol::EXACT)?;
    }
    Ok(())
}
