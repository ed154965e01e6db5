//! Where tensors live and where ops run.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::cuda::gpu::Gpu;
use crate::cuda::graph::StepGraph;
use crate::error::{Error, Result};

/// A compute device. The CPU (rayon) path runs everywhere and is the oracle for the others.
#[derive(Clone, Debug)]
pub enum Device {
    /// Host memory; ops run on rayon's thread pool.
    Cpu,
    /// A device running the CUDA kernels of `kernels/` (a GPU, or their CPU emulation).
    Cuda(Arc<Gpu>),
}

impl PartialEq for Device {
    fn eq(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Cuda(a), Device::Cuda(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Device {}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu ({} threads)", rayon::current_num_threads()),
            Device::Cuda(gpu) => f.write_str(gpu.label()),
        }
    }
}

/// The first GPU, probed once per process: the device, or why there is none.
fn first_gpu() -> std::result::Result<Arc<Gpu>, String> {
    static GPU: OnceLock<std::result::Result<Arc<Gpu>, String>> = OnceLock::new();
    GPU.get_or_init(|| {
        Gpu::probe().map(Arc::new).map_err(|e| match e {
            Error::Device(why) => why,
            other => other.to_string(),
        })
    })
    .clone()
}

impl Device {
    /// The device names [`Device::parse`] takes in this build.
    #[cfg(feature = "cuda-emulation")]
    pub const NAMES: &'static str = "auto, cpu, cuda, cuda-emulated";
    /// The device names [`Device::parse`] takes in this build.
    #[cfg(not(feature = "cuda-emulation"))]
    pub const NAMES: &'static str = "auto, cpu, cuda";

    /// The device named on the command line: `cpu`, `cuda` (an error saying why when no GPU can
    /// be used), `auto` ([`Device::auto`]), or `cuda-emulated` (the kernels run on the CPU; in
    /// builds with the `cuda-emulation` feature, for checks: it is very slow).
    pub fn parse(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "auto" => Ok(Device::auto().0),
            "cuda" => first_gpu().map(Device::Cuda).map_err(|why| Error::Device(format!("cuda: {why}"))),
            "cuda-emulated" => Device::emulated(),
            other => Err(Error::Device(format!("unknown device {other:?} ({})", Device::NAMES))),
        }
    }

    /// The first usable GPU, else the CPU; with the reason when it is the CPU.
    pub fn auto() -> (Device, Option<String>) {
        match first_gpu() {
            Ok(gpu) => (Device::Cuda(gpu), None),
            Err(why) => (Device::Cpu, Some(why)),
        }
    }

    /// The CPU emulation of the CUDA kernels, one shared instance.
    #[cfg(feature = "cuda-emulation")]
    pub fn emulated() -> Result<Device> {
        static EMU: OnceLock<Arc<Gpu>> = OnceLock::new();
        Ok(Device::Cuda(EMU.get_or_init(|| Arc::new(Gpu::emulated())).clone()))
    }

    /// The CPU emulation of the CUDA kernels: not in this build.
    #[cfg(not(feature = "cuda-emulation"))]
    pub fn emulated() -> Result<Device> {
        Err(Error::Device("this build has no CUDA emulation (cargo feature cuda-emulation)".into()))
    }

    /// Whether this is the CPU.
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// Runs `body`, a training step, on this device: through `graph` on a GPU when one is given
    /// (recorded, and replayed as one graph once steps repeat: [`Gpu::step`]), else as it comes.
    pub fn step<R>(&self, graph: Option<&mut StepGraph>, body: impl FnOnce() -> Result<R>) -> Result<R> {
        match (self, graph) {
            (Device::Cuda(gpu), Some(graph)) => gpu.step(graph, body),
            _ => body(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_errors() {
        assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
        let err = Device::parse("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device \"tpu\"") && err.contains("cuda"), "{err}");
        assert_eq!(err.contains("cuda-emulated"), cfg!(feature = "cuda-emulation"), "{err}");
        // Without a usable GPU, `cuda` says why in one line and `auto` falls back to the CPU.
        if let Err(e) = Device::parse("cuda") {
            assert!(e.to_string().starts_with("device: cuda: ") && !e.to_string().contains('\n'), "{e}");
            assert!(matches!(Device::auto(), (Device::Cpu, Some(_))));
        }
    }

    #[cfg(feature = "cuda-emulation")]
    #[test]
    fn tensors_move_between_devices() {
        use crate::tensor::Tensor;
        let gpu = Device::emulated().unwrap();
        assert_eq!(gpu, Device::emulated().unwrap());
        assert_ne!(gpu, Device::Cpu);
        let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]).unwrap();
        let on_gpu = x.to_device(&gpu).unwrap();
        assert_eq!(on_gpu.device(), gpu);
        assert_eq!(on_gpu.to_vec().unwrap(), x.to_vec().unwrap());
        assert_eq!(on_gpu.to_device(&Device::Cpu).unwrap().to_vec().unwrap(), [1.0, -2.0, 3.0]);
    }
}
