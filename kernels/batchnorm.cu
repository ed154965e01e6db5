// Batch normalisation over rows x c values (channels last), alone or fused with a ReLU and a
// residual add; mirrors src/ops/batchnorm/cpu.rs. Per-channel reductions run in two passes: blocks
// of 32 channels x 8 row lanes sum split_rows rows each into partial[z][2][c], then one thread per
// channel adds the splits in order, in double.
#include "common.cuh"

__device__ __forceinline__ int splits_of(const BnParams& p) { return (p.rows + p.split_rows - 1) / p.split_rows; }

// partial[z][0][c], partial[z][1][c] = the sums of f(row, c) = (a, b) over the rows of split z.
// Grid (ceil(c / RED_C), splits), block (RED_C, RED_R); blocks past the last split do nothing.
template <class F>
__device__ __forceinline__ void channel_partial_sums(const BnParams& p, float* __restrict__ partial, F f) {
    __shared__ float lanes[2][RED_R][RED_C + 1];
    if ((int)blockIdx.y >= splits_of(p)) return;  // the whole block
    const int c = blockIdx.x * RED_C + threadIdx.x;
    const int first = blockIdx.y * p.split_rows, end = min(p.rows, first + p.split_rows);
    float a = 0.f, b = 0.f;
    if (c < p.c)
        for (int r = first + threadIdx.y; r < end; r += RED_R) f(r, c, a, b);
    lanes[0][threadIdx.y][threadIdx.x] = a;
    lanes[1][threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && c < p.c) {
        float sa = 0.f, sb = 0.f;
        for (int r = 0; r < RED_R; ++r) {
            sa += lanes[0][r][threadIdx.x];
            sb += lanes[1][r][threadIdx.x];
        }
        partial[(2 * blockIdx.y) * p.c + c] = sa;
        partial[(2 * blockIdx.y + 1) * p.c + c] = sb;
    }
}

// s1, s2 = the sums over the splits of partial[z][0][c], partial[z][1][c], in order, in double.
__device__ __forceinline__ void sum_splits(const BnParams& p, const float* __restrict__ partial, int c, double& s1,
                                           double& s2) {
    s1 = 0.0;
    s2 = 0.0;
    for (int z = 0; z < splits_of(p); ++z) {
        s1 += partial[(2 * z) * p.c + c];
        s2 += partial[(2 * z + 1) * p.c + c];
    }
}

// Sums of d = x - x[0, c] and d^2 (the shift keeps a large mean from cancelling the variance).
// contract: x[p.rows * p.c]; partial[2 * ((p.rows + p.split_rows - 1) / p.split_rows) * p.c]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    bn_stats_partial(const BnParams p, const float* __restrict__ x, float* __restrict__ partial) {
    channel_partial_sums(p, partial, [&](int r, int c, float& a, float& b) {
        const float d = x[r * p.c + c] - x[c];
        a += d;
        b += d * d;
    });
}

// mean = x[0] + s1 / n, biased var = max(s2 / n - (s1 / n)^2, 0), one thread per channel.
// contract: x[p.c]; partial[2 * ((p.rows + p.split_rows - 1) / p.split_rows) * p.c]; mean[p.c]; var[p.c];
// p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(BLOCK)
    bn_stats_finalize(const BnParams p, const float* __restrict__ x, const float* __restrict__ partial,
                      float* __restrict__ mean, float* __restrict__ var) {
    const int c = global_thread();
    if (c >= p.c) return;
    double s1, s2;
    sum_splits(p, partial, c, s1, s2);
    const double m = s1 / p.rows;
    mean[c] = (float)(x[c] + m);
    var[c] = (float)fmax(s2 / p.rows - m * m, 0.0);
}

// scale = gamma / sqrt(var + eps), from the batch or the running variance.
// contract: gamma[p.c]; var[p.c]; scale[p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    bn_scale(const BnParams p, const float* __restrict__ gamma, const float* __restrict__ var,
             float* __restrict__ scale) {
    const int c = global_thread();
    if (c < p.c) scale[c] = gamma[c] * (1.f / sqrtf(var[c] + p.eps));
}

