//! What the hardware will execute, read without a GPU: NVRTC's sm_90 CUBIN of a kernel file
//! ([`super::nvrtc::Output::Cubin`]) disassembled by `cuobjdump -sass` (PyPI
//! `nvidia-cuda-cuobjdump`, which calls `nvdisasm` from `nvidia-cuda-nvdisasm`), parsed into each
//! kernel's instructions, and summed up as an instruction mix: over the whole kernel and over its
//! main loop (the loop with the densest arithmetic: the tile product's `k` loop).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One SASS instruction: its address and opcode (`HMMA.1688.F32.TF32`, `FFMA`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Byte offset in the kernel.
    pub address: u64,
    /// The opcode with its modifiers.
    pub opcode: String,
    /// The branch target, for a branch (`BRA`).
    pub target: Option<u64>,
}

impl Instruction {
    /// The opcode without modifiers: `HMMA` for `HMMA.1688.F32.TF32`.
    pub fn base(&self) -> &str {
        self.opcode.split('.').next().unwrap_or(&self.opcode)
    }
}

/// The disassembly of one kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSass {
    /// The kernel's name.
    pub kernel: String,
    /// Its instructions in address order.
    pub instructions: Vec<Instruction>,
}

/// Instruction counts by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mix {
    /// Every instruction (`NOP` padding excluded).
    pub total: usize,
    /// Tensor-core matrix multiply-accumulates (`HMMA`).
    pub hmma: usize,
    /// fp32 fused multiply-adds (`FFMA`).
    pub ffma: usize,
    /// Shared-memory matrix loads (`LDSM`).
    pub ldsm: usize,
    /// Other shared-memory loads (`LDS`).
    pub lds: usize,
    /// Asynchronous global-to-shared copies (`LDGSTS`).
    pub ldgsts: usize,
    /// Global loads (`LDG`).
    pub ldg: usize,
    /// Integer and address arithmetic, comparisons and moves of predicates.
    pub integer: usize,
}

/// The opcodes counted as integer work.
const INTEGER: &[&str] = &[
    "IMAD", "IADD3", "IADD", "ISETP", "LOP3", "SHF", "LEA", "IABS", "IMNMX", "SEL", "ISCADD", "IMUL", "SGXT",
    "LEA_HI", "PRMT", "POPC", "FLO", "BREV", "I2F", "F2I", "IDP", "VIADD", "VIMNMX",
];

impl Mix {
    /// The mix of `instructions`.
    pub fn of(instructions: &[Instruction]) -> Mix {
        let mut m = Mix::default();
        for i in instructions {
            let base = i.base();
            if base == "NOP" {
                continue;
            }
            m.total += 1;
            match base {
                "HMMA" => m.hmma += 1,
                "FFMA" => m.ffma += 1,
                "LDSM" => m.ldsm += 1,
                "LDS" => m.lds += 1,
                "LDGSTS" => m.ldgsts += 1,
                "LDG" => m.ldg += 1,
                b if INTEGER.contains(&b) => m.integer += 1,
                _ => {}
            }
        }
        m
    }

    /// Multiply-accumulate instructions: `HMMA` and `FFMA`.
    pub fn math(&self) -> usize {
        self.hmma + self.ffma
    }
}

/// Parses `cuobjdump -sass` output into its kernels.
pub fn parse(text: &str) -> Vec<KernelSass> {
    let mut kernels: Vec<KernelSass> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("Function : ") {
            kernels.push(KernelSass { kernel: name.trim().to_string(), instructions: Vec::new() });
            continue;
        }
        let (Some(kernel), Some(rest)) = (kernels.last_mut(), line.strip_prefix("/*")) else { continue };
        let Some((address, body)) = rest.split_once("*/") else { continue };
        let Ok(address) = u64::from_str_radix(address, 16) else { continue };
        let Some((body, _)) = body.split_once(';') else { continue };
        let mut words = body.split_whitespace().skip_while(|w| w.starts_with('@'));
        let Some(opcode) = words.next() else { continue };
        let target = if opcode.starts_with("BRA") {
            words.find_map(|w| w.strip_prefix("0x")).and_then(|h| u64::from_str_radix(h, 16).ok())
        } else {
            None
        };
        kernel.instructions.push(Instruction { address, opcode: opcode.to_string(), target });
    }
    kernels
}

/// The main loop of `k`: of the loops (a backward branch and the instructions from its target to
/// it) holding an HMMA or at least 16 FFMAs, the one where multiply-accumulates are densest; `None`
/// when no loop does.
pub fn main_loop(k: &KernelSass) -> Option<&[Instruction]> {
    let ins = &k.instructions;
    let mut best: Option<(&[Instruction], f64)> = None;
    for (end, branch) in ins.iter().enumerate() {
        let Some(target) = branch.target.filter(|&t| t <= branch.address) else { continue };
        let Some(start) = ins.iter().position(|i| i.address == target) else { continue };
        let body = &ins[start..=end];
        let mix = Mix::of(body);
        if mix.hmma == 0 && mix.ffma < 16 {
            continue;
        }
        let density = mix.math() as f64 / mix.total as f64;
        if best.is_none_or(|(_, d)| density > d) {
            best = Some((body, density));
        }
    }
    best.map(|(body, _)| body)
}

/// Whether `kernel` is a tensor-core kernel by the naming convention of `kernels/`: its name ends
/// in `_tf32` or `_bf16`, or it holds `mma`.
pub fn is_tensor_core(kernel: &str) -> bool {
    kernel.ends_with("_tf32") || kernel.ends_with("_bf16") || kernel.contains("mma")
}

