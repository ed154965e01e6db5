// Global average pooling over the pixels of [n, pixels, c] (src/ops/pool/) and 2x2 max pooling of
// [n, h, w, c] (src/ops/maxpool/).
#include "common.cuh"

// y[n, c] = sum_q x[n, q, c] / pixels. Grid (ceil(c / RED_C), n), block (RED_C, RED_R); the
// additions run in a fixed order. The partial sums live in dynamic shared memory (lanes[RED_R][RED_C + 1]).
// contract: x[p.n * p.pixels * p.c]; y[p.n * p.c]; shared(RED_R * (RED_C + 1) * 4)
extern "C" __global__ void __launch_bounds__(RED_C * RED_R)
    avg_pool_forward(const PoolParams p, const float* __restrict__ x, float* __restrict__ y) {
    DYNAMIC_SHARED(float, shared);
    float(*lanes)[RED_C + 1] = reinterpret_cast<float(*)[RED_C + 1]>(shared);
    const int c = blockIdx.x * RED_C + threadIdx.x, n = blockIdx.y;
    if (n >= p.n) return;  // the whole block
    float sum = 0.f;
    if (c < p.c)
        for (int q = threadIdx.y; q < p.pixels; q += RED_R) sum += x[(n * p.pixels + q) * p.c + c];
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < p.c) {
        float total = 0.f;
        for (int r = 0; r < RED_R; ++r) total += lanes[r][threadIdx.x];
        y[n * p.c + c] = total * (1.f / p.pixels);
    }
}

// dx[n, q, c] = dy[n, c] / pixels.
// contract: dy[p.n * p.c]; dx[p.n * p.pixels * p.c]
extern "C" __global__ void __launch_bounds__(BLOCK)
    avg_pool_backward(const PoolParams p, const float* __restrict__ dy, float* __restrict__ dx) {
    const float inv = 1.f / p.pixels;
    for (int i = global_thread(); i < p.n * p.pixels * p.c; i += grid_stride()) {
        const int n = i / (p.pixels * p.c), c = i % p.c;
        dx[i] = dy[n * p.c + c] * inv;
    }
}

// The first position of the largest value (a NaN wins) in the k x k window of output pixel (n, oh, ow)
// in channel ch, as the flat index of x; the window lies inside the image (no padding).
__device__ __forceinline__ int window_argmax(const WindowParams& p, const float* __restrict__ x, int n, int oh,
                                             int ow, int ch) {
    int best = ((n * p.h + oh * p.stride) * p.w + ow * p.stride) * p.c + ch;
    float top = x[best];
    for (int t = 1; t < p.k * p.k; ++t) {
        const int at = ((n * p.h + oh * p.stride + t / p.k) * p.w + ow * p.stride + t % p.k) * p.c + ch;
        const float v = x[at];
        if (v > top || (v != v && top == top)) {
            top = v;
            best = at;
        }
    }
    return best;
}

// y[n, oh, ow, ch] = the largest x in the window (src/ops/maxpool/).
// contract: x[p.n * p.h * p.w * p.c]; y[p.n * p.h_out * p.w_out * p.c]; p.k >= 1; p.pad == 0;
// (p.h_out - 1) * p.stride + p.k <= p.h; (p.w_out - 1) * p.stride + p.k <= p.w
extern "C" __global__ void __launch_bounds__(BLOCK)
    max_pool_forward(const WindowParams p, const float* __restrict__ x, float* __restrict__ y) {
    map_pixels(p.n, p.h_out, p.w_out, p.c, y,
               [&](const Pixel o) { return x[window_argmax(p, x, o.n, o.row, o.col, o.ch)]; });
}

// dx[n, ih, iw, ch] = dy of the window whose first maximum is this element, zero elsewhere; the
// windows do not overlap (stride = k), so each dx element is written once from one dy element.
// contract: x[p.n * p.h * p.w * p.c]; dy[p.n * p.h_out * p.w_out * p.c]; dx[p.n * p.h * p.w * p.c]; p.k >= 1;
// p.stride == p.k; p.pad == 0; p.h_out * p.k <= p.h; p.w_out * p.k <= p.w
extern "C" __global__ void __launch_bounds__(BLOCK)
    max_pool_backward(const WindowParams p, const float* __restrict__ x, const float* __restrict__ dy,
                      float* __restrict__ dx) {
    for (int i = global_thread(); i < p.n * p.h * p.w * p.c; i += grid_stride()) {
        const Pixel q = pixel_at(i, p.h, p.w, p.c);
        const int oh = q.row / p.k, ow = q.col / p.k;
        float g = 0.f;
        if (oh < p.h_out && ow < p.w_out && window_argmax(p, x, q.n, oh, ow, q.ch) == i)
            g = dy[((q.n * p.h_out + oh) * p.w_out + ow) * p.c + q.ch];
        dx[i] = g;
    }
}
