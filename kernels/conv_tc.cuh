// The structure shared by the tensor-core convolutions (kernels/conv2d_tf32.cu and
// kernels/conv2d_bf16.cu, which include this header after common.cuh and tensor_core.cuh): the
// three products of kernels/conv2d.cu (same buffers, layouts and results up to operand rounding)
// as implicit GEMMs, each file supplying its main loop (how a stage reaches shared memory and
// becomes mma fragments).
//
// GEMM orientation, as in conv2d.cu (k = (kh * KW + kw) * C + c, the channel fastest):
//   forward         rows: output pixels (n, oh, ow)  columns: c_out  k: (tap, ci)
//   backward data   rows: input pixels (n, ih, iw)   columns: c_in   k: (tap, co)
//   backward weight rows: (tap, ci)                  columns: c_out  k: output pixels
//
// Block: 128 threads, four warps stacked in rows, each a 16 x BN warp tile (BN / 8 mmas per
// k-step, one A fragment reused across them). Block tile BM = 64 rows by BN columns, BN chosen
// from the column count (tile_n_for: 16 for <= 16 channels, 32 for <= 32, else 64), so the
// ResNet-20 widths 16, 32 and 64 fill their tile exactly and a wider layer takes several column
// tiles; the kernel recomputes BN from the parameters the launcher saw. A stage holds BK = 16 of k.
//
// k-loop indexing: the (tap, channel chunk) of the stage being loaded is block-uniform and
// advances incrementally (c0 += BK, then kw, then kh); a chunk past the channel count is zero
// filled, so any C works. Each loading thread keeps its rows' pixel coordinates from the tile's
// start (one division per row per tile) and never divides in the loop: forward adds the tap to
// (oh * s - pad, ow * s - pad); backward data keeps floor((ih + pad - kh) / s) and its remainder
// per row, stepped by one as kh or kw grows; backward weight walks its pixels BK at a time.
//
// Loads: a loader names, per stage, the global source of each of the thread's slots and whether
// it is live (else the slot is a zero; a dead source is never read) to a stage sink that the main loop supplies (cp.async into fp32 tiles, or registers that
// are rounded to bf16 and stored after the stage's products):
//   A slot i < 2: four consecutive k of one row (sink.quad: one 16-byte source when the channel
//     count is a multiple of 4 and the buffer 16-byte aligned; else sink.elem, one each), at row
//     t / 4 + 32 i, k 4 (t % 4) of a [BM][BK] tile; for the backward weight four consecutive rows
//     (tap, ci) of one pixel, at k t / 16 + 8 i, row 4 (t % 16) of a [BK][BM] tile;
//   B slot i < BK * BN / 128: one element (sink.b) at k t / BN + i (128 / BN), column t % BN of a
//     [BK][BN] tile.
#ifndef IEKD_CONV_TC_CUH
#define IEKD_CONV_TC_CUH

namespace tc_conv {

constexpr int THREADS = 128;
constexpr int BM = 64;
constexpr int BK = 16;

// The column tile for `columns` output columns (src/ops/conv2d/tensor_core.rs chooses the same).
__device__ __forceinline__ int tile_n_for(int columns) { return columns <= 16 ? 16 : columns <= 32 ? 32 : 64; }

// The B slots of a thread: BK * BN / THREADS.
template <int BN>
constexpr int B_SLOTS = BK * BN / THREADS;

// Where a thread's slots land: A slot i at a_index(i) of a tile with rows of `a_ld` elements (k
// contiguous for the rows layout, rows contiguous for the transposed one); B slot i at b_index(i)
// of a [BK][b_ld] tile.
template <bool A_ROWS>
__device__ __forceinline__ int a_index(int i, int a_ld) {
    const int t = threadIdx.x;
    return A_ROWS ? (t / 4 + 32 * i) * a_ld + 4 * (t % 4) : (t / 16 + 8 * i) * a_ld + 4 * (t % 16);
}
template <int BN>
__device__ __forceinline__ int b_index(int i, int b_ld) {
    return (threadIdx.x / BN + i * (THREADS / BN)) * b_ld + threadIdx.x % BN;
}

// The four consecutive channels c.. of the channel vector at src (when `inside`, else zeros) into
// A slot i: one 16-byte source when vec (channels % 4 == 0, so the quad is whole or absent), else
// element by element; channels >= `channels` are zeros.
template <class Sink>
__device__ __forceinline__ void quad_of(Sink& s, int i, bool inside, const float* src, int c, int channels,
                                        bool vec) {
    if (vec) {
        s.quad(i, inside && c < channels, src + c);
        return;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) s.elem(i, j, inside && c + j < channels, src + c + j);
}

// Calls f(value, row, col) for each accumulator of the thread in rows < m and columns < n of the
// block tile at (row0, col0): acc[j][i] is row warp * 16 + g + 8 (i / 2), column 8 j + 2 t + i % 2
// (the c fragment of both m16n8k8 and m16n8k16).
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
            if (col < n) f(acc[j][i], row, col);
        }
    }
}

