// 2-D convolution, channels-last, as tiled implicit GEMMs (no im2col buffer): the operands are
// read straight from the activations and the [c_out, c_in, kh, kw] weight into shared-memory tiles.
// Mirrors src/ops/conv2d/cpu.rs: GEMM row m is the output pixel (n, oh, ow), GEMM column k is
// (kh * KW + kw) * C_in + ci, and the packed weight is W[k][co] = w[co, ci, kh, kw].
#include "common.cuh"
#include "conv_stats.cuh"

// The im2col element (m, k): x[n, oh*s - p + kh, ow*s - p + kw, ci], zero outside the image.
__device__ __forceinline__ float im2col(const ConvParams& p, const float* __restrict__ x, int m, int k) {
    if (m >= p.n * p.h_out * p.w_out || k >= p.kh * p.kw * p.c_in) return 0.f;
    const int ci = k % p.c_in, tap = k / p.c_in;
    const int ow = m % p.w_out, rest = m / p.w_out, oh = rest % p.h_out, n = rest / p.h_out;
    const int ih = oh * p.stride - p.pad + tap / p.kw, iw = ow * p.stride - p.pad + tap % p.kw;
    if (ih < 0 || iw < 0 || ih >= p.h || iw >= p.w) return 0.f;
    return __ldg(&x[((n * p.h + ih) * p.w + iw) * p.c_in + ci]);
}

// w[co, ci, tap] with tap = kh * KW + kw, zero outside.
__device__ __forceinline__ float weight_at(const ConvParams& p, const float* __restrict__ w, int co, int ci, int tap) {
    if (co >= p.c_out || ci >= p.c_in || tap >= p.kh * p.kw) return 0.f;
    return __ldg(&w[(co * p.c_in + ci) * p.kh * p.kw + tap]);
}

// y = conv(x, w) + bias: grid (ceil(M / TILE_M), ceil(C_out / TILE_N)), M = N * H_out * W_out.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; bias[p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_forward(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                   NULLABLE const float* __restrict__ bias, float* __restrict__ y) {
    gemm_tile(
        p.n * p.h_out * p.w_out, p.c_out, p.kh * p.kw * p.c_in, [&](int m, int k) { return im2col(p, x, m, k); },
        [&](int k, int co) { return weight_at(p, w, co, k % p.c_in, k / p.c_in); }, bias, y);
}

// dx = sum over (kh, kw, co) of dy[n, oh, ow, co] w[co, ci, kh, kw] where ih = oh*s - p + kh: a
// gather over the output pixels that read each input pixel, so every dx element is written once.
// GEMM row m is the input pixel (n, ih, iw), column k = (kh * KW + kw) * C_out + co.
__device__ __forceinline__ float dy_gather(const ConvParams& p, const float* __restrict__ dy, int m, int k) {
    if (m >= p.n * p.h * p.w || k >= p.kh * p.kw * p.c_out) return 0.f;
    const int co = k % p.c_out, tap = k / p.c_out;
    const int iw = m % p.w, rest = m / p.w, ih = rest % p.h, n = rest / p.h;
    const int sh = ih + p.pad - tap / p.kw, sw = iw + p.pad - tap % p.kw;
    if (sh < 0 || sw < 0 || sh % p.stride != 0 || sw % p.stride != 0) return 0.f;
    const int oh = sh / p.stride, ow = sw / p.stride;
    if (oh >= p.h_out || ow >= p.w_out) return 0.f;
    return __ldg(&dy[((n * p.h_out + oh) * p.w_out + ow) * p.c_out + co]);
}

// The data-gradient tile (bx, by) of a grid (ceil(N * H * W / TILE_M), ceil(C_in / TILE_N)):
// dx for y = conv(x, w), or dx += that with p.accumulate = 1 (a second gradient of x added where
// the first one is).
__device__ __forceinline__ void data_tile(const ConvParams& p, const float* __restrict__ dy,
                                          const float* __restrict__ w, float* __restrict__ dx, int bx, int by) {
    gemm_tile_at(
        bx * TILE_M, by * TILE_N, p.n * p.h * p.w, p.c_in, p.kh * p.kw * p.c_out,
        [&](int m, int k) { return dy_gather(p, dy, m, k); },
        [&](int k, int ci) { return weight_at(p, w, k % p.c_out, ci, k / p.c_out); }, nullptr, dx,
        p.accumulate != 0);
}

