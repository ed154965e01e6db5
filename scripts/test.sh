#!/usr/bin/env bash
# The test command: installs what the tests need, then runs them all.
#
#   scripts/test.sh [extra cargo test arguments, e.g. -- --nocapture]
#
# 1. Debian's Fashion-MNIST (/usr/share/datasets/fashion-mnist) for the tests on real images,
#    when this is root on Debian; elsewhere those tests print SKIPPED (under CI=true they fail).
# 2. NVRTC from PyPI (nvidia-cuda-nvrtc-cu12; no GPU, driver or toolkit needed), so every CUDA
#    kernel is compiled to PTX and for sm_90 with its ptxas report checked; IEKD_REQUIRE_NVRTC=1
#    then makes a missing libnvrtc a failure instead of a visible skip.
# 3. cuobjdump and nvdisasm from PyPI (nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm), so the
#    sm_90 machine code of every kernel is disassembled and its main loop's instruction mix
#    checked; IEKD_REQUIRE_SASS=1 then makes a missing cuobjdump a failure.
# 4. cargo test --release --features cuda-emulation: every test, the unchanged CUDA kernels
#    included (run on the CPU by the emulation).
set -euo pipefail
cd "$(dirname "$0")/.."

fashion=/usr/share/datasets/fashion-mnist
if [ ! -e "$fashion/t10k-labels-idx1-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's dataset-fashion-mnist"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --reinstall dataset-fashion-mnist >/dev/null
  else
    echo "note: $fashion is missing and cannot be installed here: the tests on it will say SKIPPED"
  fi
fi

nvrtc_lib() {
  python3 -c 'import os, nvidia.cuda_nvrtc as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null
}
cuobjdump_bin() {
  python3 -c 'import os, sys, nvidia; d = os.path.join(list(nvidia.__path__)[0], "cu13", "bin")
if not all(os.path.isfile(os.path.join(d, t)) for t in ("cuobjdump", "nvdisasm")): sys.exit(1)
print(d)' 2>/dev/null
}
if command -v python3 >/dev/null; then
  if ! lib=$(nvrtc_lib); then
    python3 -m pip install -q --disable-pip-version-check nvidia-cuda-nvrtc-cu12==12.9.86 \
      || echo "note: NVRTC could not be installed: the kernel compile tests will say SKIPPED"
    lib=$(nvrtc_lib) || lib=
  fi
  if [ -n "$lib" ]; then
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export IEKD_REQUIRE_NVRTC=1
  fi
  if ! cuobjdump_bin >/dev/null; then
    python3 -m pip install -q --disable-pip-version-check nvidia-cuda-cuobjdump==13.5.37 \
      nvidia-cuda-nvdisasm==13.5.37 \
      || echo "note: cuobjdump could not be installed: the SASS test will say SKIPPED"
  fi
  if bin=$(cuobjdump_bin); then
    export IEKD_CUOBJDUMP="$bin/cuobjdump" IEKD_REQUIRE_SASS=1
  fi
fi

exec cargo test --release --features cuda-emulation "$@"
