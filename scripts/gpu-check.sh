#!/usr/bin/env bash
# The GPU rung of the verification ladder, in two steps, because the GPU machine has no Rust
# toolchain and no network:
#
#   scripts/gpu-check.sh build   # here: builds the GPU parity tests (tests/kernels_gpu.rs,
#                                # tests/device_step.rs) and the iekd binary with the kernels
#                                # compiled to PTX at build time, into target/gpu-check/
#   scripts/gpu-check.sh run     # there, with target/gpu-check carried: every kernel against the
#                                # rayon CPU path, a whole training step, every recipe's steps and
#                                # the benchmarks' IE-FT step (ResNet-56 -> ResNet-20: every
#                                # gradient) and graph-replayed steps against eager ones, then
#                                # `iekd bench --device cuda` (steps eager and as graphs, kernels
#                                # and host launches per step) and PyTorch with cuDNN
#                                # (scripts/torch_gpu_reference.py, with its launches per step) in
#                                # the same run, and the comparison table (scripts/gpu_compare.py).
#                                # Figures go to $OUT (default target/gpu-check/results).
#
# build needs libnvrtc (pip install nvidia-cuda-nvrtc-cu12==12.9.86; this script finds it in the
# Python site-packages), so the binary carries its PTX and needs only the driver to run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/gpu-check

case "${1:-}" in
build)
    if [[ -z "${LD_LIBRARY_PATH:-}" || ! "$LD_LIBRARY_PATH" =~ cuda_nvrtc ]]; then
        site=$(python3 -c 'import nvidia.cuda_nvrtc as m; print(list(m.__path__)[0])' 2>/dev/null || true)
        [[ -n "$site" ]] && export LD_LIBRARY_PATH="$site/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_TARGET_DIR=target/gpu-check-build
    json=$(cargo test --release --test kernels_gpu --test device_step --no-run --message-format=json)
    cargo build --release --bin iekd
    if grep -q 'ptx: None' target/gpu-check-build/release/build/iekd-*/out/kernels.rs; then
        echo "the kernels were not compiled to PTX (is libnvrtc on LD_LIBRARY_PATH?)" >&2
        exit 1
    fi
    mkdir -p "$out"
    for test in kernels_gpu device_step; do
        binary=$(sed -n "s/.*\"executable\":\"\([^\"]*\/$test-[^\"]*\)\".*/\1/p" <<<"$json" | tail -n 1)
        [[ -n "$binary" ]] || { echo "no $test test binary was built" >&2; exit 1; }
        cp "$binary" "$out/$test"
    done
    cp target/gpu-check-build/release/iekd "$out/iekd"
    strip "$out"/* 2>/dev/null || true
    echo "built $out ($(du -sh "$out" | cut -f1)); carry it and run: scripts/gpu-check.sh run"
    ;;
run)
    results=${OUT:-$out/results}
    mkdir -p "$results"
    export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} IEKD_REQUIRE_GPU=1
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    # The parity pass synchronises after every launch, so a fault is reported under its kernel.
    IEKD_SYNC_EACH_LAUNCH=1 "$out/kernels_gpu" --nocapture --test-threads=1 >"$results/kernels_gpu.txt" 2>&1 &&
        k=ok || k=FAILED
    "$out/device_step" --nocapture --test-threads=1 >"$results/device_step.txt" 2>&1 && d=ok || d=FAILED
    echo "kernel parity: $k; whole step and recipes: $d (tables in $results)"
    grep -E "NO$|panicked|checks in" "$results/kernels_gpu.txt" "$results/device_step.txt" | head -n 20 || true
    "$out/iekd" bench --device cuda --json "$results/iekd-bench.json" 2>&1 | tee "$results/iekd-bench.txt" ||
        echo "iekd bench failed"
    timeout 240 python3 scripts/torch_gpu_reference.py --compile --json "$results/torch.json" >"$results/torch.txt" 2>&1 ||
        echo "PyTorch reference failed: $(tail -n 3 "$results/torch.txt")"
    [[ -f "$results/torch.json" ]] && python3 scripts/gpu_compare.py "$results/iekd-bench.json" "$results/torch.json" |
        tee "$results/compare.txt"
    [[ $k == ok && $d == ok ]]
    ;;
*)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
