//! The kernels compiled by g++ with `kernels/emu/cuda_emu.h` and run on the CPU (cargo feature
//! `cuda-emulation`): the unchanged `.cu` files, one CUDA thread per host thread, block after block.
//! Slow, and meant for tests: every launcher and parity check runs here as on a GPU.

use std::ffi::{CString, c_char, c_int, c_void};

use super::exec::{Arg, Call, Elem, Exec, check_copy};
use super::params::KernelParams;
use crate::error::{Error, Result};

unsafe extern "C" {
    /// `kernels/emu/launch.cpp`: runs the kernel `name`, or returns -1 when there is none.
    fn iekd_emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
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
        let Call { kernel, grid } = call;
        let name = CString::new(kernel).map_err(|_| Error::Device(format!("{kernel}: bad kernel name")))?;
        // The value of each pointer parameter, then CUDA's kernelParams: the address of each value.
        let mut pointers: Vec<*mut c_void> = args
            .iter_mut()
            .map(|a| match a {
                Arg::In(b) => b.as_ptr() as *mut c_void,
                Arg::Index(b) => b.as_ptr() as *mut c_void,
                Arg::Out(b) => b.as_mut_ptr() as *mut c_void,
                Arg::IndexOut(b) => b.as_mut_ptr() as *mut c_void,
                Arg::Null => std::ptr::null_mut(),
            })
            .collect();
        let mut kernel_params: Vec<*mut c_void> = std::iter::once(p as *const P as *mut c_void)
            .chain(pointers.iter_mut().map(|p| p as *mut *mut c_void as *mut c_void))
            .collect();
        // SAFETY: the caller guarantees that the parameters match the kernel and that the buffers
        // are large enough; `kernel_params` and what it points to outlive the (synchronous) call.
        let rc = unsafe {
            iekd_emu_launch(
                name.as_ptr(),
                grid.blocks.as_ptr(),
                grid.threads.as_ptr(),
                kernel_params.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(Error::Device(format!("emulation: no kernel named {kernel}")));
        }
        Ok(())
    }
}
