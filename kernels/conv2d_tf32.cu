// 2-D convolution on tensor cores with TF32: the structure of kernels/conv_tc.cuh with mma.sync
// m16n8k8 TF32 (fp32 storage, each operand rounded by to_tf32, cvt.rna, when its fragment is
// read; fp32 accumulation).
//
// Pipeline: STAGES = 3 stages in dynamic shared memory, filled by cp.async with one commit group
// per stage and one barrier per stage (wait for the oldest, barrier, start the copy of the stage
// STAGES - 1 ahead into the slot everyone finished reading). Activations (A of forward and
// backward data) come by 16-byte cp.async when the channel count is a multiple of 4 and the
// buffer 16-byte aligned, else by 4-byte cp.async; weights and the backward weight's operands by
// 4-byte cp.async.
//
// Shared-memory tiles (words): A as [BM][BK + 4] (k contiguous) or, for the backward weight,
// [BK][BM + 8] (rows contiguous); B as [BK][BN + 8]. The pads make every fragment read of a warp
// hit 32 different banks and keep 16-byte rows aligned.
#include "common.cuh"
#include "tensor_core.cuh"
#include "conv_stats.cuh"
#include "conv_tc.cuh"
#include "conv_tc_fused.cuh"

namespace tc_tf32 {

using tc_conv::BK;
using tc_conv::BM;
using tc_conv::THREADS;
constexpr int STAGES = 3;
constexpr int A_LD = BK + 4;                    // A as [BM][A_LD]
constexpr int AT_LD = BM + 8;                   // A as [BK][AT_LD]
constexpr int A_WORDS = BM * A_LD;              // >= BK * AT_LD
constexpr int B_WORDS = BK * (64 + 8);          // B as [BK][BN + 8], BN <= 64
constexpr int STAGE_WORDS = A_WORDS + B_WORDS;  // 2432 words
// The dynamic shared memory of each kernel (the contracts' shared(29184)).
constexpr int SHARED_BYTES = STAGES * STAGE_WORDS * 4;
static_assert(SHARED_BYTES == 29184, "the contracts state the shared memory");
static_assert(BK * AT_LD <= A_WORDS, "the transposed A tile fits");

// The stage sink of conv_tc.cuh's loaders: cp.async straight into the stage's fp32 tiles.
template <int BN, bool A_ROWS>
struct Sink {
    float* a_tile;
    float* b_tile;
    int a_off[2], b_off;  // the thread's first A slots and first B slot in a stage's tiles
    __device__ __forceinline__ void init() {
#pragma unroll
        for (int i = 0; i < 2; ++i) a_off[i] = tc_conv::a_index<A_ROWS>(i, A_ROWS ? A_LD : AT_LD);
        b_off = tc_conv::b_index<BN>(0, BN + 8);
    }
    __device__ __forceinline__ void quad(int i, bool live, const float* src) {
        float* dst = a_tile + a_off[i];
        if (live) {
            cp_async_16(dst, src);
            return;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) dst[j] = 0.f;
    }
    __device__ __forceinline__ void elem(int i, int j, bool live, const float* src) {
        float* dst = a_tile + a_off[i] + j;
        if (live) cp_async_4(dst, src);
        else *dst = 0.f;
    }
    __device__ __forceinline__ void b(int i, bool live, const float* src) {
        float* dst = b_tile + b_off + i * (THREADS / BN) * (BN + 8);
        if (live) cp_async_4(dst, src);
        else *dst = 0.f;
    }
};

// The main loop: acc[j] (the warp's 16 x 8 tile j) += the block's A tile times B over `steps`
// stages, the loader filling stage slots in order.
struct Loop {
    template <int BN, bool A_ROWS, class Loader>
    __device__ static void run(float (&acc)[BN / 8][4], int steps, unsigned char* shared, Loader& ld) {
        constexpr int B_LD = BN + 8;
        float* smem = reinterpret_cast<float*>(shared);
        Sink<BN, A_ROWS> sink;
        sink.init();
#pragma unroll
        for (int s = 0; s < STAGES - 1; ++s) {
            sink.a_tile = smem + s * STAGE_WORDS;
            sink.b_tile = sink.a_tile + A_WORDS;
            if (s < steps) ld.load(sink);
            cp_async_commit();
        }
        const int lane = threadIdx.x % WARP, g = lane >> 2, t = lane & 3, row = threadIdx.x / WARP * 16 + g;
        int read = 0, write = STAGES - 1;  // stage slots
        for (int step = 0; step < steps; ++step) {
            cp_async_wait<STAGES - 2>();
            __syncthreads();  // this stage has landed for every thread; the slot `write` is read
            sink.a_tile = smem + write * STAGE_WORDS;
            sink.b_tile = sink.a_tile + A_WORDS;
            if (step + STAGES - 1 < steps) ld.load(sink);
            cp_async_commit();
            const float* a = smem + read * STAGE_WORDS;
            const float* b = a + A_WORDS;
#pragma unroll
            for (int kk = 0; kk < BK; kk += 8) {
                unsigned fa[4];
                if (A_ROWS) {
                    const float* r = a + row * A_LD + kk + t;
                    fa[0] = to_tf32(r[0]);
                    fa[1] = to_tf32(r[8 * A_LD]);
                    fa[2] = to_tf32(r[4]);
                    fa[3] = to_tf32(r[8 * A_LD + 4]);
                } else {
                    const float* r = a + (kk + t) * AT_LD + row;
                    fa[0] = to_tf32(r[0]);
                    fa[1] = to_tf32(r[8]);
                    fa[2] = to_tf32(r[4 * AT_LD]);
                    fa[3] = to_tf32(r[4 * AT_LD + 8]);
                }
#pragma unroll
                for (int j = 0; j < BN / 8; ++j) {
                    const float* c = b + (kk + t) * B_LD + j * 8 + g;
                    const unsigned fb[2] = {to_tf32(c[0]), to_tf32(c[4 * B_LD])};
                    const float sum[4] = {acc[j][0], acc[j][1], acc[j][2], acc[j][3]};
                    mma_tf32_m16n8k8(acc[j], fa, fb, sum);
                }
            }
            read = read == STAGES - 1 ? 0 : read + 1;
            write = write == STAGES - 1 ? 0 : write + 1;
        }
    }
};

using Products = tc_conv::Products<Loop>;

}  // namespace tc_tf32

