// The linear layer's GEMM on tensor cores: kernels/gemm.cu's `gemm` (the same GemmParams, strided
// a and b, optional bias, c contiguous [m, n], the same results up to operand rounding) with
// mma.sync m16n8k8 TF32 (gemm_tf32) or m16n8k16 bf16 (gemm_bf16), fp32 accumulation in both.
//
// Block: 128 threads, four warps stacked in rows, each a 16 x 64 warp tile (eight mmas per
// k-step, one A fragment reused across them); block tile BM = 64 rows by BN = 64 columns, grid
// (ceil(m / 64), ceil(n / 64)). The shared tiles of a stage: A as [BM][k] (k contiguous) and B as
// [k][BN] (columns contiguous), rows padded so that the fragment reads of a warp hit 32 different
// banks and rows stay 16-byte aligned.
//
// Loads (TileLoads): each thread loads a fixed set of elements of each tile, its warp walking the
// tile's contiguous dimension when the operand's stride there is 1, else the other one, so the
// loads of a warp are coalesced whichever of the three products runs (y = x W^T reads x and W
// along k, dx = dy W reads W along its columns, dW = dy^T x reads dy along its rows). Elements
// outside the matrices are zeros, so any m, n and k work.
//
// gemm_tf32: fp32 tiles filled by 4-byte cp.async (the strides allow no wider copy), BK = 16 of k
// per stage (two mma k-steps), STAGES = 3 stages in dynamic shared memory with one commit group
// and one barrier per stage (kernels/conv2d_tf32.cu's pipeline); each operand rounded by to_tf32
// (cvt.rna) when its fragment is read. Tiles (words): A [BM][BK + 4], B [BK][BN + 8].
//
// gemm_bf16: each thread loads its pairs of fp32 values of the next stage into registers while the
// warps multiply the current one, then rounds them to bf16 (to nearest even, pack_bf16x2) and
// stores them as bf16x2 words into the other of two stages; one barrier per stage. BK = 32 of k per
// stage (two mma k-steps). Tiles (bf16x2 words): A [BM][BK / 2 + 4] (pairs along k), B [BK][BN / 2
// + 4] (pairs along the columns). Fragments by ldmatrix: A's by x4, B's by x4.trans (the b
// fragments of two 8-column tiles).
#include "common.cuh"
#include "tensor_core.cuh"

namespace tc_gemm {

constexpr int THREADS = 128;
constexpr int BM = 64;
constexpr int BN = 64;

// The elements of an R x C shared tile, (o, i) with i contiguous, that one thread loads, in units
// of PAIR consecutive i (PAIR = 2: one bf16x2 word). The tile at stage origin k0 holds the matrix
// elements src[(o0 + o) * so + (i0 + i) * si] with k0 added to i (K_INNER: the A tile, k along i)
// or to o (the B tile, k along o); unit j of the thread is at (o + j * step_o, i + j * step_i).
template <int R, int C, int PAIR, bool K_INNER>
struct TileLoads {
    static constexpr int UNITS = C / PAIR;  // units per tile row
    static constexpr int COUNT = R * UNITS / THREADS;
    static_assert(THREADS % UNITS == 0 && THREADS % R == 0 && COUNT >= 1, "the threads cover the tile");
    const float* src;
    int so, si, o_len, i_len;  // the matrix's strides and extents
    int o0, i0;                // the tile's origin at k0 = 0
    int o, i, step_o, step_i;  // the thread's first unit and the step to the next, in the tile

