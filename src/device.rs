//! Where tensors live and where ops run.

use std::fmt;

use crate::error::{Error, Result};

/// A compute device. The CPU (rayon) path runs everywhere and is the oracle for the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// Host memory; ops run on rayon's thread pool.
    Cpu,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu ({} threads)", rayon::current_num_threads()),
        }
    }
}

impl Device {
    /// The device named on the command line: `cpu`, `cuda`, or `auto` (a usable GPU, else the CPU).
    pub fn parse(name: &str) -> Result<Device> {
        match name {
            "cpu" | "auto" => Ok(Device::Cpu),
            "cuda" => Err(Error::Device(
                "the CUDA backend cannot run training in this build yet; use --device cpu".into(),
            )),
            other => Err(Error::Device(format!("unknown device {other:?} (auto, cpu, cuda)"))),
        }
    }
}
