// The batch-norm epilogues of the convolutions (kernels/conv2d.cu, kernels/conv2d_tf32.cu,
// kernels/conv2d_bf16.cu, which include this header after common.cuh): the batch statistics
// (per-channel sums of the output tiles merged, in a fixed order and in double, into the batch
// mean and variance, by the last block of each group of STAT_GROUP tiles and then the last group
// of each column of tiles), and the evaluation-mode normalisation of an output tile.
#ifndef IEKD_CONV_STATS_CUH
#define IEKD_CONV_STATS_CUH

// Whether the calling block is the last of n blocks to arrive at *ticket, after each has made
// its writes visible to the device (then so are the others' to it); the last one wraps the ticket
// back to zero, leaving it as found for the next launch or graph replay. Every thread calls it.
__device__ __forceinline__ bool last_to_arrive(int* ticket, int n) {
    __shared__ bool last;
    __threadfence();  // this thread's writes reach the device before the block's ticket
    __syncthreads();
    if (threadIdx.x == 0) last = atomicInc(reinterpret_cast<unsigned*>(ticket), n - 1) == (unsigned)(n - 1);
    __syncthreads();
    if (last) __threadfence();  // the other blocks' writes, made visible before their tickets
    return last;
}

// Merges per-channel partial statistics: part[z][0][c] is the sum and part[z][1][c] the sum of
// squared deviations from their own mean of the rows of partial z, min(unit, m - z * unit) rows
// from row z * unit. Returns to the threads t < cols (channel col0 + t) the sum and squared
// deviations of the rows of the partials first <= z < end together, in double (Chan's parallel
// formula): lane l of a channel takes z = first + l, first + l + lanes, ..., then the lanes are
// added in order, so the result is the same on every run. Every thread of the block (THREADS,
// at least cols) calls it.
template <int THREADS>
__device__ __forceinline__ void merge_statistics(const float* __restrict__ part, int c_out, int col0, int cols,
                                                 int first, int end, int unit, int m, double& sum, double& m2) {
    __shared__ double lanes_sum[THREADS];
    const int lanes = THREADS / cols, t = threadIdx.x, col = t % cols, lane = t / cols;
    const int c = col0 + col;
    const bool active = lane < lanes;
    double s = 0.0;
    if (active)
        for (int z = first + lane; z < end; z += lanes) s += __ldcg(&part[(2 * z) * c_out + c]);
    lanes_sum[t] = s;
    __syncthreads();
    double total = 0.0;
    for (int l = 0; l < lanes; ++l) total += lanes_sum[l * cols + col];
    const double mu = total * (1.0 / (min(end * unit, m) - first * unit));
    __syncthreads();  // every thread has read lanes_sum
    double q = 0.0;
    if (active)
        for (int z = first + lane; z < end; z += lanes) {
            const int n_z = min(unit, m - z * unit);
            const double d = (double)(__ldcg(&part[(2 * z) * c_out + c]) / n_z) - mu;
            q += __ldcg(&part[(2 * z + 1) * c_out + c]) + n_z * d * d;
        }
    lanes_sum[t] = q;
    __syncthreads();
    sum = total;
    m2 = 0.0;
    for (int l = 0; l < lanes; ++l) m2 += lanes_sum[l * cols + col];
}

// The statistics of a column of `tiles` row tiles of `tile_rows` rows (m rows in all; m_all the
// rows of the whole output, which sizes partial) and `cols` channels from col0, once the calling
// block has its tile's per-channel sum and sum of squared deviations from the tile's own mean in
// tile_sum and tile_m2 (cols each): the block writes them to partial[tile][2][c] (tile =
// blockIdx.x); the last block of each group of STAT_GROUP tiles merges the group's into
// partial[T + group][2][c] (T = ceil(m_all / tile_rows)), and the last group of the column merges
// those into mean and the biased var. column_tickets: one per group, then one for the column.
// Every thread of the block calls it, as the kernel's last step.
template <int THREADS>
__device__ __forceinline__ void finish_statistics(const float* tile_sum, const float* tile_m2, int tiles, int tile_rows,
                                                  int m_all, int m, int c_out, int col0, int cols,
                                                  float* __restrict__ partial, int* __restrict__ column_tickets,
                                                  float* __restrict__ mean, float* __restrict__ var) {
    const int t = threadIdx.x, tile = blockIdx.x;
    if (t < cols) {
        partial[(2 * tile) * c_out + col0 + t] = tile_sum[t];
        partial[(2 * tile + 1) * c_out + col0 + t] = tile_m2[t];
    }
    const int groups = tiles_of(tiles, STAT_GROUP), group = tile / STAT_GROUP;
    const int first = group * STAT_GROUP, end = min(first + STAT_GROUP, tiles);
    if (!last_to_arrive(&column_tickets[group], end - first)) return;  // the whole block
    double sum, m2;
    merge_statistics<THREADS>(partial, c_out, col0, cols, first, end, tile_rows, m, sum, m2);
    float* group_part = partial + 2 * tiles_of(m_all, tile_rows) * c_out;
    if (t < cols) {
        group_part[(2 * group) * c_out + col0 + t] = (float)sum;
        group_part[(2 * group + 1) * c_out + col0 + t] = (float)m2;
    }
    if (!last_to_arrive(&column_tickets[tiles_of(m_all, STAT_GROUP * tile_rows)], groups)) return;  // the whole block
    merge_statistics<THREADS>(group_part, c_out, col0, cols, 0, groups, STAT_GROUP * tile_rows, m, sum, m2);
    if (t < cols) {
        const double inv_m = 1.0 / m;
        mean[col0 + t] = (float)(sum * inv_m);
        var[col0 + t] = (float)(m2 * inv_m);
    }
}

// The evaluation batch norm of a tile's N columns from col0 (bn_forward's operations in its
// order): per-channel centre, scale gamma / sqrt(var + eps) and shift, held in shared memory.
template <int N>
struct EvalNormTile {
    float center[N], scale[N], shift[N];
    // Threads t < cols load channel col0 + t; the values are visible after the block's next barrier.
    __device__ __forceinline__ void load(const float* __restrict__ center_, const float* __restrict__ var,
                                         const float* __restrict__ gamma, const float* __restrict__ beta, float eps,
                                         int col0, int cols) {
        const int t = threadIdx.x, c = col0 + t;
        if (t < cols) {
            center[t] = center_[c];
            scale[t] = gamma[c] * (1.f / sqrtf(var[c] + eps));
            shift[t] = beta[c];
        }
    }
    // The output at y[at] from the convolution's value a in tile column k: normalised, plus
    // residual[at] when there is one, then a ReLU when relu.
    __device__ __forceinline__ float apply(float a, int k, const float* __restrict__ residual, int at, int relu) const {
        float v = (a - center[k]) * scale[k] + shift[k];
        if (residual) v += residual[at];
        if (relu) v = v > 0.f ? v : 0.f;
        return v;
    }
};

#endif