// The weight-gradient tile (bx, by) of slice bz, with `slices` slices in the grid:
// dw[co, ci, kh, kw] = sum over the output pixels m of dy[m, co] * im2col(m, (kh * KW + kw) * C_in
// + ci), split-K without atomic sums. Tiles (ceil(C_out / TILE_M), ceil(K / TILE_N)); slice z
// holds the split_rows pixels from z * split_rows, and its block multiplies them into its output
// tile. With one slice the block writes dw. Otherwise it writes its product to partial[z][co][k]
// (the packed layout, k = (kh * KW + kw) * C_in + ci), makes it visible to the device and takes a
// ticket of its tile; the block that takes the tile's last ticket (last_to_arrive) adds the
// tile's slices in the order z = 0, 1, ... into dw, so the sum is the same whichever block
// finishes last.
__device__ __forceinline__ void weight_tile(const ConvParams& p, const float* __restrict__ x,
                                            const float* __restrict__ dy, float* __restrict__ partial,
                                            int* __restrict__ tickets, float* __restrict__ dw, int bx, int by,
                                            int bz, int grid_slices) {
    const int taps = p.kh * p.kw, taps_k = taps * p.c_in, pixels = p.n * p.h_out * p.w_out;
    // The slices taking part: those of the grid (all of them when the grid covers the pixels).
    const int slices = min(tiles_of(pixels, p.split_rows), grid_slices);
    const int row0 = bx * TILE_M, col0 = by * TILE_N, first = bz * p.split_rows;
    if (row0 >= p.c_out || col0 >= taps_k || bz >= slices) return;  // the whole block: no tile or slice
    float acc[4][4] = {};
    tile_product(
        acc, min(p.split_rows, pixels - first),
        [&](int co, int r) { return row0 + co < p.c_out ? __ldg(&dy[(first + r) * p.c_out + row0 + co]) : 0.f; },
        [&](int r, int k) { return im2col(p, x, first + r, col0 + k); });
    const int total = p.c_out * taps_k;
    if (slices > 1) {
        store_tile(acc, row0, col0, p.c_out, taps_k, taps_k, nullptr, partial + bz * total);
        if (!last_to_arrive(&tickets[by * tiles_of(p.c_out, TILE_M) + bx], slices)) return;  // the whole block
    }
    for_tile(row0, col0, p.c_out, taps_k, [&](int i, int j, int co, int k) {
        float sum = 0.f;  // the slices in order, this block's own from its registers
        for (int z = 0; z < slices; ++z) sum += z == bz ? acc[i][j] : __ldcg(&partial[z * total + co * taps_k + k]);
        dw[(co * p.c_in + k % p.c_in) * taps + k / p.c_in] = sum;
    });
}

// data_tile over grid (ceil(N * H * W / TILE_M), ceil(C_in / TILE_N)).
// contract: dy[p.n * p.h_out * p.w_out * p.c_out]; w[p.c_out * p.c_in * p.kh * p.kw];
// dx[p.n * p.h * p.w * p.c_in]; p.stride >= 1
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_backward_data(const ConvParams p, const float* __restrict__ dy, const float* __restrict__ w,
                         float* __restrict__ dx) {
    data_tile(p, dy, w, dx, blockIdx.x, blockIdx.y);
}

// weight_tile over grid (ceil(C_out / TILE_M), ceil(K / TILE_N), slices).
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.c_out + TILE_M - 1) / TILE_M * ((p.kh * p.kw * p.c_in + TILE_N - 1) / TILE_N)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_backward_weight(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                           float* __restrict__ partial, int* __restrict__ tickets, float* __restrict__ dw) {
    weight_tile(p, x, dy, partial, tickets, dw, blockIdx.x, blockIdx.y, blockIdx.z, gridDim.z);
}

// Both gradients of y = conv(x, w) in one launch, a one-dimensional grid: its first D = ceil(N * H
// * W / TILE_M) * ceil(C_in / TILE_N) blocks are data_tile's grid (x fastest), the rest
// weight_tile's (x fastest, then y, then the slice), as many slices as the rest holds whole.
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// w[p.c_out * p.c_in * p.kh * p.kw]; dx[p.n * p.h * p.w * p.c_in];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.c_out + TILE_M - 1) / TILE_M * ((p.kh * p.kw * p.c_in + TILE_N - 1) / TILE_N)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.stride >= 1; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_backward(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                    const float* __restrict__ w, float* __restrict__ dx, float* __restrict__ partial,
                    int* __restrict__ tickets, float* __restrict__ dw) {
    const int data_m = tiles_of(p.n * p.h * p.w, TILE_M), data_blocks = data_m * tiles_of(p.c_in, TILE_N);
    const int b = blockIdx.x;
    if (b < data_blocks) {
        data_tile(p, dy, w, dx, b % data_m, b / data_m);
        return;  // the whole block
    }
    const int wm = tiles_of(p.c_out, TILE_M), per_slice = wm * tiles_of(p.kh * p.kw * p.c_in, TILE_N);
    const int t = b - data_blocks;
    weight_tile(p, x, dy, partial, tickets, dw, t % wm, t / wm % (per_slice / wm), t / per_slice,
                ((int)gridDim.x - data_blocks) / per_slice);
}

// The sums over the tile's rows of this thread's columns: out[col] = sum of f(i, j) over the
// rows ty + 16 i < rows of column col = tx + 16 j, for col < TILE_N, added in row order within a
// thread and then over ty in order (lanes: shared scratch). Every thread calls it; out is valid
// after it returns.
template <class F>
__device__ __forceinline__ void tile_column_sums(int rows, float (&lanes)[TILE_M / 4][TILE_N], float* out, F f) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 4; ++i)
            if (ty + 16 * i < rows) s += f(i, j);
        lanes[ty][tx + 16 * j] = s;
    }
    __syncthreads();
    if (threadIdx.x < TILE_N) {
        float s = 0.f;
        for (int r = 0; r < TILE_M / 4; ++r) s += lanes[r][threadIdx.x];
        out[threadIdx.x] = s;
    }
    __syncthreads();
}

