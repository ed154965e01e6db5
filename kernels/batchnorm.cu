// Batch normalisation over rows x c values (channels last), alone or fused with a ReLU and a
// residual add; mirrors src/ops/batchnorm/cpu.rs. A training forward and a backward are two
// launches each, over the same grid (ceil(c / RED_C), splits) of blocks of 32 channels x 8 row
// lanes, block (x, z) covering the channels of tile x in the split_rows rows of split z. The first
// kernel sums its block's rows into partial[z][2][c]. Every block of the second adds the partials
// of its channels over the splits (in double, in the same order in every block, so that every
// block derives the same per-channel values), then writes its rows; the blocks of split 0 also
// write the per-channel outputs. No atomics and no buffer zeroed by the host: the results are the
// same on every run and on every replay of a captured graph. The evaluation forward is one launch.
#include "common.cuh"

__device__ __forceinline__ int splits_of(const BnParams& p) { return (p.rows + p.split_rows - 1) / p.split_rows; }

// Whether the block lies past the last channel tile or the last split (the whole block returns).
__device__ __forceinline__ bool outside(const BnParams& p) {
    return (int)blockIdx.x * RED_C >= p.c || (int)blockIdx.y >= splits_of(p);
}

// partial[z][0][c], partial[z][1][c] = the sums of f(row, c) = (a, b) over the rows of split z.
template <class F>
__device__ __forceinline__ void channel_partial_sums(const BnParams& p, float* __restrict__ partial, F f) {
    __shared__ float lanes[2][RED_R][RED_C + 1];
    if (outside(p)) return;  // the whole block
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

// s1, s2 = the sums over the splits of partial[z][0][c], partial[z][1][c] for the thread's channel
// c = blockIdx.x * RED_C + threadIdx.x (zero past the last channel), in double: lane y adds the
// splits z = y, y + RED_R, ... in order, then every thread adds the lanes in order. Called by every
// thread of a block that is not outside().
__device__ __forceinline__ void sum_splits(const BnParams& p, const float* __restrict__ partial, double& s1,
                                           double& s2) {
    __shared__ double lanes[2][RED_R][RED_C];
    const int c = blockIdx.x * RED_C + threadIdx.x;
    double a = 0.0, b = 0.0;
    if (c < p.c)
        for (int z = threadIdx.y; z < splits_of(p); z += RED_R) {
            a += partial[(2 * z) * p.c + c];
            b += partial[(2 * z + 1) * p.c + c];
        }
    lanes[0][threadIdx.y][threadIdx.x] = a;
    lanes[1][threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    s1 = 0.0;
    s2 = 0.0;
    for (int r = 0; r < RED_R; ++r) {
        s1 += lanes[0][r][threadIdx.x];
        s2 += lanes[1][r][threadIdx.x];
    }
}

// f(i, k) for every element i of the block's rows in its channel tile, k the channel's place in
// the tile. When one tile holds every channel (c <= RED_C) the rows are one contiguous range,
// walked flat so that no lane idles; otherwise lane y takes rows y, y + RED_R, ...
template <class F>
__device__ __forceinline__ void for_each_in_tile(const BnParams& p, F f) {
    const int first = blockIdx.y * p.split_rows, end = min(p.rows, first + p.split_rows);
    if (p.c <= RED_C) {
        for (int i = first * p.c + threadIdx.y * RED_C + threadIdx.x; i < end * p.c; i += RED_C * RED_R)
            f(i, i % p.c);
    } else {
        const int c = blockIdx.x * RED_C + threadIdx.x;
        if (c < p.c)
            for (int r = first + threadIdx.y; r < end; r += RED_R) f(r * p.c + c, (int)threadIdx.x);
    }
}

// y = act((x - center[k]) * scale[k] + beta[k] [+ residual]) over the block's rows, act = ReLU when
// p.relu; center, scale and beta hold the tile's channels (shared memory).
__device__ __forceinline__ void normalize_tile(const BnParams& p, const float* __restrict__ x, const float* center,
                                               const float* scale, const float* beta,
                                               const float* __restrict__ residual, float* __restrict__ y) {
    for_each_in_tile(p, [&](int i, int k) {
        float v = (x[i] - center[k]) * scale[k] + beta[k];
        if (residual) v += residual[i];
        if (p.relu) v = v > 0.f ? v : 0.f;
        y[i] = v;
    });
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

// y = act((x - mean) * gamma / sqrt(var + eps) + beta [+ residual]) with the batch statistics from
// the sums of bn_stats_partial: mean = x[0] + s1 / n, biased var = max(s2 / n - (s1 / n)^2, 0).
// Split 0 writes mean and var and, when they are given, updates the running statistics:
// running = (1 - momentum) running + momentum stat, the variance unbiased by n / (n - 1).
// contract: x[p.rows * p.c]; partial[2 * ((p.rows + p.split_rows - 1) / p.split_rows) * p.c];
// gamma[p.c]; beta[p.c]; residual[p.rows * p.c]; y[p.rows * p.c]; mean[p.c]; var[p.c];
// running_mean[p.c]; running_var[p.c]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    bn_forward_train(const BnParams p, const float* __restrict__ x, const float* __restrict__ partial,
                     const float* __restrict__ gamma, const float* __restrict__ beta,
                     NULLABLE const float* __restrict__ residual, float* __restrict__ y, float* __restrict__ mean,
                     float* __restrict__ var, NULLABLE float* __restrict__ running_mean,
                     NULLABLE float* __restrict__ running_var) {
    __shared__ float center_t[RED_C], scale_t[RED_C], beta_t[RED_C];
    if (outside(p)) return;  // the whole block
    // s / n as s * (1 / n): a double division here compiles to a call of its slow path, which needs
    // a stack frame.
    const double inv_n = 1.0 / p.rows;
    double s1, s2;
    sum_splits(p, partial, s1, s2);
    const int c = blockIdx.x * RED_C + threadIdx.x;
    if (threadIdx.y == 0 && c < p.c) {
        const double m = s1 * inv_n;
        const float mu = (float)(x[c] + m), v = (float)fmax(s2 * inv_n - m * m, 0.0);
        center_t[threadIdx.x] = mu;
        scale_t[threadIdx.x] = gamma[c] * (1.f / sqrtf(v + p.eps));
        beta_t[threadIdx.x] = beta[c];
        if (blockIdx.y == 0) {
            mean[c] = mu;
            var[c] = v;
            if (running_mean) running_mean[c] = (1.f - p.momentum) * running_mean[c] + p.momentum * mu;
            if (running_var) running_var[c] = (1.f - p.momentum) * running_var[c] + p.momentum * v * p.unbias;
        }
    }
    __syncthreads();
    normalize_tile(p, x, center_t, scale_t, beta_t, residual, y);
}

// y = act((x - center) * gamma / sqrt(var + eps) + beta [+ residual]) with given statistics: the
// running ones in evaluation, or batch statistics computed before (by a convolution's epilogue),
// which split 0 then folds into the running statistics when they are given, as bn_forward_train.
// contract: x[p.rows * p.c]; center[p.c]; var[p.c]; gamma[p.c]; beta[p.c]; residual[p.rows * p.c];
// y[p.rows * p.c]; running_mean[p.c]; running_var[p.c]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    bn_forward(const BnParams p, const float* __restrict__ x, const float* __restrict__ center,
               const float* __restrict__ var, const float* __restrict__ gamma, const float* __restrict__ beta,
               NULLABLE const float* __restrict__ residual, float* __restrict__ y,
               NULLABLE float* __restrict__ running_mean, NULLABLE float* __restrict__ running_var) {
    __shared__ float center_t[RED_C], scale_t[RED_C], beta_t[RED_C];
    if (outside(p)) return;  // the whole block
    const int c = blockIdx.x * RED_C + threadIdx.x;
    if (threadIdx.y == 0 && c < p.c) {
        center_t[threadIdx.x] = center[c];
        scale_t[threadIdx.x] = gamma[c] * (1.f / sqrtf(var[c] + p.eps));
        beta_t[threadIdx.x] = beta[c];
        if (blockIdx.y == 0) {
            if (running_mean) running_mean[c] = (1.f - p.momentum) * running_mean[c] + p.momentum * center[c];
            if (running_var) running_var[c] = (1.f - p.momentum) * running_var[c] + p.momentum * var[c] * p.unbias;
        }
    }
    __syncthreads();
    normalize_tile(p, x, center_t, scale_t, beta_t, residual, y);
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

// dx = scale * (dz - k_mean - (x - center) * k_x), scale = gamma / sqrt(var + eps), from the sums
// s1 = sum dz and s2 = sum dz (x - center) of bn_backward_partial: in training (dx flows through
// the batch statistics) k_mean = s1 / n and k_x = s2 / (n (var + eps)), in evaluation both zero;
// and dz itself (the residual's gradient) when dz is given. Split 0 writes dbeta = s1 and
// dgamma = s2 / sqrt(var + eps).
// contract: x[p.rows * p.c]; dy[p.rows * p.c]; y[p.rows * p.c]; center[p.c]; var[p.c]; gamma[p.c];
// partial[2 * ((p.rows + p.split_rows - 1) / p.split_rows) * p.c]; dx[p.rows * p.c];
// dz[p.rows * p.c]; dgamma[p.c]; dbeta[p.c]; p.split_rows >= 1
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    bn_backward_data(const BnParams p, const float* __restrict__ x, const float* __restrict__ dy,
                     NULLABLE const float* __restrict__ y, const float* __restrict__ center,
                     const float* __restrict__ var, const float* __restrict__ gamma,
                     const float* __restrict__ partial, float* __restrict__ dx, NULLABLE float* __restrict__ dz,
                     float* __restrict__ dgamma, float* __restrict__ dbeta) {
    __shared__ float center_t[RED_C], scale_t[RED_C], k_mean_t[RED_C], k_x_t[RED_C];
    if (outside(p)) return;  // the whole block
    const double inv_n = 1.0 / p.rows;  // as in bn_forward_train
    double s1, s2;
    sum_splits(p, partial, s1, s2);
    const int c = blockIdx.x * RED_C + threadIdx.x;
    if (threadIdx.y == 0 && c < p.c) {
        const float inv_std = 1.f / sqrtf(var[c] + p.eps);
        center_t[threadIdx.x] = center[c];
        scale_t[threadIdx.x] = gamma[c] * inv_std;
        k_mean_t[threadIdx.x] = p.training ? (float)(s1 * inv_n) : 0.f;
        k_x_t[threadIdx.x] = p.training ? (float)(s2 * inv_n * ((double)inv_std * inv_std)) : 0.f;
        if (blockIdx.y == 0) {
            dgamma[c] = (float)(s2 * inv_std);
            dbeta[c] = (float)s1;
        }
    }
    __syncthreads();
    for_each_in_tile(p, [&](int i, int k) {
        const float g = masked(dy, y, i);
        if (dz) dz[i] = g;
        dx[i] = scale_t[k] * (g - k_mean_t[k] - (x[i] - center_t[k]) * k_x_t[k]);
    });
}
