#!/usr/bin/env bash
# The GPU rung of the verification ladder, in two steps, because the GPU machine has no Rust
# toolchain and no network:
#
#   scripts/gpu-check.sh build   # here: builds the GPU parity test (tests/kernels_gpu.rs) with the
#                                # kernels compiled to PTX at build time, into target/gpu-check/
#   scripts/gpu-check.sh run     # there, with target/gpu-check carried: probes the GPU, then runs
#                                # every kernel against the rayon CPU path and prints the table
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
    binary=$(CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_TARGET_DIR=target/gpu-check-build \
        cargo test --release --test kernels_gpu --no-run --message-format=json |
        sed -n 's/.*"executable":"\([^"]*kernels_gpu[^"]*\)".*/\1/p' | tail -n 1)
    if [[ -z "$binary" ]] || grep -q 'ptx: None' target/gpu-check-build/release/build/iekd-*/out/kernels.rs; then
        echo "build failed or the kernels were not compiled to PTX (is libnvrtc on LD_LIBRARY_PATH?)" >&2
        exit 1
    fi
    mkdir -p "$out"
    cp "$binary" "$out/kernels_gpu"
    strip "$out/kernels_gpu" 2>/dev/null || true
    echo "built $out/kernels_gpu ($(du -h "$out/kernels_gpu" | cut -f1)); carry $out and run: scripts/gpu-check.sh run"
    ;;
run)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    IEKD_REQUIRE_GPU=1 "$out/kernels_gpu" --nocapture --test-threads=1 2>&1 | tail -n 400
    ;;
*)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
