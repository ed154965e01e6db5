#!/usr/bin/env bash
# Runs the emulated kernel tests (tests/kernels_emulated.rs) under ThreadSanitizer, then
# AddressSanitizer: build.rs compiles the kernels and the emulation header with
# g++ -fsanitize=thread / address (IEKD_EMU_SANITIZE), the test binary links the sanitizer's
# runtime, and the runtime is preloaded when the binary runs (the Rust code is not instrumented;
# the kernels' shared memory, barriers and buffers are). Each sanitizer builds in its own target
# folder. Exits non-zero on any report.
#
# The Rust side (the test harness, the rayon CPU path the kernels are compared with) is not
# instrumented, so ThreadSanitizer cannot see its synchronisation and would report the memcpy and
# allocations it makes through the runtime's interceptors as races: ignore_interceptors_accesses
# drops those accesses (locks and thread starts still synchronise). The kernels' own loads and
# stores are instrumented and still checked.
set -euo pipefail
cd "$(dirname "$0")/.."

cxx=${CXX:-c++}
for sanitizer in thread address; do
    runtime=$("$cxx" -print-file-name="lib${sanitizer:0:1}san.so")
    if [[ ! -e "$runtime" ]]; then
        echo "no $sanitizer sanitizer runtime for $cxx (install libtsan / libasan)" >&2
        exit 1
    fi
    target="target/sanitize-$sanitizer"
    echo "== $sanitizer: building in $target"
    binary=$(IEKD_EMU_SANITIZE=$sanitizer CARGO_TARGET_DIR=$target \
        cargo test --release --features cuda-emulation --test kernels_emulated --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*kernels_emulated[^"]*\)".*/\1/p' | tail -n 1)
    if [[ -z "$binary" ]]; then
        echo "the $sanitizer build failed; rerun: IEKD_EMU_SANITIZE=$sanitizer CARGO_TARGET_DIR=$target cargo test --release --features cuda-emulation --test kernels_emulated --no-run" >&2
        exit 1
    fi
    echo "== $sanitizer: running $binary"
    start=$SECONDS
    LD_PRELOAD="$runtime" \
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_interceptors_accesses=1" \
        ASAN_OPTIONS="halt_on_error=1 detect_leaks=0" \
        "$binary" --test-threads=1
    echo "== $sanitizer: clean ($((SECONDS - start)) s)"
done
