//! The CUDA side of iekd: the kernels of `kernels/*.cu`, how they are compiled, and a launcher
//! for each, written once over [`exec::Exec`] so the same code drives a GPU and the CPU emulation.
//!
//! The kernel files compile three ways: NVRTC to compute_90 PTX ([`nvrtc`]; in `build.rs` when
//! libnvrtc loads, else at run time), NVRTC to sm_90 machine code for ptxas's resource report
//! ([`report`]), and g++ with `kernels/emu/cuda_emu.h` to run them on the CPU (`emu`, feature
//! `cuda-emulation`). The verification layer checks every kernel against the rayon CPU path on
//! any backend.
//!
//! - [`params`]: the `#[repr(C)]` parameter structs mirrored from `kernels/common.cuh`;
//! - [`sources`]: the embedded kernel files and build-time PTX;
//! - [`exec`]: the backend interface (buffers, copies, launch);
//! - [`launch`]: one launcher per kernel (shape checks, launch shape, outputs);
//! - [`backend`]: the GPU through cudarc, with [`backend::CudaBackend::probe`];
//! - [`gpu`]: the device of [`crate::Device::Cuda`], a GPU or the emulation.

pub mod backend;
#[cfg(feature = "cuda-emulation")]
pub mod emu;
pub mod exec;
pub mod gpu;
pub mod launch;
pub mod nvrtc;
pub mod params;
pub mod report;
pub mod sources;
