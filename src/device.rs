//! Where tensors live and where ops run.

use std::fmt;

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
