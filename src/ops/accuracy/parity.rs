//! Parity of the hit count with the CPU path (`cpu`), exact: both pick the same argmax.

use super::cpu;
use super::launch::count_correct;
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// One row to a few blocks of rows; classes 1, 10 and 100; labels drawn so about a third hit,
/// with repeated values so ties occur.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for [rows, k] in [[1, 1], [3, 10], [257, 10], [64, 100]] {
        let z: Vec<f32> = cx.normal(rows * k).iter().map(|v| (v * 2.0).round()).collect();
        let labels: Vec<usize> = z
            .chunks(k)
            .enumerate()
            .map(|(r, row)| if r % 3 == 0 { cpu::argmax(row) } else { r % k })
            .collect();
        let want: f32 = cpu::hits(&z, k, &labels).iter().sum();
        let up: Vec<i32> = labels.iter().map(|&y| y as i32).collect();
        let got = count_correct(cx.e, [rows, k], &cx.up(&z)?, &cx.e.upload(&up)?)?;
        cx.compare("argmax_hits+column_sums", &format!("z[{rows},{k}]"), &got, &[want], Tol::EXACT)?;
    }
    Ok(())
}
