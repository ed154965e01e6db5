// 2-D convolution on tensor cores: the three products of kernels/conv2d.cu (same buffers, layouts
// and results up to rounding) as implicit GEMMs with mma.sync m16n8k8 TF32 (fp32 storage, each
// operand rounded by to_tf32, cvt.rna, when its fragment is read; fp32 accumulation).
//
// GEMM orientation, as in conv2d.cu (k = (kh * KW + kw) * C + c, the channel fastest):
//   forward         rows: output pixels (n, oh, ow)  columns: c_out  k: (tap, ci)
//   backward data   rows: input pixels (n, ih, iw)   columns: c_in   k: (tap, co)
//   backward weight rows: (tap, ci)                  columns: c_out  k: output pixels
//
// Block: 128 threads, four warps stacked in rows, each a 16 x BN warp tile (BN / 8 mmas per
// k-step of 8, one A fragment reused across them). Block tile BM = 64 rows by BN columns, BN
// chosen from the column count (tile_n_for: 16 for <= 16 channels, 32 for <= 32, else 64), so the
// ResNet-20 widths 16, 32 and 64 fill their tile exactly and a wider layer takes several column
// tiles; the kernel recomputes BN from the parameters the launcher saw. A pipeline stage holds
// BK = 16 of k (two mma k-steps); STAGES = 3 stages in dynamic shared memory, filled by cp.async
// with one commit group per stage and one barrier per stage (wait for the oldest, barrier, start
// the copy of the stage STAGES - 1 ahead into the slot everyone finished reading).
//
// k-loop indexing: the (tap, channel chunk) of the stage being loaded is block-uniform and
// advances incrementally (c0 += BK, then kw, then kh); a chunk past the channel count is zero
// filled, so any C works. Each loading thread keeps its rows' pixel coordinates from the tile's
// start (one division per row per tile) and never divides in the loop: forward adds the tap to
// (oh * s - pad, ow * s - pad); backward data keeps floor((ih + pad - kh) / s) and its remainder
// per row, stepped by one as kh or kw grows; backward weight walks its pixels BK at a time.
// Activations (A of forward and backward data) come by 16-byte cp.async when the channel count
// is a multiple of 4 and the buffer 16-byte aligned, else by 4-byte cp.async; weights and the
// backward weight's operands by 4-byte cp.async.
//
// Shared-memory tiles (words): A as [BM][BK + 4] (k contiguous) or, for the backward weight,
// [BK][BM + 8] (rows contiguous); B as [BK][BN + 8]. The pads make every fragment read of a warp
// hit 32 different banks and keep 16-byte rows aligned.
#include "common.cuh"
#include "tensor_core.cuh"

namespace tc_conv {

constexpr int THREADS = 128;
constexpr int BM = 64;
constexpr int BK = 16;
constexpr int STAGES = 3;
constexpr int A_LD = BK + 4;                    // A as [BM][A_LD]
constexpr int AT_LD = BM + 8;                   // A as [BK][AT_LD]
constexpr int A_WORDS = BM * A_LD;              // >= BK * AT_LD
constexpr int B_WORDS = BK * (64 + 8);          // B as [BK][BN + 8], BN <= 64
constexpr int STAGE_WORDS = A_WORDS + B_WORDS;  // 2432 words
// The dynamic shared memory of each kernel (the contracts' shared(29184)).
constexpr int SHARED_BYTES = STAGES * STAGE_WORDS * 4;
static_assert(SHARED_BYTES == 29184, "the contracts state the shared memory");
static_assert(BK * AT_LD <= A_WORDS, "the transposed A tile fits");

// The column tile for `columns` output columns (src/ops/conv2d/tensor_core.rs chooses the same).
__device__ __forceinline__ int tile_n_for(int columns) { return columns <= 16 ? 16 : columns <= 32 ? 32 : 64; }

__device__ __forceinline__ void zero4(float* dst) {
    dst[0] = 0.f;
    dst[1] = 0.f;
    dst[2] = 0.f;
    dst[3] = 0.f;
}

// Four consecutive channels c.. of the channel vector at src (null: outside the image) into dst:
// one 16-byte copy when vec (channels % 4 == 0, so the quad is whole or absent), else element by
// element; channels >= `channels` and absent pixels are zero filled.
__device__ __forceinline__ void copy_quad(float* dst, const float* src, int c, int channels, bool vec) {
    if (vec) {
        if (src && c < channels) cp_async_16(dst, src + c);
        else zero4(dst);
        return;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        if (src && c + j < channels) cp_async_4(dst + j, src + c + j);
        else dst[j] = 0.f;
    }
}

// Whether the block is the last of n blocks to arrive at *ticket (kernels/conv2d.cu's scheme:
// each block's writes visible to the device before its ticket; the last one resets the ticket).
__device__ __forceinline__ bool last_to_arrive(int* ticket, int n) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicInc(reinterpret_cast<unsigned*>(ticket), n - 1) == (unsigned)(n - 1);
    __syncthreads();
    if (last) __threadfence();
    return last;
}