/// The `cuobjdump` to run: `IEKD_CUOBJDUMP`, else one on `PATH`, else the one of the PyPI wheel
/// `nvidia-cuda-cuobjdump` (`site-packages/nvidia/cu13/bin`) of `python3`.
pub fn cuobjdump() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IEKD_CUOBJDUMP") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("cuobjdump")).find(|p| p.is_file()));
    if on_path.is_some() {
        return on_path;
    }
    let out = Command::new("python3")
        .args(["-c", "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], 'cu13', 'bin'))"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Some(dir.join("cuobjdump")).filter(|p| p.is_file())
}

/// Disassembles `cubin` with `cuobjdump -sass` (its folder, where the wheel also puts `nvdisasm`,
/// first on the child's `PATH`); the error says what failed.
pub fn disassemble(cuobjdump: &Path, name: &str, cubin: &[u8]) -> Result<Vec<KernelSass>, String> {
    let dir = std::env::temp_dir().join(format!("iekd-sass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!("{name}.cubin"));
    std::fs::write(&file, cubin).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut path: Vec<PathBuf> = cuobjdump.parent().map(Path::to_path_buf).into_iter().collect();
    path.extend(std::env::var_os("PATH").iter().flat_map(std::env::split_paths));
    let out = Command::new(cuobjdump)
        .arg("-sass")
        .arg(&file)
        .env("PATH", std::env::join_paths(path).map_err(|e| e.to_string())?)
        .output()
        .map_err(|e| format!("{}: {e}", cuobjdump.display()));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if !out.status.success() {
        return Err(format!("cuobjdump -sass {name}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// A table row per kernel: module, kernel, registers and shared memory (from ptxas's report, by
/// kernel name in `resources`), then the instruction mix of its main loop (or `-`).
pub fn table(rows: &[(&str, KernelSass)], resources: &BTreeMap<String, (u32, u64)>) -> String {
    let mut out = format!(
        "{:<16} {:<28} {:>4} {:>6} {:>6} {:>5} {:>5} {:>5} {:>4} {:>6} {:>4} {:>5}\n",
        "module", "kernel", "regs", "smem", "loop", "HMMA", "FFMA", "LDSM", "LDS", "LDGSTS", "LDG", "int"
    );
    for (module, k) in rows {
        let (regs, smem) = resources.get(&k.kernel).copied().unwrap_or_default();
        let head = format!("{module:<16} {:<28} {regs:>4} {smem:>6}", k.kernel);
        let line = match main_loop(k).map(Mix::of) {
            Some(m) => format!(
                "{head} {:>6} {:>5} {:>5} {:>5} {:>4} {:>6} {:>4} {:>5}",
                m.total, m.hmma, m.ffma, m.ldsm, m.lds, m.ldgsts, m.ldg, m.integer
            ),
            None => format!("{head} {:>6}", "-"),
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Mix, is_tensor_core, main_loop, parse};

    const SAMPLE: &str = "
	code for sm_90
		Function : demo_mma
	.headerflags	@\"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)\"
        /*0000*/                   LDC R1, c[0x0][0x28] ;     /* 0x00000a00ff017b82 */
        /*0010*/                   S2R R0, SR_TID.X ;         /* 0x0000000000007919 */
        /*0020*/                   LDSM.16.M88.4 R4, [R2] ;   /* 0x0000000002047983 */
        /*0030*/                   HMMA.16816.F32.BF16 R8, R4, R6, R8 ;
        /*0040*/                   HMMA.16816.F32.BF16 R12, R4, R7, R12 ;
        /*0050*/                   IADD3 R2, R2, 0x20, RZ ;
        /*0060*/                   ISETP.GE.AND P0, PT, R2, R3, PT ;
        /*0070*/              @!P0 BRA 0x20 ;
        /*0080*/                   FFMA R0, R1, R1, R0 ;
        /*0090*/                   EXIT ;
        /*00a0*/                   BRA 0xa0;
        /*00b0*/                   NOP;
";

    #[test]
    fn parses_kernels_opcodes_and_branch_targets() {
        let k = &parse(SAMPLE)[0];
        assert_eq!(k.kernel, "demo_mma");
        assert_eq!(k.instructions.len(), 12);
        assert_eq!(k.instructions[3].base(), "HMMA");
        assert_eq!(k.instructions[7].target, Some(0x20));
        let m = Mix::of(&k.instructions);
        assert_eq!((m.total, m.hmma, m.ffma, m.ldsm, m.integer), (11, 2, 1, 1, 2));
    }

    #[test]
    fn the_main_loop_is_the_densest_loop_with_enough_arithmetic() {
        let k = &parse(SAMPLE)[0];
        // The loop from 0x20 to the branch at 0x70: LDSM, two HMMAs, the counter and the branch.
        let main = main_loop(k).unwrap();
        assert_eq!((main.len(), Mix::of(main).hmma), (6, 2));
        let body: String =
            (0..16).map(|i| format!("        /*{:04x}*/ FFMA R0, R1, R1, R0 ;\n", 0x100 + 16 * i)).collect();
        let text = format!("Function : f\n{body}        /*0200*/ BRA 0x100 ;\n        /*0210*/ EXIT ;\n");
        let k = &parse(&text)[0];
        assert_eq!(Mix::of(main_loop(k).unwrap()).ffma, 16);
        // Fifteen FFMAs and no HMMA: no main loop.
        assert!(main_loop(&parse(&text.replacen("FFMA", "FMUL", 1))[0]).is_none());
    }

    #[test]
    fn tensor_core_kernels_are_named_by_precision_or_mma() {
        assert!(is_tensor_core("conv2d_forward_tf32") && is_tensor_core("mma_selftest"));
        assert!(!is_tensor_core("conv2d_forward") && !is_tensor_core("gemm"));
    }
}
