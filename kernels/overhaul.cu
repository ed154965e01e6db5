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

// Whether the partial L2 distance counts an element: not where student <= target <= 0.
__device__ __forceinline__ bool partial_l2_counts(float s, float t) { return s > t || t > 0.f; }

// out[row] = sum_j (s - t)^2 over the elements of the row that partial_l2_counts. One block per
// row (one sample).
// contract: s[p.rows * p.cols]; t[p.rows * p.cols]; out[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    partial_l2_rows(const RowParams p, const float* __restrict__ s, const float* __restrict__ t, float* __restrict__ out) {
    row_pair_sums(p, s, t, out, [](float& sum, float u, float v) {
        if (partial_l2_counts(u, v)) sum += (u - v) * (u - v);
    });
}

// gs = 2 a (s - t) where partial_l2_counts, else 0; gt = -gs when gt is given: the gradient of
// a * sum (s - t)^2 * mask (the mask is constant almost everywhere).
// contract: s[p.len]; t[p.len]; gs[p.len]; gt[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    partial_l2_backward(const MapParams p, const float* __restrict__ s, const float* __restrict__ t,
                        float* __restrict__ gs, NULLABLE float* __restrict__ gt) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) {
        const float u = s[i], v = t[i];
        const float g = partial_l2_counts(u, v) ? 2.f * p.a * (u - v) : 0.f;
        gs[i] = g;
        if (gt) gt[i] = -g;
    }
}
