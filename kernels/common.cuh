// Shared by every kernel file: the parameter structs (mirrored field for field by
// src/cuda/params.rs), launch-shape constants, indexing helpers, warp and block reductions, and the
// shared-memory tiled matrix product behind convolution and the linear layer.
//
// Compiled three ways: by NVRTC (the build splices this file in place of its #include), by NVRTC
// for sm_90 in the resource report, and by g++ after kernels/emu/cuda_emu.h for CPU execution.
// Conventions: every kernel takes its parameter struct first, then its buffers; a null pointer
// marks an optional buffer that is absent (declared NULLABLE); kernels that call __syncthreads
// return early only for a whole block. The comment above each kernel ends with its contract (the
// elements it may touch in each buffer, and preconditions on the parameters), from which build.rs
// generates the checked launch functions of src/cuda/kernels.rs (format: src/cuda/codegen.rs).
// Every kernel keeps to its contract for any number of blocks: it guards its block and thread
// indices by the parameters and checks index values it reads before using them.
#ifndef IEKD_COMMON_CUH
#define IEKD_COMMON_CUH

// One convolution: input [n, h, w, c_in], weight [c_out, c_in, kh, kw], output [n, h_out, w_out,
// c_out]; split_rows is the number of output pixels one block of the weight gradient sums;
// accumulate = 1 makes the data gradient add into its output instead of overwriting it; the
// batch-norm epilogue applies a ReLU when relu = 1 and adds eps to the variance.
struct ConvParams {
    int n, h, w, c_in, c_out, kh, kw, stride, pad, h_out, w_out, split_rows, accumulate, relu;
    float eps;
};
// c[m, n] = sum_k a(i, k) b(k, j) with a(i, k) = a[i * a_row + k * a_col], b likewise.
struct GemmParams {
    int m, n, k, a_row, a_col, b_row, b_col;
};
// Batch norm over rows x c (channels last); split_rows rows per block of a channel reduction.
struct BnParams {
    int rows, c, split_rows, relu, training;
    float eps, momentum, unbias;
};
// An elementwise map over len values with one scalar a and a mode (see each kernel).
struct MapParams {
    int len, mode;
    float a;
};
// Rows of c channels; channels [start, start + k) or k gathered channels.
struct ChannelParams {
    int rows, c, start, k;
};
// The option-A shortcut: input [n, h, w, c], output [n, ceil(h/2), ceil(w/2), c_out].
struct SubsampleParams {
    int n, h, w, c, c_out;
};
// Global average pooling of [n, pixels, c].
struct PoolParams {
    int n, pixels, c;
};
// A per-channel window op: input [n, h, w, c], a k x k window with stride and zero padding pad,
// output [n, h_out, w_out, c] (max pooling; depthwise convolution with weight [c, 1, k, k]).
struct WindowParams {
    int n, h, w, c, k, stride, pad, h_out, w_out;
};
// A row-wise op on rows x cols values with a mode and one scalar a (see each kernel).
struct RowParams {
    int rows, cols, mode;
    float a;
};
// One SGD update of len parameters.
struct SgdParams {
    int tensors, nesterov, first;
    float lr, momentum, weight_decay;
};

// A device address held in a buffer (a table of buffers that one launch updates).
typedef unsigned long long addr_t;

// `T* name`: the launch's dynamic shared memory, whose size in bytes the kernel's contract states
// as `shared(bytes)` (the emulation defines its own version in kernels/emu/cuda_emu.h).
#ifndef DYNAMIC_SHARED
#define DYNAMIC_SHARED(T, name)                                        \
    extern __shared__ __align__(16) unsigned char iekd_dynamic_shared[]; \
    T* name = reinterpret_cast<T*>(iekd_dynamic_shared)
#endif

// Marks a buffer argument that may be a null pointer (an absent optional buffer).
#define NULLABLE

// Threads of every one-dimensional block.
constexpr int BLOCK = 256;
constexpr int WARP = 32;
constexpr unsigned FULL_MASK = 0xffffffffu;
// The smallest divisor when normalizing a row (PyTorch's F.normalize eps).
constexpr float NORM_EPS = 1e-12f;
// Channel reductions: blocks of 32 channels x 8 row lanes.
constexpr int RED_C = 32;
constexpr int RED_R = 8;

// Tiles of the matrix product: TILE_M x TILE_N outputs per block of TILE_THREADS threads, each
// thread a 4 x 4 micro-tile (rows ty + 16 i, columns tx + 16 j); TILE_K deep stages in shared
// memory, rows padded by one word so the transposed stores do not collide in a bank.
constexpr int TILE_M = 64;
constexpr int TILE_N = 64;
constexpr int TILE_K = 16;
constexpr int TILE_THREADS = 256;
// Output tiles whose per-channel statistics the last of them merges into one group's (the
// convolution's batch-statistics epilogue); the last group then merges the groups'.
constexpr int STAT_GROUP = 32;

__device__ __forceinline__ int global_thread() { return blockIdx.x * blockDim.x + threadIdx.x; }

__device__ __forceinline__ int grid_stride() { return gridDim.x * blockDim.x; }

// The coordinates of element i of a channels-last [n, h, w, c] tensor.
struct Pixel {
    int n, row, col, ch;
};
__device__ __forceinline__ Pixel pixel_at(int i, int h, int w, int c) {
    const int pixel = i / c;
    return {pixel / (w * h), (pixel / w) % h, pixel % w, i % c};
}

