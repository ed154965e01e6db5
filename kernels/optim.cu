// One SGD step with momentum, as PyTorch's torch.optim.SGD with dampening 0 (src/optim.rs).
#include "common.cuh"

// For each tensor t < s.tensors, table[4t .. 4t+4) holds the addresses of its parameter, gradient
// and momentum buffer (0 when m = 0) and its length, written by the launcher from live buffers of
// that length (src/optim/launch.rs); blockIdx.y picks the tensor. Per element:
// d = g + weight_decay * p; with momentum m > 0: buf = d on the first step, m * buf + d after,
// then d = d + m * buf (Nesterov) or buf; finally p -= lr * d, with lr read from lr_at when given
// (so a replayed graph follows the schedule) else s.lr.
// contract: table[s.tensors * 4]; lr_at[1]
extern "C" __global__ void __launch_bounds__(BLOCK)
    sgd_step(const SgdParams s, const addr_t* __restrict__ table, NULLABLE const float* __restrict__ lr_at) {
    if ((int)blockIdx.y >= s.tensors) return;
    const addr_t* t = table + 4 * blockIdx.y;
    float* __restrict__ param = reinterpret_cast<float*>(t[0]);
    const float* __restrict__ grad = reinterpret_cast<const float*>(t[1]);
    float* __restrict__ buf = reinterpret_cast<float*>(t[2]);
    const long long len = (long long)t[3];
    const float lr = lr_at ? lr_at[0] : s.lr;
    for (long long i = global_thread(); i < len; i += grid_stride()) {
        const float p = param[i];
        if (!buf) {
            param[i] = p - lr * (grad[i] + s.weight_decay * p);
            continue;
        }
        float d = grad[i] + s.weight_decay * p;
        const float b = s.first ? d : s.momentum * buf[i] + d;
        buf[i] = b;
        d = s.nesterov ? d + s.momentum * b : b;
        param[i] = p - lr * d;
    }
}
