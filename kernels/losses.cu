// Loss kernels (src/ops/loss/): softmax cross-entropy with its gradient fused, Hinton's KD, the
// normalized-factor losses of Factor Transfer and IE-KD, attention maps, and L1 / L2 differences.
// Row-wise kernels give each row to one warp (rows of classes) or one block (long rows); per-row
// losses are summed afterwards by column_sums (gemm.cu).
#include "common.cuh"

// The row of the calling warp when a block of BLOCK threads handles BLOCK / WARP rows.
__device__ __forceinline__ int warp_row() { return blockIdx.x * (BLOCK / WARP) + threadIdx.x / WARP; }

__device__ __forceinline__ float neg_inf() { return -__int_as_float(0x7f800000); }

// Per row of logits z [rows, k] with label y: row_loss = logsumexp(z) - z[y], and optionally
// prob = softmax(z) and dz = a * (prob - onehot(y)) (a = dL / N); a NaN loss for a label that is
// not a class. One warp per row.
// contract: z[p.rows * p.cols]; labels[p.rows]; prob[p.rows * p.cols]; dz[p.rows * p.cols]; row_loss[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    softmax_ce(const RowParams p, const float* __restrict__ z, const int* __restrict__ labels,
               NULLABLE float* __restrict__ prob, NULLABLE float* __restrict__ dz, float* __restrict__ row_loss) {
    const int row = warp_row(), lane = threadIdx.x % WARP, k = p.cols;
    if (row >= p.rows) return;  // the whole warp
    const float* zr = z + row * k;
    const int y = labels[row];
    float m = neg_inf();
    for (int j = lane; j < k; j += WARP) m = fmaxf(m, zr[j]);
    m = warp_max(m);
    float total = 0.f;
    for (int j = lane; j < k; j += WARP) total += expf(zr[j] - m);
    total = warp_sum(total);
    const float inv = 1.f / total;
    for (int j = lane; j < k; j += WARP) {
        const float pj = expf(zr[j] - m) * inv;
        if (prob) prob[row * k + j] = pj;
        if (dz) {
            float g = p.a * pj;
            if (j == y) g -= p.a;
            dz[row * k + j] = g;
        }
    }
    if (lane == 0) row_loss[row] = y >= 0 && y < k ? logf(total) - (zr[y] - m) : quiet_nan();
}

// dz = a * prob - a * onehot(y), from the kept softmax.
// contract: prob[p.rows * p.cols]; labels[p.rows]; dz[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    softmax_ce_backward(const RowParams p, const float* __restrict__ prob, const int* __restrict__ labels,
                        float* __restrict__ dz) {
    for (int i = global_thread(); i < p.rows * p.cols; i += grid_stride()) {
        float g = p.a * prob[i];
        if (i % p.cols == labels[i / p.cols]) g -= p.a;
        dz[i] = g;
    }
}

// out = log_softmax(v * inv_t) over one row of k, by the calling warp.
__device__ __forceinline__ void log_softmax_row(const float* __restrict__ v, int k, float inv_t,
                                                float* __restrict__ out, int lane) {
    float m = neg_inf();
    for (int j = lane; j < k; j += WARP) m = fmaxf(m, v[j] * inv_t);
    m = warp_max(m);
    float total = 0.f;
    for (int j = lane; j < k; j += WARP) total += expf(v[j] * inv_t - m);
    const float log_total = logf(warp_sum(total));
    for (int j = lane; j < k; j += WARP) out[j] = v[j] * inv_t - m - log_total;
}

// ls, lt = log_softmax(s / T), log_softmax(t / T) (a = 1 / T) and row_loss = sum exp(lt) (lt - ls).
// contract: s[p.rows * p.cols]; t[p.rows * p.cols]; ls[p.rows * p.cols]; lt[p.rows * p.cols]; row_loss[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    kd_forward(const RowParams p, const float* __restrict__ s, const float* __restrict__ t,
               float* __restrict__ ls, float* __restrict__ lt, float* __restrict__ row_loss) {
    const int row = warp_row(), lane = threadIdx.x % WARP, k = p.cols;
    if (row >= p.rows) return;  // the whole warp
    const int o = row * k;
    log_softmax_row(s + o, k, p.a, ls + o, lane);
    log_softmax_row(t + o, k, p.a, lt + o, lane);
    float sum = 0.f;
    for (int j = lane; j < k; j += WARP) sum += expf(lt[o + j]) * (lt[o + j] - ls[o + j]);
    sum = warp_sum(sum);
    if (lane == 0) row_loss[row] = sum;
}

// ds = a (exp(ls) - exp(lt)); dt = a exp(lt) ((lt - ls) - sum_k exp(lt) (lt - ls)) row-wise;
// a = dL T / N; either output may be null. One warp per row.
// contract: ls[p.rows * p.cols]; lt[p.rows * p.cols]; ds[p.rows * p.cols]; dt[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    kd_backward(const RowParams p, const float* __restrict__ ls, const float* __restrict__ lt,
                NULLABLE float* __restrict__ ds, NULLABLE float* __restrict__ dt) {
    const int row = warp_row(), lane = threadIdx.x % WARP, k = p.cols;
    if (row >= p.rows) return;  // the whole warp
    const int o = row * k;
    if (ds)
        for (int j = lane; j < k; j += WARP) ds[o + j] = p.a * (expf(ls[o + j]) - expf(lt[o + j]));
    if (!dt) return;
    float mean = 0.f;
    for (int j = lane; j < k; j += WARP) mean += expf(lt[o + j]) * (lt[o + j] - ls[o + j]);
    mean = warp_sum(mean);
    for (int j = lane; j < k; j += WARP) dt[o + j] = p.a * expf(lt[o + j]) * ((lt[o + j] - ls[o + j]) - mean);
}