// y = conv(x, w) + bias (conv2d_forward's values, TF32 products): grid (ceil(M / 64), ceil(C_out
// / BN)), M = N * H_out * W_out, BN = 16, 32 or 64 for C_out <= 16, <= 32, else.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; bias[p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                        NULLABLE const float* __restrict__ bias, float* __restrict__ y) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_tf32::Products::forward(p, x, w, bias, y, smem);
}

// dx = the data gradient of y = conv(x, w) (conv2d_backward_data's values, TF32 products), or dx
// += that with p.accumulate = 1: grid (ceil(N * H * W / 64), ceil(C_in / BN)), BN chosen from C_in
// as the forward's from C_out.
// contract: dy[p.n * p.h_out * p.w_out * p.c_out]; w[p.c_out * p.c_in * p.kh * p.kw];
// dx[p.n * p.h * p.w * p.c_in]; p.stride >= 1; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_data_tf32(const ConvParams p, const float* __restrict__ dy, const float* __restrict__ w,
                              float* __restrict__ dx) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_tf32::Products::data(p, dy, w, dx, smem, blockIdx.x, blockIdx.y);
}

// dw = the weight gradient of y = conv(x, w) (conv2d_backward_weight's values, TF32 products):
// grid (ceil(KH * KW * C_in / 64), ceil(C_out / BN), slices), BN chosen from C_out; slice z sums
// the split_rows output pixels from z * split_rows, and the tiles' slices are added in order by
// the last block of each tile (tickets: one per tile, at most the contract's count, which is
// that of BN = 16).
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.kh * p.kw * p.c_in + 63) / 64 * ((p.c_out + 15) / 16)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.split_rows >= 1; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_weight_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                                float* __restrict__ partial, int* __restrict__ tickets, float* __restrict__ dw) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_tf32::Products::weight(p, x, dy, partial, tickets, dw, smem, blockIdx.x, blockIdx.y, blockIdx.z, gridDim.z);
}

// y = conv(x, w) and the batch statistics of each output channel, mean and the biased var
// (conv2d_forward_stats's values and scheme, TF32 products): grid (T = ceil(M / 64), ceil(C_out /
// BN)), BN chosen from C_out as the forward's; tickets per column of tiles, one per group of
// STAT_GROUP tiles and one for the column.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw];
// y[p.n * p.h_out * p.w_out * p.c_out];
// partial[2 * ((p.n * p.h_out * p.w_out + TILE_M - 1) / TILE_M
//   + (p.n * p.h_out * p.w_out + STAT_GROUP * TILE_M - 1) / (STAT_GROUP * TILE_M)) * p.c_out];
// tickets[(p.c_out + 15) / 16
//   * ((p.n * p.h_out * p.w_out + STAT_GROUP * TILE_M - 1) / (STAT_GROUP * TILE_M) + 1)];
// mean[p.c_out]; var[p.c_out]; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_stats_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                              float* __restrict__ y, float* __restrict__ partial, int* __restrict__ tickets,
                              float* __restrict__ mean, float* __restrict__ var) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_conv::FusedForwards<tc_tf32::Loop>::stats(p, x, w, y, partial, tickets, mean, var, smem);
}

// y = act((conv(x, w) - center[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c] [+ residual]), act a
// ReLU when p.relu (conv2d_forward_bn's operations, TF32 products): grid (ceil(M / 64), ceil(C_out
// / BN)).
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; center[p.c_out];
// var[p.c_out]; gamma[p.c_out]; beta[p.c_out]; residual[p.n * p.h_out * p.w_out * p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_bn_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                           const float* __restrict__ center, const float* __restrict__ var,
                           const float* __restrict__ gamma, const float* __restrict__ beta,
                           NULLABLE const float* __restrict__ residual, float* __restrict__ y) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_conv::FusedForwards<tc_tf32::Loop>::bn(p, x, w, center, var, gamma, beta, residual, y, smem);
}

// Both gradients of y = conv(x, w) in one launch (conv2d_backward's values, TF32 products): the
// data gradient into dx (added to it with p.accumulate) and the weight gradient; a one-dimensional
// grid, the data gradient's blocks first, then the weight gradient's slices.
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// w[p.c_out * p.c_in * p.kh * p.kw]; dx[p.n * p.h * p.w * p.c_in];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.kh * p.kw * p.c_in + 63) / 64 * ((p.c_out + 15) / 16)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.stride >= 1; p.split_rows >= 1; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                         const float* __restrict__ w, float* __restrict__ dx, float* __restrict__ partial,
                         int* __restrict__ tickets, float* __restrict__ dw) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_tf32::Products::both(p, x, dy, w, dx, partial, tickets, dw, smem);
}
