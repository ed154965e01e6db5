// 2-D convolution on tensor cores with bf16 operands: the structure of kernels/conv_tc.cuh with
// mma.sync m16n8k16 bf16 (fp32 storage in global memory, each operand rounded to bf16, to nearest
// even, once as its stage is stored to shared memory; fp32 accumulation).
//
// Pipeline: the loads of the next stage go to registers before the current stage's products and
// are rounded and stored to the other of two shared-memory stages after them, one barrier per
// stage; the global loads' latency hides behind the products. Activations (A of forward and
// backward data, and the backward weight's im2col) come by 16-byte loads when the channel count
// is a multiple of 4 and the buffer 16-byte aligned, else by 4-byte loads; the other operand by
// 4-byte loads.
//
// Shared-memory tiles (bf16): A as [BM][BK + 8] (k contiguous) or, for the backward weight,
// [BK][BM + 8] (rows contiguous); B as [BK][BN + 8]. Fragments come by ldmatrix: A.x4 (rows) or
// A.x4.trans (the backward weight), B.x4.trans (two 8-column blocks at once). Row pitches of 48,
// 80 and 144 bytes put the eight 16-byte rows of every ldmatrix matrix in distinct banks and
// keep each row 16-byte aligned.
#include "common.cuh"
#include "tensor_core.cuh"
#include "conv_stats.cuh"
#include "conv_tc.cuh"
#include "conv_tc_fused.cuh"