    __device__ __forceinline__ TileLoads(const float* src_, int so_, int si_, int o_len_, int i_len_, int o0_,
                                         int i0_)
        : src(src_), so(so_), si(si_), o_len(o_len_), i_len(i_len_), o0(o0_), i0(i0_) {
        if (si == 1) {  // consecutive threads along i
            o = threadIdx.x / UNITS;
            i = threadIdx.x % UNITS * PAIR;
            step_o = THREADS / UNITS;
            step_i = 0;
        } else {  // consecutive threads along o
            o = threadIdx.x % R;
            i = threadIdx.x / R * PAIR;
            step_o = 0;
            step_i = THREADS / R * PAIR;
        }
    }
    __device__ __forceinline__ int row(int j) const { return o + j * step_o; }
    __device__ __forceinline__ int col(int j) const { return i + j * step_i; }
    // The offset in src of element e of unit j at stage origin k0, or -1 outside the matrix.
    __device__ __forceinline__ int offset(int j, int e, int k0) const {
        const int go = o0 + row(j) + (K_INNER ? 0 : k0), gi = i0 + col(j) + e + (K_INNER ? k0 : 0);
        return go < o_len && gi < i_len ? go * so + gi * si : -1;
    }
    // The value of element e of unit j at stage origin k0 (zero outside the matrix).
    __device__ __forceinline__ float value(int j, int e, int k0) const {
        const int at = offset(j, e, k0);
        return at >= 0 ? __ldg(&src[at]) : 0.f;
    }
};

// c[row, col] = acc + bias[col] for the thread's accumulators in rows < m and columns < n of the
// block tile at (row0, col0): acc[j][i] is row warp * 16 + g + 8 (i / 2), column 8 j + 2 t + i % 2.
__device__ __forceinline__ void store(const float (&acc)[BN / 8][4], const GemmParams& p, int row0, int col0,
                                      const float* __restrict__ bias, float* __restrict__ c) {
    const int lane = threadIdx.x % WARP, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = row0 + threadIdx.x / WARP * 16 + g + 8 * (i / 2);
        if (row >= p.m) continue;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const int col = col0 + 8 * j + 2 * t + i % 2;
            if (col < p.n) c[row * p.n + col] = acc[j][i] + (bias ? __ldg(&bias[col]) : 0.f);
        }
    }
}

namespace tf32 {

constexpr int BK = 16;
constexpr int STAGES = 3;
constexpr int A_LD = BK + 4;                      // A as [BM][A_LD] words
constexpr int B_LD = BN + 8;                      // B as [BK][B_LD] words
constexpr int A_WORDS = BM * A_LD;                // 1280
constexpr int STAGE_WORDS = A_WORDS + BK * B_LD;  // 2432
// The dynamic shared memory of gemm_tf32 (its contract's shared(29184)).
constexpr int SHARED_BYTES = STAGES * STAGE_WORDS * 4;
static_assert(SHARED_BYTES == 29184, "the contract states the shared memory");

using ALoads = TileLoads<BM, BK, 1, true>;
using BLoads = TileLoads<BK, BN, 1, false>;

__device__ __forceinline__ void gemm(const GemmParams& p, const float* __restrict__ a, const float* __restrict__ b,
                                     const float* __restrict__ bias, float* __restrict__ c, float* smem) {
    const int row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= p.m || col0 >= p.n) return;  // the whole block
    const ALoads la(a, p.a_row, p.a_col, p.m, p.k, row0, 0);
    const BLoads lb(b, p.b_row, p.b_col, p.k, p.n, 0, col0);
    // The copies of stage `stage` into slot `slot`; zeros outside the matrices.
    const auto load = [&](int stage, int slot) {
        float* ta = smem + slot * STAGE_WORDS;
        float* tb = ta + A_WORDS;
        const int k0 = stage * BK;
#pragma unroll
        for (int j = 0; j < ALoads::COUNT; ++j) {
            float* dst = ta + la.row(j) * A_LD + la.col(j);
            const int at = la.offset(j, 0, k0);
            if (at >= 0) cp_async_4(dst, a + at);
            else *dst = 0.f;
        }
#pragma unroll
        for (int j = 0; j < BLoads::COUNT; ++j) {
            float* dst = tb + lb.row(j) * B_LD + lb.col(j);
            const int at = lb.offset(j, 0, k0);
            if (at >= 0) cp_async_4(dst, b + at);
            else *dst = 0.f;
        }
    };
    const int steps = tiles_of(p.k, BK);
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < steps) load(s, s);
        cp_async_commit();
    }
    const int lane = threadIdx.x % WARP, g = lane >> 2, t = lane & 3, row = threadIdx.x / WARP * 16 + g;
    float acc[BN / 8][4] = {};
    int read = 0, write = STAGES - 1;  // stage slots
    for (int step = 0; step < steps; ++step) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // this stage has landed for every thread; the slot `write` is read
        if (step + STAGES - 1 < steps) load(step + STAGES - 1, write);
        cp_async_commit();
        const float* ta = smem + read * STAGE_WORDS;
        const float* tb = ta + A_WORDS;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            const float* r = ta + row * A_LD + kk + t;
            const unsigned fa[4] = {to_tf32(r[0]), to_tf32(r[8 * A_LD]), to_tf32(r[4]), to_tf32(r[8 * A_LD + 4])};