// The B tile of the forward and backward-data products: B(k, col) = w[col_base(col) + kc *
// k_stride + tap] for k = (tap, kc), kc < k_channels, col < cols.
template <int BN>
struct WeightTile {
    const float* col_ptr;  // the thread's column's base
    int k_stride, k_channels, first_row;
    bool live;  // the column is inside the product
    __device__ __forceinline__ void init(const float* w, int col, int cols, int col_stride, int k_stride_,
                                         int k_channels_) {
        live = col < cols;
        col_ptr = w + (live ? col * col_stride : 0);
        k_stride = k_stride_;
        k_channels = k_channels_;
        first_row = threadIdx.x / BN;
    }
    template <class Sink>
    __device__ __forceinline__ void load(Sink& s, int c0, int tap) const {
#pragma unroll
        for (int i = 0; i < B_SLOTS<BN>; ++i) {
            const int kc = c0 + first_row + i * (THREADS / BN);
            s.b(i, live && kc < k_channels, col_ptr + kc * k_stride + tap);
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

// The forward tile: A rows are output pixels, A slot i row t / 4 + 32 i.
template <int BN>
struct ForwardLoader {
    const float* x;
    int ih0[2], iw0[2], base[2];  // per row: top-left input pixel, image offset; ih0 huge past M
    int quad, h, w, c_in, kw_len;
    bool vec;
    TapCursor k;
    WeightTile<BN> wt;
    template <class Sink>
    __device__ __forceinline__ void load(Sink& s) {
        const int tap_off = (k.kh * w + k.kw) * c_in;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int ih = ih0[i] + k.kh, iw = iw0[i] + k.kw;
            const bool inside = (unsigned)ih < (unsigned)h && (unsigned)iw < (unsigned)w;
            quad_of(s, i, inside, x + (base[i] + tap_off), k.c0 + quad, c_in, vec);
        }
        wt.load(s, k.c0, k.tap);
        k.next(c_in, kw_len);
    }
};

// acc += the block's forward tile at (row0, col0) of conv(x, w) (M = N * H_out * W_out rows);
// Loop::run<BN, A_ROWS>(acc, steps, smem, loader) is the precision's main loop.
template <int BN, class Loop>
__device__ __forceinline__ void forward_product(const ConvParams& p, const float* __restrict__ x,
                                                const float* __restrict__ w, int row0, int col0,
                                                float (&acc)[BN / 8][4], unsigned char* smem) {
    const int m = p.n * p.h_out * p.w_out;
    ForwardLoader<BN> ld;
    ld.x = x;
    ld.quad = 4 * (threadIdx.x % 4);
    ld.h = p.h;
    ld.w = p.w;
    ld.c_in = p.c_in;
    ld.kw_len = p.kw;
    ld.vec = p.c_in % 4 == 0 && reinterpret_cast<unsigned long long>(x) % 16 == 0;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int r = row0 + threadIdx.x / 4 + 32 * i;
        const int ow = r % p.w_out, rest = r / p.w_out, oh = rest % p.h_out, n = rest / p.h_out;
        ld.ih0[i] = r < m ? oh * p.stride - p.pad : -(1 << 30);
        ld.iw0[i] = ow * p.stride - p.pad;
        ld.base[i] = r < m ? ((n * p.h + ld.ih0[i]) * p.w + ld.iw0[i]) * p.c_in : 0;
    }
    ld.k.start();
    const int taps = p.kh * p.kw;
    ld.wt.init(w, col0 + threadIdx.x % BN, p.c_out, p.c_in * taps, taps, p.c_in);
    Loop::template run<BN, true>(acc, taps * tiles_of(p.c_in, BK), smem, ld);
}

// y = conv(x, w) + bias over the block's tile.
template <int BN, class Loop>
__device__ __forceinline__ void forward_tile(const ConvParams& p, const float* __restrict__ x,
                                             const float* __restrict__ w, const float* __restrict__ bias,
                                             float* __restrict__ y, unsigned char* smem) {
    const int m = p.n * p.h_out * p.w_out, row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= m || col0 >= p.c_out) return;  // the whole block
    float acc[BN / 8][4] = {};
    forward_product<BN, Loop>(p, x, w, row0, col0, acc, smem);
    for_acc<BN>(acc, row0, col0, m, p.c_out,
                [&](float v, int row, int col) { y[row * p.c_out + col] = v + (bias ? __ldg(&bias[col]) : 0.f); });
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
    int quad, h_out, w_out, c_out, kw_len, stride;
    bool vec;
    TapCursor k;
    WeightTile<BN> wt;
    template <class Sink>
    __device__ __forceinline__ void load(Sink& s) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const bool hit = qh[i].r == 0 && qw[i].r == 0 && (unsigned)qh[i].q < (unsigned)h_out &&
                             (unsigned)qw[i].q < (unsigned)w_out;
            quad_of(s, i, hit, dy + base[i] + (qh[i].q * w_out + qw[i].q) * c_out, k.c0 + quad, c_out, vec);
        }
        wt.load(s, k.c0, k.tap);
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

