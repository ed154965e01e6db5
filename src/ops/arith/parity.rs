//! Parity of the elementwise builtins (`add`, `mul`, `scale`) with the CPU path (`cpu`).

use super::cpu;
use crate::cuda::exec::Exec;
use crate::cuda::launch::builtin::{Binary, add_into, binary, scale};
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// `x + y` (into a new buffer and into `x`'s), `x * y` and `-0.37 * x` for `x`, `y` of the same
/// length, bit for bit.
pub fn check<E: Exec>(cx: &mut Ctx<'_, E>, x: &[f32], y: &[f32]) -> Result<()> {
    let (xb, yb) = (cx.up(x)?, cx.up(y)?);
    let case = format!("len {}", x.len());
    let got = binary(cx.e, Binary::Add, &xb, &yb)?;
    cx.compare("binary_map (add)", &case, &got, &cpu::add(x, y), Tol::EXACT)?;
    let got = binary(cx.e, Binary::Mul, &xb, &yb)?;
    cx.compare("binary_map (mul)", &case, &got, &cpu::mul(x, y), Tol::EXACT)?;
    let mut sum = cx.up(x)?;
    add_into(cx.e, &yb, &mut sum)?;
    cx.compare("add_into", &case, &sum, &cpu::add(x, y), Tol::EXACT)?;
    cx.compare("scale_values", &case, &scale(cx.e, -0.37, &xb)?, &cpu::scale(x, -0.37), Tol::EXACT)?;
    Ok(())
}
