// Elementwise and channel-selection kernels: activations (src/ops/activation.rs), arithmetic
// (src/ops/arith.rs), channel slice / gather and the option-A shortcut (src/ops/channels.rs), and
// the rounding of product operands (src/ops/precision/).
// All are grid-stride loops over the output, each element written once.
#include "common.cuh"

// y = x where x > 0, a * x elsewhere (ReLU when a = 0).
// contract: x[p.len]; y[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    leaky_relu_forward(const MapParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) {
        const float v = x[i];
        y[i] = v > 0.f ? v : p.a * v;
    }
}

// dx = dy where x > 0, a * dy elsewhere.
// contract: x[p.len]; dy[p.len]; dx[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    leaky_relu_backward(const MapParams p, const float* __restrict__ x, const float* __restrict__ dy,
                        float* __restrict__ dx) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) dx[i] = x[i] > 0.f ? dy[i] : p.a * dy[i];
}

// y = min(max(x, 0), a) (ReLU6 when a = 6); NaN stays NaN.
// contract: x[p.len]; y[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    clamp_forward(const MapParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) {
        const float v = x[i];
        y[i] = v < 0.f ? 0.f : (v > p.a ? p.a : v);
    }
}

// dx = dy where 0 < x < a, zero elsewhere.
// contract: x[p.len]; dy[p.len]; dx[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    clamp_backward(const MapParams p, const float* __restrict__ x, const float* __restrict__ dy,
                   float* __restrict__ dx) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) dx[i] = x[i] > 0.f && x[i] < p.a ? dy[i] : 0.f;
}

// y = a + b (mode 0) or a * b (mode 1).
// contract: a[p.len]; b[p.len]; y[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    binary_map(const MapParams p, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) y[i] = p.mode == 0 ? a[i] + b[i] : a[i] * b[i];
}

// y += x, in place (mode and a unused): a second gradient of a tensor added where the first is.
// contract: x[p.len]; y[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    add_into(const MapParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) y[i] += x[i];
}

// y = a * x.
// contract: x[p.len]; y[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    scale_values(const MapParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) y[i] = p.a * x[i];
}

// y[r, j] = x[r, start + j] for j < k.
// contract: x[p.rows * p.c]; y[p.rows * p.k]; p.start + p.k <= p.c
extern "C" __global__ void __launch_bounds__(BLOCK)
    slice_channels(const ChannelParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.rows * p.k; i += grid_stride()) {
        const int r = i / p.k, j = i % p.k;
        y[i] = x[r * p.c + p.start + j];
    }
}

// dx[r, ch] = dy[r, ch - start] inside [start, start + k), zero elsewhere.
// contract: dy[p.rows * p.k]; dx[p.rows * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    slice_channels_backward(const ChannelParams p, const float* __restrict__ dy, float* __restrict__ dx) {
    for (int i = global_thread(); i < p.rows * p.c; i += grid_stride()) {
        const int r = i / p.c, j = i % p.c - p.start;
        dx[i] = j >= 0 && j < p.k ? dy[r * p.k + j] : 0.f;
    }
}

// y[r, j] = x[r, index[j]] for j < k; NaN where index[j] is not a channel.
// contract: x[p.rows * p.c]; index[p.k]; y[p.rows * p.k]
extern "C" __global__ void __launch_bounds__(BLOCK)
    gather_channels(const ChannelParams p, const float* __restrict__ x, const int* __restrict__ index,
                    float* __restrict__ y) {
    for (int i = global_thread(); i < p.rows * p.k; i += grid_stride()) {
        const int r = i / p.k, j = i % p.k;
        const int ch = index[j];
        y[i] = ch >= 0 && ch < p.c ? x[r * p.c + ch] : quiet_nan();
    }
}

// dx[r, ch] = sum of dy[r, j] over the j with index[j] = ch, in increasing j (repeats add up).
// contract: dy[p.rows * p.k]; index[p.k]; dx[p.rows * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    scatter_add_channels(const ChannelParams p, const float* __restrict__ dy, const int* __restrict__ index,
                         float* __restrict__ dx) {
    for (int i = global_thread(); i < p.rows * p.c; i += grid_stride()) {
        const int r = i / p.c, ch = i % p.c;
        float sum = 0.f;
        for (int j = 0; j < p.k; ++j)
            if (index[j] == ch) sum += dy[r * p.k + j];
        dx[i] = sum;
    }
}

// y[n, i, j, pad + ch] = x[n, 2i, 2j, ch] with pad = (c_out - c) / 2, zero in the other channels.
// contract: x[p.n * p.h * p.w * p.c]; y[p.n * ((p.h + 1) / 2) * ((p.w + 1) / 2) * p.c_out]; p.c <= p.c_out
extern "C" __global__ void __launch_bounds__(BLOCK)
    shortcut_a_forward(const SubsampleParams p, const float* __restrict__ x, float* __restrict__ y) {
    const int ho = (p.h + 1) / 2, wo = (p.w + 1) / 2, pad = (p.c_out - p.c) / 2;
    for (int i = global_thread(); i < p.n * ho * wo * p.c_out; i += grid_stride()) {
        const int ch = i % p.c_out - pad, pixel = i / p.c_out;
        const int ow = pixel % wo, oh = (pixel / wo) % ho, n = pixel / (wo * ho);
        y[i] = ch >= 0 && ch < p.c ? x[((n * p.h + 2 * oh) * p.w + 2 * ow) * p.c + ch] : 0.f;
    }
}

// dx[n, 2i, 2j, ch] = dy[n, i, j, pad + ch], zero at odd rows and columns.
// contract: dy[p.n * ((p.h + 1) / 2) * ((p.w + 1) / 2) * p.c_out]; dx[p.n * p.h * p.w * p.c]; p.c <= p.c_out
extern "C" __global__ void __launch_bounds__(BLOCK)
    shortcut_a_backward(const SubsampleParams p, const float* __restrict__ dy, float* __restrict__ dx) {
    const int ho = (p.h + 1) / 2, wo = (p.w + 1) / 2, pad = (p.c_out - p.c) / 2;
    for (int i = global_thread(); i < p.n * p.h * p.w * p.c; i += grid_stride()) {
        const int ch = i % p.c, pixel = i / p.c;
        const int iw = pixel % p.w, ih = (pixel / p.w) % p.h, n = pixel / (p.w * p.h);
        const bool even = ih % 2 == 0 && iw % 2 == 0;
        dx[i] = even ? dy[((n * ho + ih / 2) * wo + iw / 2) * p.c_out + pad + ch] : 0.f;
    }
}

// y = x rounded to the operand format of a tensor-core product, kept in fp32 storage: TF32 (mode
// 1: 10 mantissa bits, to nearest with ties away from zero, as cvt.rna.tf32.f32) or bf16 (mode 2:
// 7 mantissa bits, to nearest with ties to even, as cvt.rn.bf16.f32); infinities and NaN unchanged.
// contract: x[p.len]; y[p.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    round_values(const MapParams p, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = global_thread(); i < p.len; i += grid_stride()) {
        unsigned u = __float_as_uint(x[i]);
        if ((u & 0x7f800000u) != 0x7f800000u) {
            if (p.mode == 1) u = (u + 0x1000u) & 0xffffe000u;
            if (p.mode == 2) u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        }
        y[i] = __uint_as_float(u);
    }
}
