//! ptxas's resource report for each kernel, read from NVRTC's log of an sm_90 compilation with
//! `--ptxas-options=-v` ([`super::nvrtc::CUBIN_OPTIONS`]).

use std::fmt::Write as _;

/// The resources ptxas gave one kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelResources {
    /// The kernel's name.
    pub kernel: String,
    /// Registers per thread.
    pub registers: u32,
    /// Static shared memory per block, in bytes.
    pub shared_bytes: u64,
    /// Stack frame per thread, in bytes.
    pub stack_bytes: u64,
    /// Bytes spilled to local memory (stores + loads).
    pub spill_bytes: u64,
}

/// The number that precedes `unit` in `line` (`"40 registers"` gives 40 for `"registers"`).
fn number_before(line: &str, unit: &str) -> Option<u64> {
    let head = &line[..line.find(unit)?];
    head.split(|c: char| !c.is_ascii_digit()).rfind(|s| !s.is_empty())?.parse().ok()
}

/// Every kernel of a ptxas verbose log, in the order of the log.
pub fn parse_ptxas(log: &str) -> Vec<KernelResources> {
    let mut kernels: Vec<KernelResources> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            kernels.push(KernelResources { kernel: name.to_string(), ..KernelResources::default() });
            continue;
        }
        let Some(k) = kernels.last_mut() else { continue };
        if line.contains("bytes stack frame") {
            k.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
            k.spill_bytes = number_before(line, "bytes spill stores").unwrap_or(0)
                + number_before(line, "bytes spill loads").unwrap_or(0);
        } else if line.contains("registers") {
            k.registers = number_before(line, "registers").unwrap_or(0) as u32;
            k.shared_bytes = number_before(line, "bytes smem").unwrap_or(0);
        }
    }
    kernels
}

/// A text table of `rows` (module, kernel, registers, shared memory, stack, spills).
pub fn table(rows: &[(&str, KernelResources)]) -> String {
    let mut s = format!(
        "{:<16} {:<30} {:>9} {:>12} {:>11} {:>11}\n",
        "module", "kernel", "registers", "shared bytes", "stack bytes", "spill bytes"
    );
    for (module, k) in rows {
        writeln!(
            s,
            "{module:<16} {:<30} {:>9} {:>12} {:>11} {:>11}",
            k.kernel, k.registers, k.shared_bytes, k.stack_bytes, k.spill_bytes
        )
        .expect("write to String");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ptxas_log() {
        let log = "ptxas info    : 0 bytes gmem\n\
            ptxas info    : Compiling entry function 'conv2d_forward' for 'sm_90'\n\
            ptxas info    : Function properties for conv2d_forward\n\
            ptxas         .     8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
            ptxas info    : Used 64 registers, used 1 barriers, 8320 bytes smem, 408 bytes cmem[0]\n\
            ptxas info    : Compiling entry function 'scale_values' for 'sm_90'\n\
            ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
            ptxas info    : Used 16 registers, used 0 barriers, 380 bytes cmem[0]\n";
        let k = parse_ptxas(log);
        assert_eq!(k.len(), 2);
        assert_eq!(
            k[0],
            KernelResources {
                kernel: "conv2d_forward".into(),
                registers: 64,
                shared_bytes: 8320,
                stack_bytes: 8,
                spill_bytes: 16
            }
        );
        assert_eq!((k[1].registers, k[1].shared_bytes, k[1].spill_bytes), (16, 0, 0));
        assert!(table(&[("conv2d", k[0].clone())]).contains("conv2d_forward"));
    }
}
