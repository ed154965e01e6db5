// Depthwise convolution, channels-last (src/ops/depthwise/): every channel ch convolved with its own
// k x k filter w[ch, 0, kh, kw], stride and zero padding pad. Mirrors src/ops/depthwise/cpu.rs.
#include "common.cuh"

// sum_t a[at(t)] * w[ch, t] over the k x k taps t = kh * k + kw of channel ch, added in order,
// leaving out the taps where at(t) is negative (outside the image).
template <class At>
__device__ __forceinline__ float tap_sum(const WindowParams& p, const float* __restrict__ a,
                                         const float* __restrict__ w, int ch, At at) {
    float acc = 0.f;
    for (int t = 0; t < p.k * p.k; ++t) {
        const int j = at(t);
        if (j >= 0) acc += a[j] * w[ch * p.k * p.k + t];
    }
    return acc;
}

// y[n, oh, ow, ch] = sum over the taps (kh, kw) inside the image of
// x[n, oh*s - pad + kh, ow*s - pad + kw, ch] * w[ch, kh, kw], the taps added in order.
// contract: x[p.n * p.h * p.w * p.c]; w[p.c * p.k * p.k]; y[p.n * p.h_out * p.w_out * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    depthwise_forward(const WindowParams p, const float* __restrict__ x, const float* __restrict__ w,
                      float* __restrict__ y) {
    map_pixels(p.n, p.h_out, p.w_out, p.c, y, [&](const Pixel o) {
        return tap_sum(p, x, w, o.ch, [&](int t) {
            const int ih = o.row * p.stride - p.pad + t / p.k, iw = o.col * p.stride - p.pad + t % p.k;
            return ih >= 0 && iw >= 0 && ih < p.h && iw < p.w ? ((o.n * p.h + ih) * p.w + iw) * p.c + o.ch : -1;
        });
    });
}

// dx[n, ih, iw, ch] = sum over the taps t and output pixels (oh, ow) that read this input pixel of
// dy[n, oh, ow, ch] * w[ch, t]: a gather, so every dx element is written once.
// contract: dy[p.n * p.h_out * p.w_out * p.c]; w[p.c * p.k * p.k]; dx[p.n * p.h * p.w * p.c]; p.stride >= 1
extern "C" __global__ void __launch_bounds__(BLOCK)
    depthwise_backward_data(const WindowParams p, const float* __restrict__ dy, const float* __restrict__ w,
                            float* __restrict__ dx) {
    map_pixels(p.n, p.h, p.w, p.c, dx, [&](const Pixel q) {
        return tap_sum(p, dy, w, q.ch, [&](int t) {
            const int sh = q.row + p.pad - t / p.k, sw = q.col + p.pad - t % p.k;
            if (sh < 0 || sw < 0 || sh % p.stride != 0 || sw % p.stride != 0) return -1;
            const int oh = sh / p.stride, ow = sw / p.stride;
            return oh < p.h_out && ow < p.w_out ? ((q.n * p.h_out + oh) * p.w_out + ow) * p.c + q.ch : -1;
        });
    });
}

// dw[ch, t] = sum over the output pixels m = (n, oh, ow) of dy[m, ch] * x[n, ih, iw, ch] at tap t.
// Grid (ceil(c / RED_C), k * k), block (RED_C, RED_R): lane r sums the pixels r, r + RED_R, ...,
// then the lanes are added in order.
// contract: x[p.n * p.h * p.w * p.c]; dy[p.n * p.h_out * p.w_out * p.c]; dw[p.c * p.k * p.k]
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    depthwise_backward_weight(const WindowParams p, const float* __restrict__ x, const float* __restrict__ dy,
                              float* __restrict__ dw) {
    __shared__ float lanes[RED_R][RED_C + 1];
    const int ch = blockIdx.x * RED_C + threadIdx.x, t = blockIdx.y;
    if (t >= p.k * p.k) return;  // the whole block
    const int kh = t / p.k, kw = t % p.k, pixels = p.n * p.h_out * p.w_out;
    float sum = 0.f;
    if (ch < p.c)
        for (int m = threadIdx.y; m < pixels; m += RED_R) {
            const int ow = m % p.w_out, oh = (m / p.w_out) % p.h_out, n = m / (p.w_out * p.h_out);
            const int ih = oh * p.stride - p.pad + kh, iw = ow * p.stride - p.pad + kw;
            if (ih >= 0 && iw >= 0 && ih < p.h && iw < p.w)
                sum += dy[m * p.c + ch] * x[((n * p.h + ih) * p.w + iw) * p.c + ch];
        }
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && ch < p.c) {
        float total = 0.f;
        for (int r = 0; r < RED_R; ++r) total += lanes[r][threadIdx.x];
        dw[ch * p.k * p.k + t] = total;
    }
}
