//! The kernel files, embedded at build time: their CUDA source, the PTX that `build.rs` compiled
//! when libnvrtc was available, and the names of their kernels.

/// One kernel file of `kernels/`.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    /// The file stem, e.g. `conv2d`.
    pub name: &'static str,
    /// The CUDA source as written (it includes `common.cuh`).
    pub source: &'static str,
    /// The compute_90 PTX compiled at build time, if libnvrtc was found then.
    pub ptx: Option<&'static str>,
    /// The `extern "C" __global__` functions of the file.
    pub kernels: &'static [&'static str],
}

/// `kernels/common.cuh`: the parameter structs, reductions and the tiled matrix product.
pub const COMMON: &str = include_str!("../../kernels/common.cuh");

/// Every kernel file, sorted by name.
pub const MODULES: &[Module] = include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The module that defines `kernel`.
pub fn module_of(kernel: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.kernels.contains(&kernel))
}

/// Every kernel's name, module by module.
pub fn kernel_names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().flat_map(|m| m.kernels.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_with_unique_kernels() {
        let names: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "batchnorm",
                "conv2d",
                "conv2d_bf16",
                "conv2d_tf32",
                "depthwise",
                "elementwise",
                "gemm",
                "gemm_tc",
                "losses",
                "optim",
                "overhaul",
                "pool",
                "tensor_core_test"
            ]
        );
        let mut kernels: Vec<&str> = kernel_names().collect();
        let count = kernels.len();
        kernels.sort_unstable();
        kernels.dedup();
        assert_eq!(kernels.len(), count, "a kernel name appears twice");
        assert_eq!(module_of("conv2d_forward").map(|m| m.name), Some("conv2d"));
        assert!(MODULES.iter().all(|m| m.source.contains(crate::cuda::nvrtc::COMMON_INCLUDE)));
    }
}
