// Checks of the tensor-core building blocks of tensor_core.cuh: each kernel runs them on data from
// global memory and writes what they produced, which the parity checks compare with a scalar
// reference of the PTX ISA's layouts and arithmetic (src/verify/parity/tensor_core.rs). The
// parameter structs are borrowed: MapParams (len, mode; a unused) and GemmParams.
#include "common.cuh"
#include "tensor_core.cuh"

// Words per pipeline stage of the matrix products: a 16 x 8 (tf32) or 16 x 16 (bf16) tile of A in
// 128 words, then an 8 x 8 (tf32) or 16 x 8 (bf16) tile of B in 64 words; two stages are the
// 1536 bytes of shared memory in their contracts.
constexpr int STAGE_WORDS = 192;

// y = x rounded to the operand an mma reads, as floats: tf32 by to_tf32 (mode 0), or bf16 by
// pack_bf16x2 on each pair (x[2i] low, x[2i + 1] high), unpacked again (mode 1).
// contract: x[p.len]; y[p.len]; p.mode <= 1; p.len % 2 == 0
extern "C" __global__ void __launch_bounds__(BLOCK)
    tensor_core_round(const MapParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len / 2; i += grid_stride()) {
        const float lo = x[2 * i], hi = x[2 * i + 1];
        if (p.mode == 0) {
            y[2 * i] = __int_as_float(static_cast<int>(to_tf32(lo)));
            y[2 * i + 1] = __int_as_float(static_cast<int>(to_tf32(hi)));
        } else {
            const unsigned w = pack_bf16x2(lo, hi);
            y[2 * i] = bf16_lo(w);
            y[2 * i + 1] = bf16_hi(w);
        }
    }
}

// One mma per block (a warp) on fragments given register by register: for tile blockIdx.x < p.len,
// lane l takes its a registers from a[(tile * WARP + l) * 4 + i], b from b[(tile * WARP + l) * 2 + i]
// and c from c[(tile * WARP + l) * 4 + i] (bit patterns: tf32 values, or bf16 pairs), and writes its
// d registers to d[(tile * WARP + l) * 4 + i]. Mode 0: mma_tf32_m16n8k8; mode 1: mma_bf16_m16n8k16.
// contract: a[p.len * WARP * 4]; b[p.len * WARP * 2]; c[p.len * WARP * 4]; d[p.len * WARP * 4];
//   p.mode <= 1
extern "C" __global__ void __launch_bounds__(WARP)
    mma_fragments(const MapParams p, const int* __restrict__ a, const int* __restrict__ b,
                  const float* __restrict__ c, float* __restrict__ d) {
    if ((int)blockIdx.x >= p.len) return;  // the whole block
    const int at = blockIdx.x * WARP + threadIdx.x;
    unsigned fa[4], fb[2];
    float fc[4], fd[4];
    for (int i = 0; i < 4; ++i) fa[i] = static_cast<unsigned>(a[at * 4 + i]);
    for (int i = 0; i < 2; ++i) fb[i] = static_cast<unsigned>(b[at * 2 + i]);
    for (int i = 0; i < 4; ++i) fc[i] = c[at * 4 + i];
    if (p.mode == 0) {
        mma_tf32_m16n8k8(fd, fa, fb, fc);
    } else {
        mma_bf16_m16n8k16(fd, fa, fb, fc);
    }
    for (int i = 0; i < 4; ++i) d[at * 4 + i] = fd[i];
}