// dx = the data gradient over tile (bx, by) (dx += it with p.accumulate).
template <int BN, class Loop>
__device__ __forceinline__ void data_tile(const ConvParams& p, const float* __restrict__ dy,
                                          const float* __restrict__ w, float* __restrict__ dx, unsigned char* smem,
                                          int bx, int by) {
    const int m = p.n * p.h * p.w, row0 = bx * BM, col0 = by * BN;
    if (row0 >= m || col0 >= p.c_in) return;  // the whole block
    DataLoader<BN> ld;
    ld.dy = dy;
    ld.quad = 4 * (threadIdx.x % 4);
    ld.h_out = p.h_out;
    ld.w_out = p.w_out;
    ld.c_out = p.c_out;
    ld.kw_len = p.kw;
    ld.stride = p.stride;
    ld.vec = p.c_out % 4 == 0 && reinterpret_cast<unsigned long long>(dy) % 16 == 0;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int r = row0 + threadIdx.x / 4 + 32 * i;
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
    Loop::template run<BN, true>(acc, taps * tiles_of(p.c_out, BK), smem, ld);
    for_acc<BN>(acc, row0, col0, m, p.c_in, [&](float v, int row, int col) {
        float* out = &dx[row * p.c_in + col];
        *out = p.accumulate ? *out + v : v;
    });
}

