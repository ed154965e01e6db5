//! A launch or a copy reduced to what the driver takes: the kernel, its launch shape, the bytes of
//! its parameter struct and the address of each buffer. Both engines execute this one form, and a
//! recorded training step ([`super::graph`]) is a list of them, compared and replayed as a whole.

use std::ffi::c_void;

use super::exec::Call;
use super::params::KernelParams;

/// One unit of device work in the form every engine executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawOp {
    /// A kernel launch.
    Launch {
        /// The kernel and its launch shape.
        call: Call,
        /// The parameter struct, as 4-byte words (every field is an `i32` or an `f32`).
        params: Vec<u32>,
        /// The address of each buffer argument, in order (0 for an absent one).
        ptrs: Vec<u64>,
    },
    /// `bytes` bytes copied from address `src` to address `dst`, both on the device.
    Copy {
        /// Source address.
        src: u64,
        /// Destination address.
        dst: u64,
        /// Length in bytes.
        bytes: usize,
    },
}

impl RawOp {
    /// The launch of `call` with parameters `p` and buffers at `ptrs`.
    pub fn launch<P: KernelParams>(call: Call, p: &P, ptrs: Vec<u64>) -> RawOp {
        const { assert!(size_of::<P>().is_multiple_of(4) && align_of::<P>() == 4) };
        let words = size_of::<P>() / 4;
        // SAFETY: `KernelParams` types are `#[repr(C)]` structs of `i32` and `f32` fields only
        // (its safety contract), so `P` is `words` initialised 4-byte words without padding.
        let params = unsafe { std::slice::from_raw_parts((p as *const P).cast::<u32>(), words) }.to_vec();
        RawOp::Launch { call, params, ptrs }
    }

    /// Calls `f` with CUDA's `kernelParams` array for this launch (the address of the parameter
    /// struct, then the address of each pointer value); `None` for a copy.
    pub fn with_kernel_params<R>(&self, f: impl FnOnce(&mut [*mut c_void]) -> R) -> Option<R> {
        let RawOp::Launch { params, ptrs, .. } = self else { return None };
        let mut args: Vec<*mut c_void> = std::iter::once(params.as_ptr() as *mut c_void)
            .chain(ptrs.iter().map(|p| p as *const u64 as *mut c_void))
            .collect();
        Some(f(&mut args))
    }

    /// The buffer addresses this op touches.
    pub fn addresses(&self) -> Vec<u64> {
        match self {
            RawOp::Launch { ptrs, .. } => ptrs.iter().copied().filter(|&p| p != 0).collect(),
            RawOp::Copy { src, dst, .. } => vec![*src, *dst],
        }
    }

    /// The kernel's name, or `copy`.
    pub fn name(&self) -> &'static str {
        match self {
            RawOp::Launch { call, .. } => call.kernel,
            RawOp::Copy { .. } => "copy",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::exec::Grid;
    use crate::cuda::params::SgdParams;

    #[test]
    fn parameters_become_words_and_kernel_params_point_at_them() {
        let p = SgdParams { tensors: 3, lr: 0.5, ..Default::default() };
        let grid = Grid { blocks: [1, 1, 1], threads: [256, 1, 1] };
        let call = Call { kernel: "sgd_step", grid, shared_bytes: 0 };
        let op = RawOp::launch(call, &p, vec![16, 0, 32]);
        let RawOp::Launch { params, .. } = &op else { panic!("a launch") };
        assert_eq!(params.len() * 4, size_of::<SgdParams>());
        assert_eq!(op.addresses(), [16, 32]);
        op.with_kernel_params(|args| {
            assert_eq!(args.len(), 4);
            // SAFETY: the first entry points at the parameter words, the others at the addresses.
            let first = unsafe { *(args[0] as *const SgdParams) };
            assert_eq!(first.tensors, 3);
            assert_eq!(unsafe { *(args[3] as *const u64) }, 32);
        });
        assert_eq!(RawOp::Copy { src: 1, dst: 2, bytes: 4 }.with_kernel_params(|_| ()), None);
    }
}
