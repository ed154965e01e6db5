// The kernels of Overhaul feature distillation (Heo et al., ICCV 2019; src/ops/margin/ and
// src/ops/loss/partial_l2.rs): the teacher's margin ReLU and the partial L2 distance.
#include "common.cuh"

// y[r, c] = max(x[r, c], margin[c]) over rows = pixels of cols = channels.
// contract: x[p.rows * p.cols]; margin[p.cols]; y[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    margin_relu_forward(const RowParams p, const float* __restrict__ x, const float* __restrict__ margin,
                        float* __restrict__ y) {
    for (int i = global_thread(); i < p.rows * p.cols; i += grid_stride()) y[i] = fmaxf(x[i], margin[i % p.cols]);
}

// dx[r, c] = dy[r, c] where x[r, c] > margin[c], else 0.
// contract: x[p.rows * p.cols]; margin[p.cols]; dy[p.rows * p.cols]; dx[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    margin_relu_backward(const RowParams p, const float* __restrict__ x, const float* __restrict__ margin,
                         const float* __restrict__ dy, float* __restrict__ dx) {
    for (int i = global_thread(); i < p.rows * p.cols; i += grid_stride())
        dx[i] = x[i] > margin[i % p.cols] ? dy[i] : 0.f;
}