// phi = x / max(||x||, NORM_EPS) per row of cols, norms = ||x||. One block per row.
// contract: x[p.rows * p.cols]; phi[p.rows * p.cols]; norms[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    normalize_rows(const RowParams p, const float* __restrict__ x, float* __restrict__ phi, float* __restrict__ norms) {
    if ((int)blockIdx.x >= p.rows) return;  // the whole block
    const int d = p.cols, o = blockIdx.x * d;
    float ss = 0.f;
    for (int j = threadIdx.x; j < d; j += BLOCK) ss += x[o + j] * x[o + j];
    const float norm = sqrtf(block_sum(ss));
    const float inv = 1.f / fmaxf(norm, NORM_EPS);
    for (int j = threadIdx.x; j < d; j += BLOCK) phi[o + j] = x[o + j] * inv;
    if (threadIdx.x == 0) norms[blockIdx.x] = norm;
}

// The gradient reaching x from g reaching phi: (g - phi <phi, g>) / ||x||, or g / NORM_EPS when
// ||x|| < NORM_EPS. One block per row.
// contract: phi[p.rows * p.cols]; norms[p.rows]; g[p.rows * p.cols]; dx[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    normalize_rows_backward(const RowParams p, const float* __restrict__ phi, const float* __restrict__ norms,
                            const float* __restrict__ g, float* __restrict__ dx) {
    if ((int)blockIdx.x >= p.rows) return;  // the whole block
    const int d = p.cols, o = blockIdx.x * d;
    const float norm = norms[blockIdx.x];
    if (norm < NORM_EPS) {  // the same branch for the whole block
        for (int j = threadIdx.x; j < d; j += BLOCK) dx[o + j] = g[o + j] / NORM_EPS;
    } else {
        float dot = 0.f;
        for (int j = threadIdx.x; j < d; j += BLOCK) dot += phi[o + j] * g[o + j];
        dot = block_sum(dot);
        const float inv = 1.f / norm;
        for (int j = threadIdx.x; j < d; j += BLOCK) dx[o + j] = (g[o + j] - phi[o + j] * dot) * inv;
    }
}

// out[row] = sum_j f(a, b) with f = |a - b| (mode 0), (a - b)^2 (mode 1) or a * b (mode 2). One
// block per row (a single row of all elements gives the L1 / L2 reconstruction losses).
// contract: a[p.rows * p.cols]; b[p.rows * p.cols]; out[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    row_distance(const RowParams p, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out) {
    row_pair_sums(p, a, b, out, [&](float& sum, float u, float v) {
        sum += p.mode == 0 ? fabsf(u - v) : (p.mode == 1 ? (u - v) * (u - v) : u * v);
    });
}

// ga = a * sign(x - y) (mode 0) or 2 a (x - y) (mode 1), gb = -ga when gb is given: the gradient
// of a * sum |x - y|^p.
// contract: x[p.len]; y[p.len]; ga[p.len]; gb[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    diff_backward(const MapParams p, const float* __restrict__ x, const float* __restrict__ y,
                  float* __restrict__ ga, NULLABLE float* __restrict__ gb) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) {
        const float g = p.mode == 0 ? p.a * sign_of(x[i] - y[i]) : 2.f * p.a * (x[i] - y[i]);
        ga[i] = g;
        if (gb) gb[i] = -g;
    }
}

// g = a * sign(dots[row]) * other: the gradient of a * sum_rows |<phi, other>|.
// contract: dots[p.rows]; other[p.rows * p.cols]; g[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    dots_backward(const RowParams p, const float* __restrict__ dots, const float* __restrict__ other,
                  float* __restrict__ g) {
    for (int i = global_thread(); i < p.rows * p.cols; i += grid_stride())
        g[i] = p.a * sign_of(dots[i / p.cols]) * other[i];
}

// q[pixel] = sum_c x[pixel, c]^2 / C over rows = pixels of cols = C. One warp per pixel.
// contract: x[p.rows * p.cols]; q[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    channel_mean_square(const RowParams p, const float* __restrict__ x, float* __restrict__ q) {
    const int row = warp_row(), lane = threadIdx.x % WARP;
    if (row >= p.rows) return;  // the whole warp
    float sum = 0.f;
    for (int j = lane; j < p.cols; j += WARP) sum += x[row * p.cols + j] * x[row * p.cols + j];
    sum = warp_sum(sum);
    if (lane == 0) q[row] = sum / p.cols;
}

// dx[pixel, c] = (2 / C) dq[pixel] x[pixel, c].
// contract: x[p.rows * p.cols]; dq[p.rows]; dx[p.rows * p.cols]
extern "C" __global__ void __launch_bounds__(BLOCK)
    channel_mean_square_backward(const RowParams p, const float* __restrict__ x, const float* __restrict__ dq,
                                 float* __restrict__ dx) {
    const float scale = 2.f / p.cols;
    for (int i = global_thread(); i < p.rows * p.cols; i += grid_stride()) dx[i] = scale * dq[i / p.cols] * x[i];
}

// hit[row] = 1 when the first largest entry of z's row is at labels[row], else 0 (a NaN never
// wins). One thread per row: the rows are few (a batch) and short (the classes).
// contract: z[p.rows * p.cols]; labels[p.rows]; hit[p.rows]
extern "C" __global__ void __launch_bounds__(BLOCK)
    argmax_hits(const RowParams p, const float* __restrict__ z, const int* __restrict__ labels,
                float* __restrict__ hit) {
    for (int row = global_thread(); row < p.rows; row += grid_stride()) {
        const float* zr = z + row * p.cols;
        int best = 0;
        for (int j = 1; j < p.cols; ++j)
            if (zr[j] > zr[best]) best = j;
        hit[row] = best == labels[row] ? 1.f : 0.f;
    }
}
