// One SGD step with momentum, as PyTorch's torch.optim.SGD with dampening 0 (src/optim.rs).
#include "common.cuh"

// d = g + weight_decay * p; with momentum m > 0: buf = d on the first step, m * buf + d after,
// then d = d + m * buf (Nesterov) or buf; finally p -= lr * d. buf is null when m = 0.
// contract: grad[s.len]; param[s.len]; buf[s.len]
extern "C" __global__ void __launch_bounds__(BLOCK)
    sgd_step(const SgdParams s, const float* __restrict__ grad, float* __restrict__ param, NULLABLE float* __restrict__ buf) {
    for (int i = global_thread(); i < s.len; i += grid_stride()) {
        const float p = param[i];
        if (!buf) {
            param[i] = p - s.lr * (grad[i] + s.weight_decay * p);
            continue;
        }
        float d = grad[i] + s.weight_decay * p;
        const float b = s.first ? d : s.momentum * buf[i] + d;
        buf[i] = b;
        d = s.nesterov ? d + s.momentum * b : b;
        param[i] = p - s.lr * d;
    }
}