#pragma unroll
            for (int j = 0; j < BN / 8; ++j) {
                const float* q = tb + (kk + t) * B_LD + j * 8 + g;
                const unsigned fb[2] = {to_tf32(q[0]), to_tf32(q[4 * B_LD])};
                const float sum[4] = {acc[j][0], acc[j][1], acc[j][2], acc[j][3]};
                mma_tf32_m16n8k8(acc[j], fa, fb, sum);
            }
        }
        read = read == STAGES - 1 ? 0 : read + 1;
        write = write == STAGES - 1 ? 0 : write + 1;
    }
    store(acc, p, row0, col0, bias, c);
}

}  // namespace tf32

namespace bf16 {

constexpr int BK = 32;
constexpr int A_LDW = BK / 2 + 4;                  // A as [BM][A_LDW] bf16x2 words: 80-byte rows
constexpr int B_LDW = BN / 2 + 4;                  // B as [BK][B_LDW] bf16x2 words: 144-byte rows
constexpr int A_WORDS = BM * A_LDW;                // 1280
constexpr int STAGE_WORDS = A_WORDS + BK * B_LDW;  // 2432
// The dynamic shared memory of gemm_bf16, two stages (its contract's shared(19456)).
constexpr int SHARED_BYTES = 2 * STAGE_WORDS * 4;
static_assert(SHARED_BYTES == 19456, "the contract states the shared memory");
static_assert(A_LDW % 4 == 0 && B_LDW % 4 == 0, "ldmatrix rows are 16-byte aligned");

using ALoads = TileLoads<BM, BK, 2, true>;
using BLoads = TileLoads<BK, BN, 2, false>;

// One stage's operands in the registers of a thread: the pairs of its units, fp32.
struct Staged {
    float a[ALoads::COUNT][2];
    float b[BLoads::COUNT][2];
};

__device__ __forceinline__ void fetch(Staged& s, const ALoads& la, const BLoads& lb, int k0) {
#pragma unroll
    for (int j = 0; j < ALoads::COUNT; ++j) {
        s.a[j][0] = la.value(j, 0, k0);
        s.a[j][1] = la.value(j, 1, k0);
    }
#pragma unroll
    for (int j = 0; j < BLoads::COUNT; ++j) {
        s.b[j][0] = lb.value(j, 0, k0);
        s.b[j][1] = lb.value(j, 1, k0);
    }
}

// The staged pairs rounded to bf16 and stored as words into the stage at words.
__device__ __forceinline__ void put(const Staged& s, const ALoads& la, const BLoads& lb, unsigned* words) {
#pragma unroll
    for (int j = 0; j < ALoads::COUNT; ++j)
        words[la.row(j) * A_LDW + la.col(j) / 2] = pack_bf16x2(s.a[j][0], s.a[j][1]);
    unsigned* tb = words + A_WORDS;
#pragma unroll
    for (int j = 0; j < BLoads::COUNT; ++j)
        tb[lb.row(j) * B_LDW + lb.col(j) / 2] = pack_bf16x2(s.b[j][0], s.b[j][1]);
}

__device__ __forceinline__ void gemm(const GemmParams& p, const float* __restrict__ a, const float* __restrict__ b,
                                     const float* __restrict__ bias, float* __restrict__ c, unsigned* smem) {
    const int row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= p.m || col0 >= p.n) return;  // the whole block
    const ALoads la(a, p.a_row, p.a_col, p.m, p.k, row0, 0);
    const BLoads lb(b, p.b_row, p.b_col, p.k, p.n, 0, col0);
    // ldmatrix rows of lane l: matrix q = l / 8, its row l % 8. A's matrices (rows 0-7, k 0-7),
    // (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) of the warp's 16 rows are the
    // a fragment; B's (k 0-7, columns 0-7), (k 8-15, columns 0-7), then the same for columns
    // 8-15, transposed, are the b fragments of two column tiles.
    const int lane = threadIdx.x % WARP, q = lane / 8, r = lane % 8;
    const int a_row = threadIdx.x / WARP * 16 + r + 8 * (q % 2), a_k = 8 * (q / 2);
    const int b_k = r + 8 * (q % 2), b_col = 8 * (q / 2);
    const int steps = tiles_of(p.k, BK);
    Staged s;
    fetch(s, la, lb, 0);
    put(s, la, lb, smem);
    __syncthreads();
    float acc[BN / 8][4] = {};
    for (int step = 0; step < steps; ++step) {
        const bool more = step + 1 < steps;
        if (more) fetch(s, la, lb, (step + 1) * BK);  // in flight during the products
        const unsigned* ta = smem + step % 2 * STAGE_WORDS;
        const unsigned* tb = ta + A_WORDS;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            unsigned fa[4];
            ldmatrix_x4(fa, ta + a_row * A_LDW + (kk + a_k) / 2);
#pragma unroll
            for (int j = 0; j < BN / 8; j += 2) {
                unsigned fb[4];
                ldmatrix_x4_trans(fb, tb + (kk + b_k) * B_LDW + (8 * j + b_col) / 2);
                const unsigned lo[2] = {fb[0], fb[1]}, hi[2] = {fb[2], fb[3]};
                const float sum0[4] = {acc[j][0], acc[j][1], acc[j][2], acc[j][3]};
                mma_bf16_m16n8k16(acc[j], fa, lo, sum0);
                const float sum1[4] = {acc[j + 1][0], acc[j + 1][1], acc[j + 1][2], acc[j + 1][3]};
                mma_bf16_m16n8k16(acc[j + 1], fa, hi, sum1);
            }
        }
        // The other stage was last read before the previous barrier.
        if (more) put(s, la, lb, smem + (step + 1) % 2 * STAGE_WORDS);
        __syncthreads();
    }
    store(acc, p, row0, col0, bias, c);
}

}  // namespace bf16

}  // namespace tc_gemm