// running = (1 - momentum) running + momentum stat, the variance unbiased by n / (n - 1).
// contract: mean[p.c]; var[p.c]; running_mean[p.c]; running_var[p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    bn_running_update(const BnParams p, const float* __restrict__ mean, const float* __restrict__ var,
                      float* __restrict__ running_mean, float* __restrict__ running_var) {
    const int c = global_thread();
    if (c >= p.c) return;
    running_mean[c] = (1.f - p.momentum) * running_mean[c] + p.momentum * mean[c];
    running_var[c] = (1.f - p.momentum) * running_var[c] + p.momentum * var[c] * p.unbias;
}

// y = act((x - center) * scale + beta [+ residual]), act = ReLU when p.relu.
// contract: x[p.rows * p.c]; center[p.c]; scale[p.c]; beta[p.c]; residual[p.rows * p.c]; y[p.rows * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    bn_forward(const BnParams p, const float* __restrict__ x, const float* __restrict__ center,
               const float* __restrict__ scale, const float* __restrict__ beta,
               NULLABLE const float* __restrict__ residual, float* __restrict__ y) {
    for (int i = global_thread(); i < p.rows * p.c; i += grid_stride()) {
        const int c = i % p.c;
        float v = (x[i] - center[c]) * scale[c] + beta[c];
        if (residual) v += residual[i];
        if (p.relu) v = v > 0.f ? v : 0.f;
        y[i] = v;
    }
}

// dz = dy, masked by y > 0 when the ReLU output y is given.
__device__ __forceinline__ float masked(const float* __restrict__ dy, const float* __restrict__ y, int i) {
    return y ? (y[i] > 0.f ? dy[i] : 0.f) : dy[i];
}

// Sums of dz and dz * (x - center).
// contract: x[p.rows * p.c]; dy[p.rows * p.c]; y[p.rows * p.c]; center[p.c];
// partial[2 * ((p.rows + p.split_rows - 1) / p.split_rows) * p.c]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    bn_backward_partial(const BnParams p, const float* __restrict__ x, const float* __restrict__ dy,
                        NULLABLE const float* __restrict__ y, const float* __restrict__ center,
                        float* __restrict__ partial) {
    channel_partial_sums(p, partial, [&](int r, int c, float& a, float& b) {
        const int i = r * p.c + c;
        const float g = masked(dy, y, i);
        a += g;
        b += g * (x[i] - center[c]);
    });
}

// dbeta = sum dz, dgamma = sum dz (x - center) / sqrt(var + eps); in training also the
// coefficients of dx: k_mean = sum dz / n, k_x = sum dz (x - mean) / (n (var + eps)); zero in
// evaluation.
// contract: partial[2 * ((p.rows + p.split_rows - 1) / p.split_rows) * p.c]; var[p.c]; dgamma[p.c];
// dbeta[p.c]; k_mean[p.c]; k_x[p.c]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(BLOCK)
    bn_backward_finalize(const BnParams p, const float* __restrict__ partial, const float* __restrict__ var,
                         float* __restrict__ dgamma, float* __restrict__ dbeta, float* __restrict__ k_mean,
                         float* __restrict__ k_x) {
    const int c = global_thread();
    if (c >= p.c) return;
    double s1, s2;
    sum_splits(p, partial, c, s1, s2);
    const float inv_std = 1.f / sqrtf(var[c] + p.eps);
    dgamma[c] = (float)(s2 * inv_std);
    dbeta[c] = (float)s1;
    k_mean[c] = p.training ? (float)(s1 / p.rows) : 0.f;
    k_x[c] = p.training ? (float)(s2 / p.rows * ((double)inv_std * inv_std)) : 0.f;
}

// dx = scale * (dz - k_mean - (x - center) * k_x), and dz itself (the residual's gradient) when
// dz is given.
// contract: x[p.rows * p.c]; dy[p.rows * p.c]; y[p.rows * p.c]; center[p.c]; scale[p.c]; k_mean[p.c];
// k_x[p.c]; dx[p.rows * p.c]; dz[p.rows * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    bn_backward_data(const BnParams p, const float* __restrict__ x, const float* __restrict__ dy,
                     NULLABLE const float* __restrict__ y, const float* __restrict__ center,
                     const float* __restrict__ scale, const float* __restrict__ k_mean,
                     const float* __restrict__ k_x, float* __restrict__ dx, NULLABLE float* __restrict__ dz) {
    for (int i = global_thread(); i < p.rows * p.c; i += grid_stride()) {
        const int c = i % p.c;
        const float g = masked(dy, y, i);
        if (dz) dz[i] = g;
        dx[i] = scale[c] * (g - k_mean[c] - (x[i] - center[c]) * k_x[c]);
    }
}
