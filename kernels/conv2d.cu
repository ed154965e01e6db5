// 2-D convolution, channels-last, as tiled implicit GEMMs (no im2col buffer): the operands are
// read straight from the activations and the [c_out, c_in, kh, kw] weight into shared-memory tiles.
// Mirrors src/ops/conv2d/cpu.rs: GEMM row m is the output pixel (n, oh, ow), GEMM column k is
// (kh * KW + kw) * C_in + ci, and the packed weight is W[k][co] = w[co, ci, kh, kw].
#include "common.cuh"

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

// dx for y = conv(x, w), or dx += that with p.accumulate = 1 (a second gradient of x added where
// the first one is): grid (ceil(N * H * W / TILE_M), ceil(C_in / TILE_N)).
// contract: dy[p.n * p.h_out * p.w_out * p.c_out]; w[p.c_out * p.c_in * p.kh * p.kw];
// dx[p.n * p.h * p.w * p.c_in]; p.stride >= 1
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_backward_data(const ConvParams p, const float* __restrict__ dy, const float* __restrict__ w,
                         float* __restrict__ dx) {
    gemm_tile(
        p.n * p.h * p.w, p.c_in, p.kh * p.kw * p.c_out, [&](int m, int k) { return dy_gather(p, dy, m, k); },
        [&](int k, int ci) { return weight_at(p, w, k % p.c_out, ci, k / p.c_out); }, nullptr, dx,
        p.accumulate != 0);
}

// dw[co, ci, kh, kw] = sum over the output pixels m of dy[m, co] * im2col(m, (kh * KW + kw) * C_in
// + ci) in one launch, split-K without atomic sums. Grid (ceil(C_out / TILE_M), ceil(K / TILE_N),
// splits): block z multiplies the split_rows pixels of slice z into its output tile. With one
// slice the block writes dw. Otherwise it writes its product to partial[z][co][k] (the packed
// layout, k = (kh * KW + kw) * C_in + ci), makes it visible to the device and takes a ticket of its
// tile; the block that takes the tile's last ticket adds the tile's slices in the order z = 0, 1,
// ... into dw, so the sum is the same whichever block finishes last. atomicInc wraps that last
// ticket to zero, leaving the tickets as they were found (zero) for the next launch or graph replay.
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.c_out + TILE_M - 1) / TILE_M * ((p.kh * p.kw * p.c_in + TILE_N - 1) / TILE_N)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    conv2d_backward_weight(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                           float* __restrict__ partial, int* __restrict__ tickets, float* __restrict__ dw) {
    __shared__ bool last;
    const int taps = p.kh * p.kw, taps_k = taps * p.c_in, pixels = p.n * p.h_out * p.w_out;
    const int row0 = blockIdx.x * TILE_M, col0 = blockIdx.y * TILE_N, first = blockIdx.z * p.split_rows;
    if (row0 >= p.c_out || col0 >= taps_k || first >= pixels) return;  // the whole block: no tile or slice
    // The slices taking part: those of the grid (all of them when gridDim.z covers the pixels).
    const int slices = min((pixels + p.split_rows - 1) / p.split_rows, (int)gridDim.z);
    float acc[4][4] = {};
    tile_product(
        acc, min(p.split_rows, pixels - first),
        [&](int co, int r) { return row0 + co < p.c_out ? __ldg(&dy[(first + r) * p.c_out + row0 + co]) : 0.f; },
        [&](int r, int k) { return im2col(p, x, first + r, col0 + k); });
    const int total = p.c_out * taps_k;
    if (slices > 1) {
        store_tile(acc, row0, col0, p.c_out, taps_k, taps_k, nullptr, partial + blockIdx.z * total);
        __threadfence();  // this thread's partial reaches the device before the block's ticket
        __syncthreads();
        if (threadIdx.x == 0) {
            const int tile = blockIdx.y * ((p.c_out + TILE_M - 1) / TILE_M) + blockIdx.x;
            const unsigned ticket = atomicInc(reinterpret_cast<unsigned*>(&tickets[tile]), slices - 1);
            last = ticket == (unsigned)(slices - 1);
        }
        __syncthreads();
        if (!last) return;  // the whole block
        __threadfence();    // the other blocks' partials, made visible before their tickets
    }
    for_tile(row0, col0, p.c_out, taps_k, [&](int i, int j, int co, int k) {
        float sum = 0.f;  // the slices in order, this block's own from its registers
        for (int z = 0; z < slices; ++z)
            sum += z == (int)blockIdx.z ? acc[i][j] : __ldcg(&partial[z * total + co * taps_k + k]);
        dw[(co * p.c_in + k % p.c_in) * taps + k / p.c_in] = sum;
    });
}