// acc[j] (the warp's 16 x 8 tile j) += the block's A tile times B over `steps` stages, the
// loader filling stage slots in order (ld.load(a, b): the next stage's copies, then it advances).
// A_ROWS: A as [BM][A_LD]; else [BK][AT_LD].
template <int BN, bool A_ROWS, class Loader>
__device__ __forceinline__ void main_loop(float (&acc)[BN / 8][4], int steps, float* smem, Loader& ld) {
    constexpr int B_LD = BN + 8;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < steps) ld.load(smem + s * STAGE_WORDS, smem + s * STAGE_WORDS + A_WORDS);
        cp_async_commit();
    }
    const int lane = threadIdx.x % WARP, g = lane >> 2, t = lane & 3, row = threadIdx.x / WARP * 16 + g;
    int read = 0, write = STAGES - 1;  // stage slots
    for (int step = 0; step < steps; ++step) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // this stage has landed for every thread; the slot `write` is read
        if (step + STAGES - 1 < steps) ld.load(smem + write * STAGE_WORDS, smem + write * STAGE_WORDS + A_WORDS);
        cp_async_commit();
        const float* a = smem + read * STAGE_WORDS;
        const float* b = a + A_WORDS;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            unsigned fa[4];
            if (A_ROWS) {
                const float* r = a + row * A_LD + kk + t;
                fa[0] = to_tf32(r[0]);
                fa[1] = to_tf32(r[8 * A_LD]);
                fa[2] = to_tf32(r[4]);
                fa[3] = to_tf32(r[8 * A_LD + 4]);
            } else {
                const float* r = a + (kk + t) * AT_LD + row;
                fa[0] = to_tf32(r[0]);
                fa[1] = to_tf32(r[8]);
                fa[2] = to_tf32(r[4 * AT_LD]);
                fa[3] = to_tf32(r[4 * AT_LD + 8]);
            }
#pragma unroll
            for (int j = 0; j < BN / 8; ++j) {
                const float* c = b + (kk + t) * B_LD + j * 8 + g;
                const unsigned fb[2] = {to_tf32(c[0]), to_tf32(c[4 * B_LD])};
                const float sum[4] = {acc[j][0], acc[j][1], acc[j][2], acc[j][3]};
                mma_tf32_m16n8k8(acc[j], fa, fb, sum);
            }
        }
        read = read == STAGES - 1 ? 0 : read + 1;
        write = write == STAGES - 1 ? 0 : write + 1;
    }
}

// Calls f(value, row, col) for each accumulator of the thread in rows < m and columns < n of the
// block tile at (row0, col0): acc[j][i] is row warp * 16 + g + 8 (i / 2), column 8 j + 2 t + i % 2.
template <int BN, class F>
__device__ __forceinline__ void for_acc(const float (&acc)[BN / 8][4], int row0, int col0, int m, int n, F f) {
    const int lane = threadIdx.x % WARP, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = row0 + threadIdx.x / WARP * 16 + g + 8 * (i / 2);
        if (row >= m) continue;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const int col = col0 + 8 * j + 2 * t + i % 2;
            if (col < n) f(acc[j][i], row, col, j, i);
        }
    }
}