// out[i] = f(pixel_at(i, h, w, c)) for every element i of a channels-last [n, h, w, c] output, a
// grid-stride loop.
template <class F>
__device__ __forceinline__ void map_pixels(int n, int h, int w, int c, float* __restrict__ out, F f) {
    for (int i = global_thread(); i < n * h * w * c; i += grid_stride()) out[i] = f(pixel_at(i, h, w, c));
}

__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

// 1, -1 or 0 (the subgradient of |v| that PyTorch uses).
__device__ __forceinline__ float sign_of(float v) { return v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// The sum of v over a one-dimensional block of BLOCK threads, returned to every thread; the order
// of additions is fixed, so the result is the same on every run.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warp_totals[BLOCK / WARP];
    v = warp_sum(v);
    __syncthreads();  // an earlier call's readers are done with warp_totals
    if (threadIdx.x % WARP == 0) warp_totals[threadIdx.x / WARP] = v;
    __syncthreads();
    float total = 0.f;
    for (int i = 0; i < BLOCK / WARP; ++i) total += warp_totals[i];
    return total;
}

// out[row] = the sum that add(sum, a[row, j], b[row, j]) accumulates over the columns j of rows x
// cols a and b, for row = blockIdx.x (one block per row; the additions run in a fixed order).
template <class Add>
__device__ __forceinline__ void row_pair_sums(const RowParams& p, const float* __restrict__ a,
                                              const float* __restrict__ b, float* __restrict__ out, Add add) {
    if ((int)blockIdx.x >= p.rows) return;  // the whole block
    const int o = blockIdx.x * p.cols;
    float sum = 0.f;
    for (int j = threadIdx.x; j < p.cols; j += BLOCK) add(sum, a[o + j], b[o + j]);
    sum = block_sum(sum);
    if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

// acc[i][j] += sum_{k < k_len} a(ty + 16 i, k) * b(k, tx + 16 j) over the block's tile, where
// load_a(row, k) and load_b(k, col) return the operands (zero outside the matrices), row and col
// local to the tile. The loads walk k fastest for a and col fastest for b.
template <class LoadA, class LoadB>
__device__ __forceinline__ void tile_product(float (&acc)[4][4], int k_len, LoadA load_a, LoadB load_b) {
    __shared__ float a_tile[TILE_K][TILE_M + 1];
    __shared__ float b_tile[TILE_K][TILE_N + 1];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    for (int k0 = 0; k0 < k_len; k0 += TILE_K) {
#pragma unroll
        for (int r = 0; r < TILE_M * TILE_K / TILE_THREADS; ++r) {
            const int e = tid + r * TILE_THREADS, kk = e % TILE_K, row = e / TILE_K;
            a_tile[kk][row] = k0 + kk < k_len ? load_a(row, k0 + kk) : 0.f;
        }
#pragma unroll
        for (int r = 0; r < TILE_N * TILE_K / TILE_THREADS; ++r) {
            const int e = tid + r * TILE_THREADS, col = e % TILE_N, kk = e / TILE_N;
            b_tile[kk][col] = k0 + kk < k_len ? load_b(k0 + kk, col) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TILE_K; ++kk) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = a_tile[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = b_tile[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
}

// Calls f(i, j, row, col) for each of this thread's 4 x 4 elements of the tile at (row0, col0)
// (acc[i][j] of tile_product) that lies in the rows < m and columns < n.
template <class F>
__device__ __forceinline__ void for_tile(int row0, int col0, int m, int n, F f) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int col = col0 + tx + 16 * j;
            if (row < m && col < n) f(i, j, row, col);
        }
    }
}

// Writes a tile_product result: out[row * ld + col] = acc (+ bias[col]) for the rows < m and
// columns < n of the tile at (row0, col0); with accumulate, out[row * ld + col] += that instead.
__device__ __forceinline__ void store_tile(const float (&acc)[4][4], int row0, int col0, int m, int n, int ld,
                                           const float* __restrict__ bias, float* __restrict__ out,
                                           bool accumulate = false) {
    for_tile(row0, col0, m, n, [&](int i, int j, int row, int col) {
        const float v = acc[i][j] + (bias ? __ldg(&bias[col]) : 0.f);
        out[row * ld + col] = accumulate ? out[row * ld + col] + v : v;
    });
}

// Tiles of size `tile` covering `len`.
__device__ __forceinline__ int tiles_of(int len, int tile) { return (len + tile - 1) / tile; }

// The tile at (row0, col0) of out[m, n] (+ bias[col]) = sum_{k < k_len} load_a(row, k) load_b(k,
// col): tile_product then store_tile (adding into out with accumulate), load_a and load_b given the
// global row and column (zero outside the matrices).
template <class LoadA, class LoadB>
__device__ __forceinline__ void gemm_tile_at(int row0, int col0, int m, int n, int k_len, LoadA load_a,
                                             LoadB load_b, const float* __restrict__ bias,
                                             float* __restrict__ out, bool accumulate = false) {
    float acc[4][4] = {};
    tile_product(
        acc, k_len, [&](int row, int k) { return load_a(row0 + row, k); },
        [&](int k, int col) { return load_b(k, col0 + col); });
    store_tile(acc, row0, col0, m, n, n, bias, out, accumulate);
}

// gemm_tile_at for the block's tile of grid (ceil(m / TILE_M), ceil(n / TILE_N)).
template <class LoadA, class LoadB>
__device__ __forceinline__ void gemm_tile(int m, int n, int k_len, LoadA load_a, LoadB load_b,
                                          const float* __restrict__ bias, float* __restrict__ out,
                                          bool accumulate = false) {
    gemm_tile_at(blockIdx.x * TILE_M, blockIdx.y * TILE_N, m, n, k_len, load_a, load_b, bias, out, accumulate);
}

#endif
