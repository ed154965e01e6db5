// The tensor-core forward convolution with the epilogues of kernels/conv2d.cu's fused kernels
// (included after conv_stats.cuh and conv_tc.cuh): the batch statistics of its output
// (conv2d_forward_stats) and an evaluation-mode batch norm with residual and ReLU
// (conv2d_forward_bn), over conv_tc.cuh's 64 x BN tiles of 128 threads.
#ifndef IEKD_CONV_TC_FUSED_CUH
#define IEKD_CONV_TC_FUSED_CUH

namespace tc_conv {

// out[c] (c < BN) = the sum of f(value, c) over the accumulators of column c in the tile's rows <
// rows: each thread adds its rows g and g + 8, the eight lanes of a column in a butterfly (every
// lane gets the same sum), then thread c adds the four warps in order; the same order on every
// run. Every thread calls it; out is valid after it returns.
template <int BN, class F>
__device__ __forceinline__ void fragment_column_sums(const float (&acc)[BN / 8][4], int rows, float (*warps)[64],
                                                     float* out, F f) {
    const int lane = threadIdx.x % WARP, g = lane >> 2, t = lane & 3, warp = threadIdx.x / WARP;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int col = 8 * j + 2 * t + h;
            float s = 0.f;
#pragma unroll
            for (int r = 0; r < 2; ++r)
                if (warp * 16 + g + 8 * r < rows) s += f(acc[j][2 * r + h], col);
            s += __shfl_xor_sync(FULL_MASK, s, 4);
            s += __shfl_xor_sync(FULL_MASK, s, 8);
            s += __shfl_xor_sync(FULL_MASK, s, 16);
            if (g == 0) warps[warp][col] = s;
        }
    }
    __syncthreads();
    if (threadIdx.x < BN) {
        const int c = threadIdx.x;
        out[c] = ((warps[0][c] + warps[1][c]) + warps[2][c]) + warps[3][c];
    }
    __syncthreads();
}

// y = conv(x, w) over the block's tile and the batch statistics of each output channel
// (conv2d_forward_stats's scheme and buffers, with BN-wide column tiles).
template <int BN, class Loop>
__device__ __forceinline__ void forward_stats_tile(const ConvParams& p, const float* __restrict__ x,
                                                   const float* __restrict__ w, float* __restrict__ y,
                                                   float* __restrict__ partial, int* __restrict__ tickets,
                                                   float* __restrict__ mean, float* __restrict__ var,
                                                   unsigned char* smem) {
    __shared__ float warps[THREADS / WARP][64];
    __shared__ float tile_sum[64], tile_m2[64];
    const int m_all = p.n * p.h_out * p.w_out, row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    // The tiles taking part: those of the grid (all of them when it covers the pixels).
    const int tiles = min(tiles_of(m_all, BM), (int)gridDim.x), m = min(m_all, tiles * BM);
    if ((int)blockIdx.x >= tiles || col0 >= p.c_out) return;  // the whole block
    float acc[BN / 8][4] = {};
    forward_product<BN, Loop>(p, x, w, row0, col0, acc, smem);
    for_acc<BN>(acc, row0, col0, m, p.c_out, [&](float v, int row, int col) { y[row * p.c_out + col] = v; });
    const int rows = min(BM, m - row0);
    fragment_column_sums<BN>(acc, rows, warps, tile_sum, [](float v, int) { return v; });
    fragment_column_sums<BN>(acc, rows, warps, tile_m2, [&](float v, int c) {
        const float d = v - tile_sum[c] / rows;
        return d * d;
    });
    int* column_tickets = tickets + blockIdx.y * (tiles_of(m_all, STAT_GROUP * BM) + 1);
    finish_statistics<THREADS>(tile_sum, tile_m2, tiles, BM, m_all, m, p.c_out, col0, min(BN, p.c_out - col0),
                               partial, column_tickets, mean, var);
}

// y = act((conv(x, w) - center[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c] [+ residual]) over
// the block's tile (conv2d_forward_bn's operations in its order).
template <int BN, class Loop>
__device__ __forceinline__ void forward_bn_tile(const ConvParams& p, const float* __restrict__ x,
                                                const float* __restrict__ w, const float* __restrict__ center,
                                                const float* __restrict__ var, const float* __restrict__ gamma,
                                                const float* __restrict__ beta, const float* __restrict__ residual,
                                                float* __restrict__ y, unsigned char* smem) {
    __shared__ EvalNormTile<64> norm;
    const int m = p.n * p.h_out * p.w_out, row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= m || col0 >= p.c_out) return;  // the whole block
    norm.load(center, var, gamma, beta, p.eps, col0, min(BN, p.c_out - col0));
    float acc[BN / 8][4] = {};
    forward_product<BN, Loop>(p, x, w, row0, col0, acc, smem);
    __syncthreads();  // the per-channel factors are in shared memory
    for_acc<BN>(acc, row0, col0, m, p.c_out, [&](float a, int row, int col) {
        const int at = row * p.c_out + col;
        y[at] = norm.apply(a, col - col0, residual, at, p.relu);
    });
}

// The fused forwards for a column tile chosen at run time from C_out (Loop: the main loop).
template <class Loop>
struct FusedForwards {
    __device__ static void stats(const ConvParams& p, const float* x, const float* w, float* y, float* partial,
                                 int* tickets, float* mean, float* var, unsigned char* smem) {
        switch (tile_n_for(p.c_out)) {
            case 16: forward_stats_tile<16, Loop>(p, x, w, y, partial, tickets, mean, var, smem); break;
            case 32: forward_stats_tile<32, Loop>(p, x, w, y, partial, tickets, mean, var, smem); break;
            default: forward_stats_tile<64, Loop>(p, x, w, y, partial, tickets, mean, var, smem); break;
        }
    }
    __device__ static void bn(const ConvParams& p, const float* x, const float* w, const float* center,
                              const float* var, const float* gamma, const float* beta, const float* residual,
                              float* y, unsigned char* smem) {
        switch (tile_n_for(p.c_out)) {
            case 16: forward_bn_tile<16, Loop>(p, x, w, center, var, gamma, beta, residual, y, smem); break;
            case 32: forward_bn_tile<32, Loop>(p, x, w, center, var, gamma, beta, residual, y, smem); break;
            default: forward_bn_tile<64, Loop>(p, x, w, center, var, gamma, beta, residual, y, smem); break;
        }
    }
};

}  // namespace tc_conv

#endif
