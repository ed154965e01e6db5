"""Expected H200 times of the ResNet-20 convolutions (batch 128), written down before a GPU run
so that `iekd bench --device cuda` (gpu_conv_*_{fwd,bwd_data,bwd_weight}[_tf32|_bf16]) can
confirm or refute them.

    python3 scripts/expected_conv_speed.py

The model, per kernel and shape:
- roofline: max(FLOP / peak, bytes / HBM bandwidth), bytes = the operands read once and the
  result written once (fp32); peak = the fp32 FMA peak or the dense TF32 or bf16 tensor-core
  peak;
- the kernel's ceiling from its SASS (tests/kernels_compile.rs, `every_kernel_disassembles`): a
  main-loop iteration issues I warp instructions for F FLOP per warp (FFMA: 64 FLOP each; HMMA
  m16n8k8 TF32: 2048; HMMA m16n8k16 bf16: 4096), and an SM issues at most 4 warp instructions a clock, so the kernel
  reaches at most 4 F / I FLOP per clock per SM (and never more than the unit's peak);
- occupancy: blocks of the grid spread over the 132 SMs; an SM needs about 8 resident warps to
  hide latency, so an SM with fewer runs at (warps / 8) of its ceiling; a grid smaller than the
  machine leaves SMs idle;
- plus 2 us per launch (the gap between kernels in a replayed graph and the tail of the grid).
It ignores the epilogue, the split-K reduction of the weight gradient and cache effects: an
upper bound on speed, good to a factor of about two.
"""

SMS, CLOCK, HBM = 132, 1.98e9, 4.8e12
PEAK = {"fp32": SMS * 128 * 2 * CLOCK, "tf32": 494.7e12, "bf16": 989.4e12}
VERSIONS = ["fp32", "tf32", "bf16"]
LAUNCH = 2e-6

# Main-loop mix per warp from the SASS table at this commit: (instructions, FLOP per iteration).
LOOPS = {
    ("fp32", "fwd"): (1214, 256 * 64), ("fp32", "bwd_data"): (1400, 256 * 64),
    ("fp32", "bwd_weight"): (1105, 256 * 64),
    ("tf32", "fwd"): (437, 16 * 2048), ("tf32", "bwd_data"): (475, 16 * 2048),
    ("tf32", "bwd_weight"): (573, 16 * 2048),
    ("bf16", "fwd"): (276, 8 * 4096), ("bf16", "bwd_data"): (319, 8 * 4096),
    ("bf16", "bwd_weight"): (357, 8 * 4096),
}
# Threads per block and the block tile (rows x columns) of each version.
BLOCK = {"fp32": (256, 64, 64), "tf32": (128, 64, None), "bf16": (128, 64, None)}

SHAPES = [  # name, n, h, w, c_in, c_out, stride
    ("c1", 128, 32, 32, 3, 16, 1), ("c2", 128, 32, 32, 16, 16, 1), ("c3", 128, 32, 32, 16, 32, 2),
    ("c4", 128, 16, 16, 32, 32, 1), ("c5", 128, 16, 16, 32, 64, 2), ("c6", 128, 8, 8, 64, 64, 1),
]


def tile_n(columns):
    return 16 if columns <= 16 else 32 if columns <= 32 else 64


def expected(version, part, shape):
    name, n, h, w, ci, co, s = shape
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    flop = 2 * n * ho * wo * co * 9 * ci
    bytes_ = 4 * (n * h * w * ci + co * ci * 9 + n * ho * wo * co)
    roof = max(flop / PEAK[version], bytes_ / HBM)
    threads, rows, cols = BLOCK[version]
    # The GEMM each product is: (rows, columns) of its output.
    m, c = {"fwd": (n * ho * wo, co), "bwd_data": (n * h * w, ci), "bwd_weight": (9 * ci, co)}[part]
    cols = cols or tile_n(c)
    blocks = -(-m // rows) * -(-c // cols)
    if part == "bwd_weight":  # split over the pixels: at least 256 a slice, at most 64 slices
        blocks *= min(64, -(-n * ho * wo // 256))
    instrs, loop_flop = LOOPS[(version, part)]
    ceiling = min(4 * loop_flop / instrs, PEAK[version] / SMS / CLOCK)  # FLOP / clock / SM
    warps_per_sm = blocks * threads / 32 / SMS
    busy_sms = min(SMS, blocks)
    rate = ceiling * min(1.0, warps_per_sm / 8) * busy_sms * CLOCK
    time = max(flop / rate, bytes_ / HBM) + LAUNCH
    return flop, bytes_, roof, time


def main():
    print(f"{'shape':<5} {'part':<11} {'GFLOP':>6} {'MB':>6}"
          + "".join(f" {'roof ' + v:>10}" for v in VERSIONS)
          + "".join(f" {v + ' kernel':>12} {'TFLOP/s':>8}" for v in VERSIONS))
    total = {v: 0.0 for v in VERSIONS}
    roof = {v: 0.0 for v in VERSIONS}
    for shape in SHAPES:
        for part in ["fwd", "bwd_data", "bwd_weight"]:
            rows = {v: expected(v, part, shape) for v in VERSIONS}
            flop, bytes_ = rows["fp32"][0], rows["fp32"][1]
            line = f"{shape[0]:<5} {part:<11} {flop / 1e9:>6.2f} {bytes_ / 1e6:>6.1f}"
            line += "".join(f" {rows[v][2] * 1e6:>8.1f}us" for v in VERSIONS)
            line += "".join(f" {rows[v][3] * 1e6:>10.1f}us {flop / rows[v][3] / 1e12:>8.1f}" for v in VERSIONS)
            print(line)
            for v in VERSIONS:
                total[v] += rows[v][3]
                roof[v] += rows[v][2]
    print("one of each (fwd + both backward) per shape: "
          + ", ".join(f"{v} kernels {total[v] * 1e6:.0f} us (roofline {roof[v] * 1e6:.0f} us)" for v in VERSIONS))


if __name__ == "__main__":
    main()