namespace tc_bf16 {

using tc_conv::BK;
using tc_conv::BM;
typedef unsigned short bf16_t;
constexpr int A_LD = BK + 8;                    // A as [BM][A_LD]
constexpr int AT_LD = BM + 8;                   // A as [BK][AT_LD]
constexpr int A_HALVES = BM * A_LD;             // >= BK * AT_LD
constexpr int B_HALVES = BK * (64 + 8);         // B as [BK][BN + 8], BN <= 64
constexpr int STAGE_HALVES = A_HALVES + B_HALVES;  // 2688 halves
// The dynamic shared memory of each kernel (the contracts' shared(10752)): two stages.
constexpr int SHARED_BYTES = 2 * STAGE_HALVES * 2;
static_assert(SHARED_BYTES == 10752, "the contracts state the shared memory");
static_assert(BK * AT_LD <= A_HALVES, "the transposed A tile fits");
static_assert(A_HALVES * 2 % 16 == 0 && STAGE_HALVES * 2 % 16 == 0, "tiles start 16-byte aligned");

// The stage sink of conv_tc.cuh's loaders: the thread's slots in registers, then `store` rounds
// them to bf16 into a stage's tiles.
template <int BN, bool A_ROWS>
struct Sink {
    float a[2][4];
    float bv[tc_conv::B_SLOTS<BN>];
    int a_off[2], b_off;  // the thread's first A slots and first B slot in a stage's tiles
    __device__ __forceinline__ void init() {
#pragma unroll
        for (int i = 0; i < 2; ++i) a_off[i] = tc_conv::a_index<A_ROWS>(i, A_ROWS ? A_LD : AT_LD);
        b_off = A_HALVES + tc_conv::b_index<BN>(0, BN + 8);
    }
    __device__ __forceinline__ void quad(int i, bool live, const float* src) {
        if (live) {
            load_f32x4(a[i], src);
            return;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) a[i][j] = 0.f;
    }
    __device__ __forceinline__ void elem(int i, int j, bool live, const float* src) {
        a[i][j] = live ? __ldg(src) : 0.f;
    }
    __device__ __forceinline__ void b(int i, bool live, const float* src) { bv[i] = live ? __ldg(src) : 0.f; }
    // The slots rounded to bf16 into the stage whose A tile starts at at (its B tile follows).
    __device__ __forceinline__ void store(bf16_t* at) const {
#pragma unroll
        for (int i = 0; i < 2; ++i)
            store_b32x2(at + a_off[i], pack_bf16x2(a[i][0], a[i][1]), pack_bf16x2(a[i][2], a[i][3]));
#pragma unroll
        for (int i = 0; i < tc_conv::B_SLOTS<BN>; ++i)
            at[b_off + i * (tc_conv::THREADS / BN) * (BN + 8)] = static_cast<bf16_t>(pack_bf16x2(bv[i], 0.f));
    }
};

// The main loop: acc[j] (the warp's 16 x 8 tile j) += the block's A tile times B over `steps`
// stages, the loader filling the sink in order.
struct Loop {
    template <int BN, bool A_ROWS, class Loader>
    __device__ static void run(float (&acc)[BN / 8][4], int steps, unsigned char* shared, Loader& ld) {
        static_assert(BN % 16 == 0, "B fragments come two column blocks at a time");
        constexpr int B_LD = BN + 8;
        bf16_t* smem = reinterpret_cast<bf16_t*>(shared);
        Sink<BN, A_ROWS> sink;
        sink.init();
        if (steps > 0) {
            ld.load(sink);
            sink.store(smem);
        }
        __syncthreads();
        // ldmatrix addressing: lane l gives a row of matrix q = l / 8, row r = l % 8.
        const int lane = threadIdx.x % WARP, q = lane / 8, r = lane % 8, warp_row = threadIdx.x / WARP * 16;
        const int a_off = A_ROWS ? (warp_row + (q & 1) * 8 + r) * A_LD + (q >> 1) * 8
                                 : ((q >> 1) * 8 + r) * AT_LD + warp_row + (q & 1) * 8;
        const int b_off = ((q & 1) * 8 + r) * B_LD + (q >> 1) * 8;
        for (int step = 0; step < steps; ++step) {
            const bf16_t* a = smem + (step & 1) * STAGE_HALVES;
            const bool more = step + 1 < steps;
            if (more) ld.load(sink);  // the next stage's global loads, in flight during the products
            unsigned fa[4];
            if (A_ROWS) ldmatrix_x4(fa, a + a_off);
            else ldmatrix_x4_trans(fa, a + a_off);
#pragma unroll
            for (int j = 0; j < BN / 8; j += 2) {
                unsigned fb[4];
                ldmatrix_x4_trans(fb, a + A_HALVES + b_off + j * 8);
                const unsigned b0[2] = {fb[0], fb[1]}, b1[2] = {fb[2], fb[3]};
                const float s0[4] = {acc[j][0], acc[j][1], acc[j][2], acc[j][3]};
                mma_bf16_m16n8k16(acc[j], fa, b0, s0);
                const float s1[4] = {acc[j + 1][0], acc[j + 1][1], acc[j + 1][2], acc[j + 1][3]};
                mma_bf16_m16n8k16(acc[j + 1], fa, b1, s1);
            }
            // The other stage was last read before the previous barrier.
            if (more) sink.store(smem + ((step + 1) & 1) * STAGE_HALVES);
            __syncthreads();
        }
    }
};

using Products = tc_conv::Products<Loop>;

}  // namespace tc_bf16

// y = conv(x, w) + bias (conv2d_forward's values, bf16 products): grid (ceil(M / 64), ceil(C_out
// / BN)), M = N * H_out * W_out, BN = 16, 32 or 64 for C_out <= 16, <= 32, else.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; bias[p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]; shared(10752)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_bf16(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                        NULLABLE const float* __restrict__ bias, float* __restrict__ y) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_bf16::Products::forward(p, x, w, bias, y, smem);
}

// dx = the data gradient of y = conv(x, w) (conv2d_backward_data's values, bf16 products), or dx
// += that with p.accumulate = 1: grid (ceil(N * H * W / 64), ceil(C_in / BN)), BN chosen from C_in
// as the forward's from C_out.
// contract: dy[p.n * p.h_out * p.w_out * p.c_out]; w[p.c_out * p.c_in * p.kh * p.kw];
// dx[p.n * p.h * p.w * p.c_in]; p.stride >= 1; shared(10752)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_data_bf16(const ConvParams p, const float* __restrict__ dy, const float* __restrict__ w,
                              float* __restrict__ dx) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_bf16::Products::data(p, dy, w, dx, smem, blockIdx.x, blockIdx.y);
}