// c = a b (+ bias) as `gemm` computes it, with TF32 products (each operand rounded by cvt.rna):
// grid (ceil(m / 64), ceil(n / 64)).
// contract: a[(p.m - 1) * p.a_row + (p.k - 1) * p.a_col + 1]; b[(p.k - 1) * p.b_row + (p.n - 1) * p.b_col + 1];
// bias[p.n]; c[p.m * p.n]; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    gemm_tf32(const GemmParams p, const float* __restrict__ a, const float* __restrict__ b,
              NULLABLE const float* __restrict__ bias, float* __restrict__ c) {
    DYNAMIC_SHARED(float, smem);
    tc_gemm::tf32::gemm(p, a, b, bias, c, smem);
}

// c = a b (+ bias) as `gemm` computes it, with bf16 products (each operand rounded to nearest even
// when staged): grid (ceil(m / 64), ceil(n / 64)).
// contract: a[(p.m - 1) * p.a_row + (p.k - 1) * p.a_col + 1]; b[(p.k - 1) * p.b_row + (p.n - 1) * p.b_col + 1];
// bias[p.n]; c[p.m * p.n]; shared(19456)
extern "C" __global__ void __launch_bounds__(128)
    gemm_bf16(const GemmParams p, const float* __restrict__ a, const float* __restrict__ b,
              NULLABLE const float* __restrict__ bias, float* __restrict__ c) {
    DYNAMIC_SHARED(unsigned, smem);
    tc_gemm::bf16::gemm(p, a, b, bias, c, smem);
}