// The B tile of the forward and backward-data products: B(k, col) = w[col_base(col) + kc *
// k_stride + tap] for k = (tap, kc), kc < k_channels, col < cols; [BK][BN + 8]. Thread t loads
// column t % BN, rows t / BN + i * (THREADS / BN).
template <int BN>
struct WeightTile {
    const float* col_ptr;  // the thread's column's base, null past the columns
    int k_stride, k_channels, first_row;
    __device__ __forceinline__ void init(const float* w, int col, int cols, int col_stride, int k_stride_,
                                         int k_channels_) {
        col_ptr = col < cols ? w + col * col_stride : nullptr;
        k_stride = k_stride_;
        k_channels = k_channels_;
        first_row = threadIdx.x / BN;
    }
    __device__ __forceinline__ void load(float* b, int c0, int tap) const {
#pragma unroll
        for (int i = 0; i < BK * BN / THREADS; ++i) {
            const int r = first_row + i * (THREADS / BN), kc = c0 + r;
            float* dst = b + r * (BN + 8) + threadIdx.x % BN;
            if (col_ptr && kc < k_channels) cp_async_4(dst, col_ptr + kc * k_stride + tap);
            else *dst = 0.f;
        }
    }
};

// The block-uniform k position of the stage to load next: tap (kh, kw) and channel chunk c0 of
// `channels` channels.
struct TapCursor {
    int kh, kw, tap, c0;
    __device__ __forceinline__ void start() { kh = kw = tap = c0 = 0; }
    // Advances to the next chunk; returns 1 when kw moved, 2 when kw wrapped and kh moved, else 0.
    __device__ __forceinline__ int next(int channels, int kw_len) {
        c0 += BK;
        if (c0 < channels) return 0;
        c0 = 0;
        ++tap;
        if (++kw < kw_len) return 1;
        kw = 0;
        ++kh;
        return 2;
    }
};

// The forward tile: A rows are output pixels; thread t loads channel quad 4 (t % 4) of rows
// t / 4 and t / 4 + 32.
template <int BN>
struct ForwardLoader {
    const float* x;
    int ih0[2], iw0[2], base[2];  // per row: top-left input pixel, image offset; ih0 huge past M
    int quad, first_row, h, w, c_in, kw_len;
    bool vec;
    TapCursor k;
    WeightTile<BN> wt;
    __device__ __forceinline__ void load(float* a, float* b) {
        const int tap_off = (k.kh * w + k.kw) * c_in;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int ih = ih0[i] + k.kh, iw = iw0[i] + k.kw;
            const bool inside = (unsigned)ih < (unsigned)h && (unsigned)iw < (unsigned)w;
            copy_quad(a + (first_row + 32 * i) * A_LD + quad, inside ? x + (base[i] + tap_off) : nullptr, k.c0 + quad,
                      c_in, vec);
        }
        wt.load(b, k.c0, k.tap);
        k.next(c_in, kw_len);
    }
};

template <int BN>
__device__ __forceinline__ void forward_tile(const ConvParams& p, const float* __restrict__ x,
                                             const float* __restrict__ w, const float* __restrict__ bias,
                                             float* __restrict__ y, float* smem) {
    const int m = p.n * p.h_out * p.w_out, row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= m || col0 >= p.c_out) return;  // the whole block
    ForwardLoader<BN> ld;
    ld.x = x;
    ld.quad = 4 * (threadIdx.x % 4);
    ld.first_row = threadIdx.x / 4;
    ld.h = p.h;
    ld.w = p.w;
    ld.c_in = p.c_in;
    ld.kw_len = p.kw;
    ld.vec = p.c_in % 4 == 0 && reinterpret_cast<unsigned long long>(x) % 16 == 0;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int r = row0 + ld.first_row + 32 * i;
        const int ow = r % p.w_out, rest = r / p.w_out, oh = rest % p.h_out, n = rest / p.h_out;
        ld.ih0[i] = r < m ? oh * p.stride - p.pad : -(1 << 30);
        ld.iw0[i] = ow * p.stride - p.pad;
        ld.base[i] = r < m ? ((n * p.h + ld.ih0[i]) * p.w + ld.iw0[i]) * p.c_in : 0;
    }
    ld.k.start();
    const int taps = p.kh * p.kw;
    ld.wt.init(w, col0 + threadIdx.x % BN, p.c_out, p.c_in * taps, taps, p.c_in);
    float acc[BN / 8][4] = {};
    main_loop<BN, true>(acc, taps * tiles_of(p.c_in, BK), smem, ld);
    for_acc<BN>(acc, row0, col0, m, p.c_out, [&](float v, int row, int col, int, int) {
        y[row * p.c_out + col] = v + (bias ? __ldg(&bias[col]) : 0.f);
    });
}

