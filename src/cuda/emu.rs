//! The kernels compiled by g++ with `kernels/emu/cuda_emu.h` and run on the CPU (cargo feature
//! `cuda-emulation`): the unchanged `.cu` files, one CUDA thread per host thread, block after block.
//! Slow, and meant for tests: every launcher and parity check runs here as on a GPU.

use std::ffi::{CString, c_char, c_int, c_void};

use super::exec::{Arg, Call, Elem, Exec, check_copy};
use super::params::KernelParams;
use super::raw::RawOp;
use crate::error::{Error, Result};

unsafe extern "C" {
    /// `kernels/emu/launch.cpp`: runs the kernel `name`, or returns -1 when there is none.
    fn iekd_emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        args: *mut *mut c_void,
    ) -> c_int;
}

/// The CPU emulation of the GPU; buffers are host vectors, fresh ones poisoned (NaN for `f32`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Emulator;

impl Exec for Emulator {
    type Buf<T: Elem> = Vec<T>;

    fn len<T: Elem>(&self, buf: &Vec<T>) -> usize {
        buf.len()
    }

    fn upload<T: Elem>(&self, host: &[T]) -> Result<Vec<T>> {
        Ok(host.to_vec())
    }

    fn addr<T: Elem>(&self, buf: &Vec<T>) -> u64 {
        buf.as_ptr() as u64
    }

    fn download<T: Elem>(&self, buf: &Vec<T>) -> Result<Vec<T>> {
        Ok(buf.clone())
    }

    fn alloc<T: Elem>(&self, len: usize) -> Result<Vec<T>> {
        Ok(vec![T::POISON; len])
    }

    fn copy_into<T: Elem>(&self, src: &Vec<T>, dst: &mut Vec<T>, offset: usize) -> Result<()> {
        check_copy(src.len(), dst.len(), offset)?;
        dst[offset..offset + src.len()].copy_from_slice(src);
        Ok(())
    }

    unsafe fn launch<P: KernelParams>(&self, call: Call, p: &P, args: &mut [Arg<'_, Self>]) -> Result<()> {
        let ptrs = args
            .iter_mut()
            .map(|a| match a {
                Arg::In(b) => b.as_ptr() as u64,
                Arg::Index(b) => b.as_ptr() as u64,
                Arg::Addresses(b) => b.as_ptr() as u64,
                Arg::Out(b) => b.as_mut_ptr() as u64,
                Arg::IndexOut(b) => b.as_mut_ptr() as u64,
                Arg::Null => 0,
            })
            .collect();
        // SAFETY: the caller guarantees that the parameters match the kernel and that the buffers
        // are large enough; the addresses are those of the caller's live vectors.
        unsafe { self.execute(&RawOp::launch(call, p, ptrs)) }
    }
}

/// The thin unsafe core that [`super::gpu::Gpu`] drives: work by address (host addresses here).
impl Emulator {
    /// Runs `op` now: a kernel over its grid, or a copy.
    ///
    /// # Safety
    /// A launch's parameters must match its kernel, and every address must point at live memory
    /// holding what the kernel or copy touches.
    pub(crate) unsafe fn execute(&self, op: &RawOp) -> Result<()> {
        let call = match op {
            RawOp::Copy { src, dst, bytes } => {
                // SAFETY: the caller guarantees both ranges are live; `copy` allows overlap.
                unsafe { std::ptr::copy(*src as *const u8, *dst as *mut u8, *bytes) };
                return Ok(());
            }
            RawOp::Launch { call, .. } => *call,
        };
        let name = CString::new(call.kernel)
            .map_err(|_| Error::Device(format!("{}: bad kernel name", call.kernel)))?;
        let rc = op.with_kernel_params(|params| {
            // SAFETY: the caller guarantees that the parameters match the kernel and that the
            // buffers are large enough; `params` and what it points to outlive the (synchronous) call.
            unsafe {
                iekd_emu_launch(
                    name.as_ptr(),
                    call.grid.blocks.as_ptr(),
                    call.grid.threads.as_ptr(),
                    call.shared_bytes,
                    params.as_mut_ptr(),
                )
            }
        });
        if rc != Some(0) {
            return Err(Error::Device(format!("emulation: no kernel named {}", call.kernel)));
        }
        Ok(())
    }

    /// Copies `host` to address `dst`.
    ///
    /// # Safety
    /// `dst` must point at live memory of at least `size_of_val(host)` bytes, not overlapping `host`.
    pub(crate) unsafe fn write_raw<T: Elem>(&self, dst: u64, host: &[T]) {
        // SAFETY: as the caller guarantees.
        unsafe { std::ptr::copy_nonoverlapping(host.as_ptr(), dst as *mut T, host.len()) }
    }

    /// Copies from address `src` into `host`.
    ///
    /// # Safety
    /// `src` must point at live memory of at least `size_of_val(host)` bytes, not overlapping `host`.
    pub(crate) unsafe fn read_raw<T: Elem>(&self, src: u64, host: &mut [T]) {
        // SAFETY: as the caller guarantees.
        unsafe { std::ptr::copy_nonoverlapping(src as *const T, host.as_mut_ptr(), host.len()) }
    }
}
