//! What every kernel launcher shares, and the backend's builtin kernels ([`builtin`]).
//!
//! The launchers live with their ops (`src/ops/<op>/launch.rs`, the SGD step in
//! `src/optim/launch.rs`), written once for any [`Exec`]: each turns the op's sizes into a
//! kernel's parameter struct, chooses the launch shape with the helpers here, allocates the
//! outputs ([`output`]) and runs one or more kernels through their checked handles
//! ([`crate::cuda::kernels`], which reject a buffer too short for the kernel's contract). Each
//! mirrors the CPU function named in its doc comment, its oracle in the parity checks.

pub mod builtin;

use super::exec::{Elem, Exec, Grid};
use crate::error::{Error, Result};

/// Threads of every one-dimensional block (`BLOCK` in common.cuh).
pub const THREADS: u32 = 256;
/// Rows handled by one block of the warp-per-row kernels (`BLOCK / WARP`).
pub const WARP_ROWS: usize = 8;
/// The output tile of the matrix-product kernels (`TILE_M` = `TILE_N`).
pub const TILE: usize = 64;
/// Channels and row lanes of a channel-reduction block (`RED_C`, `RED_R`).
pub const RED_C: usize = 32;
pub const RED_R: u32 = 8;
/// The most blocks a grid-stride kernel is given.
pub const MAX_FLAT_BLOCKS: usize = 4096;
/// The most blocks in y or z.
pub const MAX_YZ: usize = 65_535;

/// An `i32` kernel parameter, or an error when `v` does not fit (more than 2^31 - 1 elements).
pub fn int(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| Error::invalid(op, format!("{what} = {v} exceeds the kernels' 32-bit indexing")))
}

/// Checks that every size of `sizes` fits the kernels' 32-bit indexing.
pub fn fits(op: &'static str, sizes: &[(&str, usize)]) -> Result<()> {
    sizes.iter().try_for_each(|&(what, v)| int(op, what, v).map(|_| ()))
}

/// A fresh buffer of `len` elements written by `fill` (one or more kernel launches): the
/// launchers' allocate-and-launch shape.
pub fn output<E: Exec>(
    e: &E,
    len: usize,
    fill: impl FnOnce(&mut E::Buf<f32>) -> Result<()>,
) -> Result<E::Buf<f32>> {
    let mut y = e.alloc(len)?;
    fill(&mut y)?;
    Ok(y)
}

/// Checks that `buf` holds exactly `want` elements.
pub fn expect_len<E: Exec, T: Elem>(
    e: &E,
    op: &'static str,
    what: &str,
    buf: &E::Buf<T>,
    want: usize,
) -> Result<()> {
    let got = e.len(buf);
    if got == want {
        return Ok(());
    }
    Err(Error::shape(op, format!("{what} holds {got} elements, expected {want}")))
}

/// Checks that `len` is positive (CUDA rejects empty grids).
pub fn non_empty(op: &'static str, what: &str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(Error::shape(op, format!("{what} is empty")));
    }
    Ok(())
}

/// A grid-stride kernel over `len` elements.
pub fn flat(len: usize) -> Grid {
    let blocks = len.div_ceil(THREADS as usize).clamp(1, MAX_FLAT_BLOCKS);
    Grid { blocks: [blocks as u32, 1, 1], threads: [THREADS, 1, 1] }
}

/// One block per row.
pub fn block_per_row(rows: usize) -> Grid {
    Grid { blocks: [rows as u32, 1, 1], threads: [THREADS, 1, 1] }
}

/// One warp per row.
pub fn warp_per_row(rows: usize) -> Grid {
    Grid { blocks: [rows.div_ceil(WARP_ROWS) as u32, 1, 1], threads: [THREADS, 1, 1] }
}

/// Tiles of the matrix-product kernels over an `m x n` output, `z` slices deep.
pub fn tiles(op: &'static str, m: usize, n: usize, z: usize) -> Result<Grid> {
    let (bx, by) = (m.div_ceil(TILE), n.div_ceil(TILE));
    if by > MAX_YZ || z > MAX_YZ {
        return Err(Error::invalid(op, format!("{by} x {z} tiles exceed the grid's y and z limits")));
    }
    Ok(Grid { blocks: [int(op, "row tiles", bx)? as u32, by as u32, z as u32], threads: [THREADS, 1, 1] })
}

/// Channel reductions: blocks of 32 channels x 8 row lanes, `y` blocks deep.
pub fn channel_blocks(op: &'static str, c: usize, y: usize) -> Result<Grid> {
    if y > MAX_YZ {
        return Err(Error::invalid(op, format!("{y} row blocks exceed the grid's y limit")));
    }
    Ok(Grid { blocks: [c.div_ceil(RED_C) as u32, y as u32, 1], threads: [RED_C as u32, RED_R, 1] })
}