// floor(v / s) and v mod s (in [0, s)) for v >= 0, stepped down by one without dividing.
struct QuotRem {
    int q, r;
    __device__ __forceinline__ void dec(int s) {
        if (r == 0) {
            r = s - 1;
            --q;
        } else {
            --r;
        }
    }
};

// The backward-data tile: A rows are input pixels (n, ih, iw), A(row, (tap, co)) = dy[n, oh, ow,
// co] where oh * s = ih + pad - kh and ow * s = iw + pad - kw exactly, else zero. Per row the
// quotients and remainders of ih + pad - kh and iw + pad - kw by s, stepped with the tap.
template <int BN>
struct DataLoader {
    const float* dy;
    QuotRem qh[2], qw[2], qw0[2];
    int base[2];  // image offset in dy
    int quad, first_row, h_out, w_out, c_out, kw_len, stride;
    bool vec;
    TapCursor k;
    WeightTile<BN> wt;
    __device__ __forceinline__ void load(float* a, float* b) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const bool hit = qh[i].r == 0 && qw[i].r == 0 && (unsigned)qh[i].q < (unsigned)h_out &&
                             (unsigned)qw[i].q < (unsigned)w_out;
            copy_quad(a + (first_row + 32 * i) * A_LD + quad,
                      hit ? dy + base[i] + (qh[i].q * w_out + qw[i].q) * c_out : nullptr, k.c0 + quad, c_out, vec);
        }
        wt.load(b, k.c0, k.tap);
        const int moved = k.next(c_out, kw_len);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            if (moved == 1) {
                qw[i].dec(stride);
            } else if (moved == 2) {
                qw[i] = qw0[i];
                qh[i].dec(stride);
            }
        }
    }
};

template <int BN>
__device__ __forceinline__ void data_tile(const ConvParams& p, const float* __restrict__ dy,
                                          const float* __restrict__ w, float* __restrict__ dx, float* smem) {
    const int m = p.n * p.h * p.w, row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= m || col0 >= p.c_in) return;  // the whole block
    DataLoader<BN> ld;
    ld.dy = dy;
    ld.quad = 4 * (threadIdx.x % 4);
    ld.first_row = threadIdx.x / 4;
    ld.h_out = p.h_out;
    ld.w_out = p.w_out;
    ld.c_out = p.c_out;
    ld.kw_len = p.kw;
    ld.stride = p.stride;
    ld.vec = p.c_out % 4 == 0 && reinterpret_cast<unsigned long long>(dy) % 16 == 0;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int r = row0 + ld.first_row + 32 * i;
        const int iw = r % p.w, rest = r / p.w, ih = rest % p.h, n = rest / p.h;
        const int sh = ih + p.pad, sw = iw + p.pad;
        // Past the rows: a quotient no tap brings into the image.
        ld.qh[i] = r < m ? QuotRem{sh / p.stride, sh % p.stride} : QuotRem{-(1 << 30), 0};
        ld.qw0[i] = QuotRem{sw / p.stride, sw % p.stride};
        ld.qw[i] = ld.qw0[i];
        ld.base[i] = n * p.h_out * p.w_out * p.c_out;
    }
    ld.k.start();
    const int taps = p.kh * p.kw;
    ld.wt.init(w, col0 + threadIdx.x % BN, p.c_in, taps, p.c_in * taps, p.c_out);
    float acc[BN / 8][4] = {};
    main_loop<BN, true>(acc, taps * tiles_of(p.c_out, BK), smem, ld);
    for_acc<BN>(acc, row0, col0, m, p.c_in, [&](float v, int row, int col, int, int) {
        float* out = &dx[row * p.c_in + col];
        *out = p.accumulate ? *out + v : v;
    });
}

