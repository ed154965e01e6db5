// The fully connected layer's products (src/ops/linear.rs) as one strided tiled GEMM, and the
// column sums that give bias gradients (src/ops/conv2d/cpu.rs backward_bias) and batch means of
// per-row losses.
#include "common.cuh"

// c[i, j] = sum_k a(i, k) b(k, j) (+ bias[j]) for a strided a and b, c contiguous [m, n]:
// y = x W^T + b, dx = dy W and dW = dy^T x are this product with different strides.
// Grid (ceil(m / TILE_M), ceil(n / TILE_N)).
// contract: a[(p.m - 1) * p.a_row + (p.k - 1) * p.a_col + 1]; b[(p.k - 1) * p.b_row + (p.n - 1) * p.b_col + 1];
// bias[p.n]; c[p.m * p.n]
extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    gemm(const GemmParams p, const float* __restrict__ a, const float* __restrict__ b,
         NULLABLE const float* __restrict__ bias, float* __restrict__ c) {
    gemm_tile(
        p.m, p.n, p.k, [&](int i, int k) { return i < p.m ? __ldg(&a[i * p.a_row + k * p.a_col]) : 0.f; },
        [&](int k, int j) { return j < p.n ? __ldg(&b[k * p.b_row + j * p.b_col]) : 0.f; }, bias, c);
}

// out[j] = a * sum_i x[i, j] for x [rows, cols] (mode unused). Block (RED_C, RED_R): 32 columns,
// 8 row lanes; grid ceil(cols / 32). The additions run in a fixed order.
// contract: x[p.rows * p.cols]; out[p.cols]
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    column_sums(const RowParams p, const float* __restrict__ x, float* __restrict__ out) {
    __shared__ float lanes[RED_R][RED_C + 1];
    const int j = blockIdx.x * RED_C + threadIdx.x;
    float sum = 0.f;
    if (j < p.cols)
        for (int i = threadIdx.y; i < p.rows; i += RED_R) sum += x[i * p.cols + j];
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && j < p.cols) {
        float total = 0.f;
        for (int r = 0; r < RED_R; ++r) total += lanes[r][threadIdx.x];
        out[j] = p.a * total;
    }
}