// The backward-weight tile: A(k = pixel, row = (tap, ci)) = im2col, A slot i the row quad 4 (t %
// 16) of pixel t / 16 + 8 i; B(pixel, co) = dy[pixel, co]. Pixels run from `first` to `end`, BK
// per stage.
template <int BN>
struct WeightGradLoader {
    const float* x;
    const float* dy_col;                // dy + the thread's column
    bool col_live;                      // the column is inside c_out
    int dh[4], dw[4], ci[4];            // per row of the quad: kh - pad, kw - pad, ci; dh huge past M
    int n[2], oh[2], ow[2], pixel[2];  // per A pixel row of the thread, stepped by BK
    int b_pixel;                        // the first B pixel row of the thread
    int h, w, c_in, h_out, w_out, stride, end, c_out;
    bool vec;
    template <class Sink>
    __device__ __forceinline__ void load(Sink& s) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const bool live = pixel[i] < end;
            const int ih = oh[i] * stride, iw = ow[i] * stride, img = n[i] * h;
            if (vec) {
                const int r = ih + dh[0], c = iw + dw[0];
                const bool in = live && (unsigned)r < (unsigned)h && (unsigned)c < (unsigned)w;
                s.quad(i, in, x + ((img + r) * w + c) * c_in + ci[0]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int r = ih + dh[j], c = iw + dw[j];
                    const bool in = live && (unsigned)r < (unsigned)h && (unsigned)c < (unsigned)w;
                    s.elem(i, j, in, x + ((img + r) * w + c) * c_in + ci[j]);
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
        for (int i = 0; i < B_SLOTS<BN>; ++i) {
            const int px = b_pixel + threadIdx.x / BN + i * (THREADS / BN);
            s.b(i, col_live && px < end, dy_col + px * c_out);
        }
        b_pixel += BK;
    }
};

// The weight-gradient tile (bx, by) of slice bz of a grid with grid_slices slices: rows (tap,
// ci), columns co, summed over the split_rows pixels of the slice; with one slice the block
// writes dw, else its product goes to partial[z][row][co], and the last block of the tile to take
// its ticket adds the slices in the order z = 0, 1, ... into dw (the same sum whichever block is
// last).
template <int BN, class Loop>
__device__ __forceinline__ void weight_tile(const ConvParams& p, const float* __restrict__ x,
                                            const float* __restrict__ dy, float* __restrict__ partial,
                                            int* __restrict__ tickets, float* __restrict__ dw, unsigned char* smem,
                                            int bx, int by, int bz, int grid_slices) {
    const int taps = p.kh * p.kw, rows = taps * p.c_in, pixels = p.n * p.h_out * p.w_out;
    const int slices = min(tiles_of(pixels, p.split_rows), grid_slices);
    const int row0 = bx * BM, col0 = by * BN, z = bz, first = z * p.split_rows;
    if (row0 >= rows || col0 >= p.c_out || z >= slices) return;  // the whole block
    WeightGradLoader<BN> ld;
    ld.x = x;
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
        const int r = row0 + 4 * (threadIdx.x % 16) + j, tap = r / p.c_in;
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
    ld.col_live = col < p.c_out;
    ld.dy_col = dy + (ld.col_live ? col : 0);
    ld.b_pixel = first;
    float acc[BN / 8][4] = {};
    Loop::template run<BN, false>(acc, tiles_of(ld.end - first, BK), smem, ld);
    const int total = rows * p.c_out;
    if (slices > 1) {
        for_acc<BN>(acc, row0, col0, rows, p.c_out,
                    [&](float v, int row, int co) { partial[z * total + row * p.c_out + co] = v; });
        const int tiles_m = tiles_of(rows, BM);
        if (!last_to_arrive(&tickets[by * tiles_m + bx], slices)) return;  // the whole block
    }
    for_acc<BN>(acc, row0, col0, rows, p.c_out, [&](float v, int row, int co) {
        float sum = 0.f;  // the slices in order, this block's own from its registers
        for (int s = 0; s < slices; ++s) sum += s == z ? v : __ldcg(&partial[s * total + row * p.c_out + co]);
        const int tap = row / p.c_in;
        dw[(co * p.c_in + row - tap * p.c_in) * taps + tap] = sum;
    });
}

// The three products for a column tile chosen at run time from `columns` (Loop: the main loop).
template <class Loop>
struct Products {
    __device__ static void forward(const ConvParams& p, const float* x, const float* w, const float* bias, float* y,
                                   unsigned char* smem) {
        switch (tile_n_for(p.c_out)) {
            case 16: forward_tile<16, Loop>(p, x, w, bias, y, smem); break;
            case 32: forward_tile<32, Loop>(p, x, w, bias, y, smem); break;
            default: forward_tile<64, Loop>(p, x, w, bias, y, smem); break;
        }
    }
    __device__ static void data(const ConvParams& p, const float* dy, const float* w, float* dx, unsigned char* smem,
                                int bx, int by) {
        switch (tile_n_for(p.c_in)) {
            case 16: data_tile<16, Loop>(p, dy, w, dx, smem, bx, by); break;
            case 32: data_tile<32, Loop>(p, dy, w, dx, smem, bx, by); break;
            default: data_tile<64, Loop>(p, dy, w, dx, smem, bx, by); break;
        }
    }
    __device__ static void weight(const ConvParams& p, const float* x, const float* dy, float* partial, int* tickets,
                                  float* dw, unsigned char* smem, int bx, int by, int bz, int grid_slices) {
        switch (tile_n_for(p.c_out)) {
            case 16: weight_tile<16, Loop>(p, x, dy, partial, tickets, dw, smem, bx, by, bz, grid_slices); break;
            case 32: weight_tile<32, Loop>(p, x, dy, partial, tickets, dw, smem, bx, by, bz, grid_slices); break;
            default: weight_tile<64, Loop>(p, x, dy, partial, tickets, dw, smem, bx, by, bz, grid_slices); break;
        }
    }
    // Both gradients in one one-dimensional grid: its first D = ceil(N * H * W / 64) * ceil(C_in /
    // BN_in) blocks are the data gradient's grid (x fastest), the rest the weight gradient's (x
    // fastest, then y, then the slice), as many slices as the rest holds whole.
    __device__ static void both(const ConvParams& p, const float* x, const float* dy, const float* w, float* dx,
                                float* partial, int* tickets, float* dw, unsigned char* smem) {
        const int data_m = tiles_of(p.n * p.h * p.w, BM);
        const int data_blocks = data_m * tiles_of(p.c_in, tile_n_for(p.c_in)), b = blockIdx.x;
        if (b < data_blocks) {
            data(p, dy, w, dx, smem, b % data_m, b / data_m);
            return;  // the whole block
        }
        const int wm = tiles_of(p.kh * p.kw * p.c_in, BM), per_slice = wm * tiles_of(p.c_out, tile_n_for(p.c_out));
        const int t = b - data_blocks, slices = ((int)gridDim.x - data_blocks) / per_slice;
        weight(p, x, dy, partial, tickets, dw, smem, t % wm, t % per_slice / wm, t / per_slice, slices);
    }
};

}  // namespace tc_conv

#endif
