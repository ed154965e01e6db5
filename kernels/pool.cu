// Global average pooling over the pixels of [n, pixels, c] (src/ops/pool.rs).
#include "common.cuh"

// y[n, c] = sum_q x[n, q, c] / pixels. Grid (ceil(c / RED_C), n), block (RED_C, RED_R); the
// additions run in a fixed order.
// contract: x[p.n * p.pixels * p.c]; y[p.n * p.c]
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    avg_pool_forward(const PoolParams p, const float* __restrict__ x, float* __restrict__ y) {
    __shared__ float lanes[RED_R][RED_C + 1];
    const int c = blockIdx.x * RED_C + threadIdx.x, n = blockIdx.y;
    if (n >= p.n) return;  // the whole block
    float sum = 0.f;
    if (c < p.c)
        for (int q = threadIdx.y; q < p.pixels; q += RED_R) sum += x[(n * p.pixels + q) * p.c + c];
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < p.c) {
        float total = 0.f;
        for (int r = 0; r < RED_R; ++r) total += lanes[r][threadIdx.x];
        y[n * p.c + c] = total * (1.f / p.pixels);
    }
}

// dx[n, q, c] = dy[n, c] / pixels.
// contract: dy[p.n * p.c]; dx[p.n * p.pixels * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    avg_pool_backward(const PoolParams p, const float* __restrict__ dy, float* __restrict__ dx) {
    const float inv = 1.f / p.pixels;
    for (int i = global_thread(); i < p.n * p.pixels * p.c; i += grid_stride()) {
        const int n = i / (p.pixels * p.c), c = i % p.c;
        dx[i] = dy[n * p.c + c] * inv;
    }
}