// The backward-weight tile: A(k = pixel, row = (tap, ci)) = im2col as [BK][AT_LD], thread t
// loading rows quad 4 (t % 16) of pixels t / 16 and t / 16 + 8; B(pixel, co) = dy[pixel, co] as
// [BK][BN + 8], thread t column t % BN. Pixels run from `first` to `end`, BK per stage.
template <int BN>
struct WeightGradLoader {
    const float* x;
    const float* dy_col;                // dy + the thread's column, null past c_out
    int dh[4], dw[4], ci[4];            // per row of the quad: kh - pad, kw - pad, ci; dh huge past M
    int n[2], oh[2], ow[2], pixel[2];  // per A pixel row of the thread, stepped by BK
    int b_pixel;                        // the first B pixel row of the thread
    int quad, h, w, c_in, h_out, w_out, stride, end, c_out;
    bool vec;
    __device__ __forceinline__ void load(float* a, float* b) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float* dst = a + (threadIdx.x / 16 + 8 * i) * AT_LD + quad;
            const bool live = pixel[i] < end;
            const int ih = oh[i] * stride, iw = ow[i] * stride, img = n[i] * h;
            if (vec) {
                const int r = ih + dh[0], c = iw + dw[0];
                if (live && (unsigned)r < (unsigned)h && (unsigned)c < (unsigned)w)
                    cp_async_16(dst, x + ((img + r) * w + c) * c_in + ci[0]);
                else
                    zero4(dst);
            } else {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int r = ih + dh[j], c = iw + dw[j];
                    if (live && (unsigned)r < (unsigned)h && (unsigned)c < (unsigned)w)
                        cp_async_4(dst + j, x + ((img + r) * w + c) * c_in + ci[j]);
                    else
                        dst[j] = 0.f;
                }
            }
            pixel[i] += BK;
            ow[i] += BK;
            while (ow[i] >= w_out) {
                ow[i] -= w_out;
                if (++oh[i] == h_out) {
                    oh[i] = 0;
                    ++n[i];
                }
            }
        }
#pragma unroll
        for (int i = 0; i < BK * BN / THREADS; ++i) {
            const int r = threadIdx.x / BN + i * (THREADS / BN), px = b_pixel + r;
            float* dst = b + r * (BN + 8) + threadIdx.x % BN;
            if (dy_col && px < end) cp_async_4(dst, dy_col + px * c_out);
            else *dst = 0.f;
        }
        b_pixel += BK;
    }
};

// The weight-gradient tile (blockIdx.x, blockIdx.y) of slice blockIdx.z: rows (tap, ci), columns
// co, summed over the split_rows pixels of the slice; with one slice the block writes dw, else
// its product goes to partial[z][row][co], and the last block of the tile to take its ticket adds
// the slices in the order z = 0, 1, ... into dw (the same sum whichever block is last).
template <int BN>
__device__ __forceinline__ void weight_tile(const ConvParams& p, const float* __restrict__ x,
                                            const float* __restrict__ dy, float* __restrict__ partial,
                                            int* __restrict__ tickets, float* __restrict__ dw, float* smem) {
    const int taps = p.kh * p.kw, rows = taps * p.c_in, pixels = p.n * p.h_out * p.w_out;
    const int slices = min(tiles_of(pixels, p.split_rows), (int)gridDim.z);
    const int row0 = blockIdx.x * BM, col0 = blockIdx.y * BN, z = blockIdx.z, first = z * p.split_rows;
    if (row0 >= rows || col0 >= p.c_out || z >= slices) return;  // the whole block
    WeightGradLoader<BN> ld;
    ld.x = x;
    ld.quad = 4 * (threadIdx.x % 16);
    ld.h = p.h;
    ld.w = p.w;
    ld.c_in = p.c_in;
    ld.h_out = p.h_out;
    ld.w_out = p.w_out;
    ld.stride = p.stride;
    ld.c_out = p.c_out;
    ld.end = min(first + p.split_rows, pixels);
    ld.vec = p.c_in % 4 == 0 && reinterpret_cast<unsigned long long>(x) % 16 == 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int r = row0 + ld.quad + j, tap = r / p.c_in;
        ld.ci[j] = r % p.c_in;
        ld.dh[j] = r < rows ? tap / p.kw - p.pad : -(1 << 30);
        ld.dw[j] = tap % p.kw - p.pad;
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int px = first + threadIdx.x / 16 + 8 * i;
        ld.pixel[i] = px;
        ld.ow[i] = px % p.w_out;
        ld.oh[i] = px / p.w_out % p.h_out;
        ld.n[i] = px / (p.w_out * p.h_out);
    }
    const int col = col0 + threadIdx.x % BN;
    ld.dy_col = col < p.c_out ? dy + col : nullptr;
    ld.b_pixel = first;
    float acc[BN / 8][4] = {};
    main_loop<BN, false>(acc, tiles_of(ld.end - first, BK), smem, ld);
    const int total = rows * p.c_out;
    if (slices > 1) {
        for_acc<BN>(acc, row0, col0, rows, p.c_out,
                    [&](float v, int row, int co, int, int) { partial[z * total + row * p.c_out + co] = v; });
        const int tiles_m = tiles_of(rows, BM);
        if (!last_to_arrive(&tickets[blockIdx.y * tiles_m + blockIdx.x], slices)) return;  // the whole block
    }
    for_acc<BN>(acc, row0, col0, rows, p.c_out, [&](float v, int row, int co, int, int) {
        float sum = 0.f;  // the slices in order, this block's own from its registers
        for (int s = 0; s < slices; ++s) sum += s == z ? v : __ldcg(&partial[s * total + row * p.c_out + co]);
        const int tap = row / p.c_in;
        dw[(co * p.c_in + row - tap * p.c_in) * taps + tap] = sum;
    });
}

}  // namespace tc_conv