// ldmatrix on rows of 8 bf16: block 0 (a warp) copies the p.len rows of src (4 words each) to
// shared memory with cp.async, lane l passes the address of row rows[l] (row 0 when rows[l] is not
// a row of src), and writes the halves of each register j it received, low then high, as floats to
// out[l * 8 + 2 j] and out[l * 8 + 2 j + 1] (zeros past the matrix count). Modes 0, 1, 2: x1, x2,
// x4; modes 3, 4, 5: x1, x2, x4 with trans.
// contract: src[p.len * 4]; rows[WARP]; out[WARP * 8]; p.mode <= 5; p.len >= 1; shared(p.len * 16)
extern "C" __global__ void __launch_bounds__(WARP)
    ldmatrix_rows(const MapParams p, const int* __restrict__ src, const int* __restrict__ rows,
                  float* __restrict__ out) {
    if (blockIdx.x != 0) return;  // the whole block
    DYNAMIC_SHARED(int, tile);
    const int lane = threadIdx.x;
    for (int r = lane; r < p.len; r += WARP) cp_async_16(tile + 4 * r, src + 4 * r);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    const int row = rows[lane];
    const int* address = tile + 4 * (row >= 0 && row < p.len ? row : 0);
    const bool trans = p.mode >= 3;
    unsigned r[4] = {0u, 0u, 0u, 0u};
    if (p.mode % 3 == 0) {
        unsigned x[1];
        if (trans) ldmatrix_x1_trans(x, address);
        else ldmatrix_x1(x, address);
        r[0] = x[0];
    } else if (p.mode % 3 == 1) {
        unsigned x[2];
        if (trans) ldmatrix_x2_trans(x, address);
        else ldmatrix_x2(x, address);
        r[0] = x[0];
        r[1] = x[1];
    } else if (trans) {
        ldmatrix_x4_trans(r, address);
    } else {
        ldmatrix_x4(r, address);
    }
    for (int j = 0; j < 4; ++j) {
        out[lane * 8 + 2 * j] = bf16_lo(r[j]);
        out[lane * 8 + 2 * j + 1] = bf16_hi(r[j]);
    }
}

// The tile of D at (row0, col0) = c there, for the lanes' accumulator registers.
__device__ __forceinline__ void load_accumulators(float (&acc)[4], const float* __restrict__ c, int row0,
                                                  int col0, int n) {
    const int g = threadIdx.x >> 2, t = threadIdx.x % 4;
    for (int i = 0; i < 4; ++i) acc[i] = c[(row0 + g + 8 * (i / 2)) * n + col0 + 2 * t + i % 2];
}

__device__ __forceinline__ void store_accumulators(const float (&acc)[4], float* __restrict__ d, int row0,
                                                   int col0, int n) {
    const int g = threadIdx.x >> 2, t = threadIdx.x % 4;
    for (int i = 0; i < 4; ++i) d[(row0 + g + 8 * (i / 2)) * n + col0 + 2 * t + i % 2] = acc[i];
}