// y = conv(x, w) (conv2d_forward without bias) and the batch statistics of each output channel
// over the M = N * H_out * W_out output pixels, for the batch norm that follows: mean[c] and the
// biased var[c]. Each block writes its tile's per-channel sum and sum of squared deviations from
// the tile's own mean to partial[tile row][2][c]. The last block of each group of STAT_GROUP tile
// rows (in a column of tiles) merges the group's partials into partial[T + group][2][c] (T tile
// rows), and the last group of the column merges those into mean and var: the merges overlap the
// other tiles' work, and none reads more than STAT_GROUP partials a channel per lane group.
// Tickets: per column of tiles, one per group and one for the column. Grid (T = ceil(M / TILE_M),
// ceil(C_out / TILE_N)).
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw];
// y[p.n * p.h_out * p.w_out * p.c_out];
// partial[2 * ((p.n * p.h_out * p.w_out + TILE_M - 1) / TILE_M
//   + (p.n * p.h_out * p.w_out + STAT_GROUP * TILE_M - 1) / (STAT_GROUP * TILE_M)) * p.c_out];
// tickets[(p.c_out + TILE_N - 1) / TILE_N
//   * ((p.n * p.h_out * p.w_out + STAT_GROUP * TILE_M - 1) / (STAT_GROUP * TILE_M) + 1)];
// mean[p.c_out]; var[p.c_out]
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_forward_stats(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                         float* __restrict__ y, float* __restrict__ partial, int* __restrict__ tickets,
                         float* __restrict__ mean, float* __restrict__ var) {
    __shared__ float lanes[TILE_M / 4][TILE_N];
    __shared__ float tile_sum[TILE_N], tile_m2[TILE_N];
    const int m_all = p.n * p.h_out * p.w_out, taps_k = p.kh * p.kw * p.c_in;
    const int row0 = blockIdx.x * TILE_M, col0 = blockIdx.y * TILE_N;
    // The tiles taking part: those of the grid (all of them when it covers the pixels).
    const int tiles = min(tiles_of(m_all, TILE_M), (int)gridDim.x), m = min(m_all, tiles * TILE_M);
    if ((int)blockIdx.x >= tiles || col0 >= p.c_out) return;  // the whole block
    float acc[4][4] = {};
    tile_product(
        acc, taps_k, [&](int row, int k) { return im2col(p, x, row0 + row, k); },
        [&](int k, int col) { return weight_at(p, w, col0 + col, k % p.c_in, k / p.c_in); });
    store_tile(acc, row0, col0, m, p.c_out, p.c_out, nullptr, y);
    const int rows = min(TILE_M, m - row0);
    tile_column_sums(rows, lanes, tile_sum, [&](int i, int j) { return acc[i][j]; });
    tile_column_sums(rows, lanes, tile_m2, [&](int i, int j) {
        const float d = acc[i][j] - tile_sum[threadIdx.x % 16 + 16 * j] / rows;
        return d * d;
    });
    int* column_tickets = tickets + blockIdx.y * (tiles_of(m_all, STAT_GROUP * TILE_M) + 1);
    finish_statistics<TILE_THREADS>(tile_sum, tile_m2, tiles, TILE_M, m_all, m, p.c_out, col0,
                                    min(TILE_N, p.c_out - col0), partial, column_tickets, mean, var);
}

// y = act((conv(x, w) - center[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c] [+ residual]), act a
// ReLU when p.relu: the convolution and an evaluation-mode batch norm (bn_forward, the same
// operations in the same order) in one pass. Grid (ceil(M / TILE_M), ceil(C_out / TILE_N)),
// M = N * H_out * W_out.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; center[p.c_out];
// var[p.c_out]; gamma[p.c_out]; beta[p.c_out]; residual[p.n * p.h_out * p.w_out * p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_forward_bn(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                      const float* __restrict__ center, const float* __restrict__ var,
                      const float* __restrict__ gamma, const float* __restrict__ beta,
                      NULLABLE const float* __restrict__ residual, float* __restrict__ y) {
    __shared__ EvalNormTile<TILE_N> norm;
    const int m = p.n * p.h_out * p.w_out, row0 = blockIdx.x * TILE_M, col0 = blockIdx.y * TILE_N;
    if (row0 >= m || col0 >= p.c_out) return;  // the whole block
    norm.load(center, var, gamma, beta, p.eps, col0, min(TILE_N, p.c_out - col0));
    float acc[4][4] = {};
    tile_product(
        acc, p.kh * p.kw * p.c_in, [&](int row, int k) { return im2col(p, x, row0 + row, k); },
        [&](int k, int col) { return weight_at(p, w, col0 + col, k % p.c_in, k / p.c_in); });
    for_tile(row0, col0, m, p.c_out, [&](int i, int j, int row, int col) {
        const int at = row * p.c_out + col;
        y[at] = norm.apply(acc[i][j], col - col0, residual, at, p.relu);
    });
}