// y = conv(x, w) + bias (conv2d_forward's values, TF32 products): grid (ceil(M / 64), ceil(C_out
// / BN)), M = N * H_out * W_out, BN = 16, 32 or 64 for C_out <= 16, <= 32, else.
// contract: x[p.n * p.h * p.w * p.c_in]; w[p.c_out * p.c_in * p.kh * p.kw]; bias[p.c_out];
// y[p.n * p.h_out * p.w_out * p.c_out]; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_forward_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                        NULLABLE const float* __restrict__ bias, float* __restrict__ y) {
    DYNAMIC_SHARED(float, smem);
    switch (tc_conv::tile_n_for(p.c_out)) {
        case 16: tc_conv::forward_tile<16>(p, x, w, bias, y, smem); break;
        case 32: tc_conv::forward_tile<32>(p, x, w, bias, y, smem); break;
        default: tc_conv::forward_tile<64>(p, x, w, bias, y, smem); break;
    }
}

// dx = the data gradient of y = conv(x, w) (conv2d_backward_data's values, TF32 products), or dx
// += that with p.accumulate = 1: grid (ceil(N * H * W / 64), ceil(C_in / BN)), BN chosen from C_in
// as the forward's from C_out.
// contract: dy[p.n * p.h_out * p.w_out * p.c_out]; w[p.c_out * p.c_in * p.kh * p.kw];
// dx[p.n * p.h * p.w * p.c_in]; p.stride >= 1; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_data_tf32(const ConvParams p, const float* __restrict__ dy, const float* __restrict__ w,
                              float* __restrict__ dx) {
    DYNAMIC_SHARED(float, smem);
    switch (tc_conv::tile_n_for(p.c_in)) {
        case 16: tc_conv::data_tile<16>(p, dy, w, dx, smem); break;
        case 32: tc_conv::data_tile<32>(p, dy, w, dx, smem); break;
        default: tc_conv::data_tile<64>(p, dy, w, dx, smem); break;
    }
}

// dw = the weight gradient of y = conv(x, w) (conv2d_backward_weight's values, TF32 products):
// grid (ceil(KH * KW * C_in / 64), ceil(C_out / BN), slices), BN chosen from C_out; slice z sums
// the split_rows output pixels from z * split_rows, and the tiles' slices are added in order by
// the last block of each tile (tickets: one per tile, at most the contract's count, which is
// that of BN = 16).
// contract: x[p.n * p.h * p.w * p.c_in]; dy[p.n * p.h_out * p.w_out * p.c_out];
// partial[(p.n * p.h_out * p.w_out + p.split_rows - 1) / p.split_rows * p.c_out * p.kh * p.kw * p.c_in];
// tickets[(p.kh * p.kw * p.c_in + 63) / 64 * ((p.c_out + 15) / 16)];
// dw[p.c_out * p.c_in * p.kh * p.kw]; p.split_rows >= 1; shared(29184)
extern "C" __global__ void __launch_bounds__(128)
    conv2d_backward_weight_tf32(const ConvParams p, const float* __restrict__ x, const float* __restrict__ dy,
                                float* __restrict__ partial, int* __restrict__ tickets, float* __restrict__ dw) {
    DYNAMIC_SHARED(float, smem);
    switch (tc_conv::tile_n_for(p.c_out)) {
        case 16: tc_conv::weight_tile<16>(p, x, dy, partial, tickets, dw, smem); break;
        case 32: tc_conv::weight_tile<32>(p, x, dy, partial, tickets, dw, smem); break;
        default: tc_conv::weight_tile<64>(p, x, dy, partial, tickets, dw, smem); break;
    }
}