// Runs steps of a two-stage pipeline: load(step, stage) issues the copies of one step into shared
// stage words (a commit group per step); multiply(stage) runs once that step's copies have landed,
// while the next step's are in flight.
template <class Load, class Multiply>
__device__ __forceinline__ void pipelined(int steps, int* stages, Load load, Multiply multiply) {
    if (steps > 0) load(0, stages);
    for (int step = 0; step < steps; ++step) {
        if (step + 1 < steps) {
            load(step + 1, stages + (step + 1) % 2 * STAGE_WORDS);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // every lane's copies for this step have landed
        multiply(stages + step % 2 * STAGE_WORDS);
        __syncthreads();  // the stage is read before a later step's copies overwrite it
    }
}

// D = A B + C with A [m, k], B [k, n], C and D [m, n], all f32 row-major: one 16 x 8 tile of D per
// block (a warp; grid m / 16 x n / 8), tf32 mma over k in steps of 8; the A tile comes by 16-byte
// cp.async, the B tile by 4-byte cp.async, the next step's in flight during a product.
// contract: a[p.m * p.k]; b[p.k * p.n]; c[p.m * p.n]; d[p.m * p.n]; p.m % 16 == 0; p.n % 8 == 0;
//   p.k % 8 == 0; p.a_row == p.k; p.a_col == 1; p.b_row == p.n; p.b_col == 1; shared(1536)
extern "C" __global__ void __launch_bounds__(WARP)
    mma_tf32_gemm(const GemmParams p, const float* __restrict__ a, const float* __restrict__ b,
                  const float* __restrict__ c, float* __restrict__ d) {
    const int row0 = blockIdx.x * 16, col0 = blockIdx.y * 8;
    if (row0 >= p.m || col0 >= p.n) return;  // the whole block
    DYNAMIC_SHARED(int, stages);
    const int lane = threadIdx.x, g = lane >> 2, t = lane % 4;
    float acc[4];
    load_accumulators(acc, c, row0, col0, p.n);
    const auto load = [&](int step, int* s) {
        const int k0 = step * 8, r = lane / 2, half = lane % 2;
        cp_async_16(s + r * 8 + half * 4, a + (row0 + r) * p.k + k0 + half * 4);
        for (int e = lane; e < 64; e += WARP) cp_async_4(s + 128 + e, b + (k0 + e / 8) * p.n + col0 + e % 8);
        cp_async_commit();
    };
    const auto multiply = [&](const int* s) {
        const float* f = reinterpret_cast<const float*>(s);
        const unsigned fa[4] = {to_tf32(f[g * 8 + t]), to_tf32(f[(g + 8) * 8 + t]), to_tf32(f[g * 8 + t + 4]),
                                to_tf32(f[(g + 8) * 8 + t + 4])};
        const unsigned fb[2] = {to_tf32(f[128 + t * 8 + g]), to_tf32(f[128 + (t + 4) * 8 + g])};
        const float sum[4] = {acc[0], acc[1], acc[2], acc[3]};
        mma_tf32_m16n8k8(acc, fa, fb, sum);
    };
    pipelined(p.k / 8, stages, load, multiply);
    store_accumulators(acc, d, row0, col0, p.n);
}

// mma_tf32_gemm with bf16 A and B, two to a word (the lower column in the low half): A [m, k] as
// m * k / 2 words and B [k, n] as k * n / 2 words, row-major; bf16 mma over k in steps of 16 with
// A's fragments read by ldmatrix x4 and B's by ldmatrix x2 trans, both tiles by 16-byte cp.async.
// contract: a[p.m * p.k / 2]; b[p.k * p.n / 2]; c[p.m * p.n]; d[p.m * p.n]; p.m % 16 == 0;
//   p.n % 8 == 0; p.k % 16 == 0; p.a_row == p.k; p.a_col == 1; p.b_row == p.n; p.b_col == 1;
//   shared(1536)
extern "C" __global__ void __launch_bounds__(WARP)
    mma_bf16_gemm(const GemmParams p, const int* __restrict__ a, const int* __restrict__ b,
                  const float* __restrict__ c, float* __restrict__ d) {
    const int row0 = blockIdx.x * 16, col0 = blockIdx.y * 8;
    if (row0 >= p.m || col0 >= p.n) return;  // the whole block
    DYNAMIC_SHARED(int, stages);
    const int lane = threadIdx.x;
    float acc[4];
    load_accumulators(acc, c, row0, col0, p.n);
    const auto load = [&](int step, int* s) {
        const int k0 = step * 16, r = lane / 2, half = lane % 2;
        cp_async_16(s + r * 8 + half * 4, a + ((row0 + r) * p.k + k0) / 2 + half * 4);
        if (lane < 16) cp_async_16(s + 128 + lane * 4, b + ((k0 + lane) * p.n + col0) / 2);
        cp_async_commit();
    };
    const auto multiply = [&](const int* s) {
        // A's matrix j = lane / 8: rows 8 (j % 2) + lane % 8, columns 8 (j / 2) onwards; B's
        // matrix lane / 8 % 2: row lane % 16 of the [16 x 8] tile.
        const int j = lane / 8;
        unsigned fa[4], fb[2];
        ldmatrix_x4(fa, s + (lane % 8 + 8 * (j % 2)) * 8 + (j / 2) * 4);
        ldmatrix_x2_trans(fb, s + 128 + lane % 16 * 4);
        const float sum[4] = {acc[0], acc[1], acc[2], acc[3]};
        mma_bf16_m16n8k16(acc, fa, fb, sum);
    };
    pipelined(p.k / 16, stages, load, multiply);
    store_accumulators(acc, d, row0, col0, p.n);
}
