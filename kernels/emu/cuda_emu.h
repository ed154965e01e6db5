// CUDA's execution model on the host, so that g++ compiles the kernel files unchanged and runs them
// on the CPU (cargo feature cuda-emulation).
//
// A launch runs its blocks one after another. Every CUDA thread of a block is a std::thread that
// stays alive for the whole launch; __syncthreads() is a std::barrier over them, and the end of a
// block is one more barrier. Warp shuffles exchange values through one slot per thread between two
// barriers of the warp, and the tensor-core functions through a row of words per thread
// (tensor_core_emu.h). __shared__ variables are static: one block runs at a time and launches are
// serialised, so the block being run owns them; so is the dynamic shared memory, one buffer per launch. ThreadSanitizer sees every synchronisation.
#ifndef IEKD_CUDA_EMU_H
#define IEKD_CUDA_EMU_H

#include <math.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
// The launch's dynamic shared memory (see kernels/common.cuh).
#define DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(emu::dynamic_memory)

namespace emu {

// The words one lane publishes for a warp-wide tensor-core function (kernels/emu/tensor_core_emu.h).
constexpr unsigned LANE_WORDS = 16;
using LaneWords = std::array<unsigned, LANE_WORDS>;

// The synchronisation state of the block being run.
struct Block {
    std::barrier<> all;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    std::vector<unsigned long long> slots;
    std::vector<LaneWords> lanes;

    explicit Block(unsigned threads) : all(threads), slots(threads), lanes(threads) {
        for (unsigned first = 0; first < threads; first += 32)
            warps.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - first)));
    }
};

inline Block* current = nullptr;
inline std::mutex one_launch;
// The dynamic shared memory of the launch being run (its shared_bytes, 16-byte aligned).
inline unsigned char* dynamic_memory = nullptr;

inline unsigned linear_thread() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

// The value that lane src of the calling warp passed (v itself when src is outside the warp).
template <class T>
T exchange(T v, int src) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(unsigned long long));
    const unsigned t = linear_thread(), first = t - t % 32;
    const unsigned width = std::min(32u, blockDim.x * blockDim.y * blockDim.z - first);
    std::memcpy(&current->slots[t], &v, sizeof v);
    std::barrier<>& warp = *current->warps[t / 32];
    warp.arrive_and_wait();
    T out = v;
    if (src >= 0 && static_cast<unsigned>(src) < width) std::memcpy(&out, &current->slots[first + src], sizeof out);
    warp.arrive_and_wait();
    return out;
}

}  // namespace emu

#include "tensor_core_emu.h"

namespace emu {

// Calls kernel k with its arguments unpacked from args (CUDA's kernelParams layout).
template <class... A, std::size_t... I>
void call(void (*k)(A...), void** args, std::index_sequence<I...>) {
    k(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

// Runs kernel k over grid x block, one block at a time.
template <class... A>
void run(void (*k)(A...), dim3 grid, dim3 block, unsigned shared_bytes, void** args) {
    std::lock_guard<std::mutex> guard(one_launch);
    gridDim = grid;
    blockDim = block;
    std::vector<std::max_align_t> dynamic((shared_bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
    dynamic_memory = reinterpret_cast<unsigned char*>(dynamic.data());
    const unsigned threads = block.x * block.y * block.z, blocks = grid.x * grid.y * grid.z;
    Block state(threads);
    current = &state;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
            for (unsigned b = 0; b < blocks; ++b) {
                blockIdx = dim3(b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y));
                call(k, args, std::index_sequence_for<A...>{});
                end_block();
                state.all.arrive_and_wait();
            }
        });
    for (std::thread& th : pool) th.join();
    current = nullptr;
    dynamic_memory = nullptr;
}

}  // namespace emu

inline void __syncthreads() { emu::current->all.arrive_and_wait(); }

template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask) {
    return emu::exchange(v, static_cast<int>(emu::linear_thread() % 32) ^ lane_mask);
}

template <class T>
T __shfl_down_sync(unsigned, T v, unsigned delta) {
    return emu::exchange(v, static_cast<int>(emu::linear_thread() % 32 + delta));
}

template <class T>
T __ldg(const T* p) {
    return *p;
}

inline float __uint_as_float(unsigned i) { return emu::bits_float(i); }

inline float __int_as_float(int i) { return emu::bits_float(static_cast<unsigned>(i)); }

inline unsigned __float_as_uint(float f) { return emu::float_bits(f); }

inline float rsqrtf(float x) { return 1.f / sqrtf(x); }

inline float atomicAdd(float* address, float v) { return std::atomic_ref<float>(*address).fetch_add(v); }

// CUDA's atomicInc: *address becomes 0 when it was at least limit, else one more; returns the old
// value.
inline unsigned atomicInc(unsigned* address, unsigned limit) {
    std::atomic_ref<unsigned> a(*address);
    unsigned old = a.load();
    while (!a.compare_exchange_weak(old, old >= limit ? 0u : old + 1u)) {
    }
    return old;
}

// Orders the calling thread's memory accesses for every thread (the blocks of a launch run one
// after another here, so only the threads of one block run at once).
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// A load that skips the (non-coherent) L1 cache on a GPU.
template <class T>
T __ldcg(const T* p) {
    return *p;
}

using std::max;
using std::min;

#endif