// dw = the weight gradient of y = conv(x, w) (conv2d_backward_weight's values, bf16 products):
// grid (ceil(KH * KW * C_in / 64), ceil(C_out / BN), slices), BN chosen from C_out; the slices
// and tickets of conv2d_backward_weight_tf32.
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.kh * p.kw * p.c_in + 63) / 64 * ((p.c_out + 15) / 16)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.split_rows >= 1; shared(10752)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_weight_bf16(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                                float* __restrict__ partial, int* __restrict__ tickets, float* __restrict__ dw) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_bf16::Products::weight(p, x, dy, partial, tickets, dw, smem, blockIdx.x, blockIdx.y, blockIdx.z, gridDim.z);
}

// y = conv(x, w) and the batch statistics of each output channel, mean and the biased var
// (conv2d_forward_stats's values and scheme, bf16 products): grid (T = ceil(M / 64), ceil(C_out /
// BN)), BN chosen from C_out as the forward's; tickets per column of tiles, one per group of
// STAT_GROUP tiles and one for the column.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw];
// y[p.n * p.h_out * p.w_out * p.c_out];
// partial[2 * ((p.n * p.h_out * p.w_out + TILE_M - 1) / TILE_M
//   + (p.n * p.h_out * p.w_out + STAT_GROUP * TILE_M - 1) / (STAT_GROUP * TILE_M)) * p.c_out];
// tickets[(p.c_out + 15) / 16
//   * ((p.n * p.h_out * p.w_out + STAT_GROUP * TILE_M - 1) / (STAT_GROUP * TILE_M) + 1)];
// mean[p.c_out]; var[p.c_out]; shared(10752)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_stats_bf16(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                              float* __restrict__ y, float* __restrict__ partial, int* __restrict__ tickets,
                              float* __restrict__ mean, float* __restrict__ var) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_conv::FusedForwards<tc_bf16::Loop>::stats(p, x, w, y, partial, tickets, mean, var, smem);
}

// y = act((conv(x, w) - center[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c] [+ residual]), act a
// ReLU when p.relu (conv2d_forward_bn's operations, bf16 products): grid (ceil(M / 64), ceil(C_out
// / BN)).
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; center[p.c_out];
// var[p.c_out]; gamma[p.c_out]; beta[p.c_out]; residual[p.n * p.h_out * p.w_out * p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]; shared(10752)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_bn_bf16(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                           const float* __restrict__ center, const float* __restrict__ var,
                           const float* __restrict__ gamma, const float* __restrict__ beta,
                           NULLABLE const float* __restrict__ residual, float* __restrict__ y) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_conv::FusedForwards<tc_bf16::Loop>::bn(p, x, w, center, var, gamma, beta, residual, y, smem);
}

// Both gradients of y = conv(x, w) in one launch (conv2d_backward's values, bf16 products): the
// data gradient into dx (added to it with p.accumulate) and the weight gradient; a one-dimensional
// grid, the data gradient's blocks first, then the weight gradient's slices.
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// w[p.c_out * p.c_in * p.kh * p.kw]; dx[p.n * p.h * p.w * p.c_in];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.kh * p.kw * p.c_in + 63) / 64 * ((p.c_out + 15) / 16)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.stride >= 1; p.split_rows >= 1; shared(10752)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_bf16(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                         const float* __restrict__ w, float* __restrict__ dx, float* __restrict__ partial,
                         int* __restrict__ tickets, float* __restrict__ dw) {
    DYNAMIC_SHARED(unsigned char, smem);
    tc_bf16::Products::both(p, x, dy, w, dx, partial, tickets, dw, smem);
}
