// The tensor-core functions of kernels/tensor_core.cuh on the host (included by cuda_emu.h).
//
// The warp-wide ones (mma, ldmatrix) publish each lane's operands in its row of the block's lane
// words, meet at the warp's barrier, compute the calling lane's own result from every lane's
// operands by the PTX ISA's fragment layouts (listed in tensor_core.cuh), and meet again before
// the words are reused. They need whole warps of 32 threads, as on the device.
//
// Arithmetic: an mma reads only the tf32 bits of each 32-bit operand (the hardware ignores the low
// 13 mantissa bits; the emulation clears them, which changes nothing for operands made by
// to_tf32), and bf16 operands exactly. Every product of two tf32 or two bf16 values is exact in
// f32; the emulation adds them to c one k after another in f32. The hardware's order and internal
// precision of that sum are unspecified, so parity tolerances must allow a sum of k + 1 terms in
// another order.
//
// cp.async: a copy is recorded and made at the latest moment the PTX ISA allows, the wait_group
// that needs its group complete, so a kernel that reads its shared memory too early sees the old
// contents here too. Copies never waited for are dropped at the end of the block, whose shared
// memory they would have written. The shared address's alignment is checked; the global one is
// not, since host buffers are only aligned to their element.
#ifndef IEKD_TENSOR_CORE_EMU_H
#define IEKD_TENSOR_CORE_EMU_H

#include <cstdio>
#include <cstdlib>

#define IEKD_TENSOR_CORE_EMU

namespace emu {

// Stops the program: a warp-wide function called by a partial warp (a device would fault too).
[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "CUDA emulation: %s\n", what);
    std::abort();
}

// Calls f(lanes, lane) between two barriers of the calling warp once words (up to LANE_WORDS)
// is published in the calling lane's row; lanes[l] is lane l's row.
template <class F>
void warp_collective(const unsigned* words, unsigned count, F f) {
    const unsigned t = linear_thread(), first = t - t % 32;
    if (blockDim.x * blockDim.y * blockDim.z - first < 32) fail("a warp-wide tensor-core function needs 32 lanes");
    std::memcpy(current->lanes[t].data(), words, count * sizeof(unsigned));
    std::barrier<>& warp = *current->warps[t / 32];
    warp.arrive_and_wait();
    f(&current->lanes[first], t - first);
    warp.arrive_and_wait();
}

inline float bits_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline unsigned float_bits(float f) {
    unsigned u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// d = c + sum_k a(row, k) b(k, col) for the calling lane's accumulator elements, given every
// lane's rows of words (a at 0..3, b at 4..5, c at 6..9 as float bits) and the operand at
// (row, k) of a and (k, col) of b.
template <class A, class B>
void mma_lane(float (&d)[4], const LaneWords* lanes, unsigned lane, int k_len, A a_at, B b_at) {
    const unsigned g = lane >> 2, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
        const unsigned row = g + 8 * (i / 2), col = 2 * t + i % 2;
        float sum = bits_float(lanes[lane][6 + i]);
        for (int k = 0; k < k_len; ++k) sum += a_at(row, k) * b_at(k, col);
        d[i] = sum;
    }
}

// The publishing order of mma_lane: a, b, then c.
inline void mma_words(unsigned (&w)[10], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    for (int i = 0; i < 4; ++i) w[i] = a[i];
    for (int i = 0; i < 2; ++i) w[4 + i] = b[i];
    for (int i = 0; i < 4; ++i) w[6 + i] = float_bits(c[i]);
}

// Lane l's registers of ldmatrix: matrix j comes from the row addresses of lanes 8j..8j+7.
template <int X>
void ldmatrix_lane(unsigned (&r)[X], const LaneWords* lanes, unsigned lane, bool trans) {
    const auto row_at = [&](unsigned l) {
        const unsigned long long address = lanes[l][0] | static_cast<unsigned long long>(lanes[l][1]) << 32;
        if (address % 16 != 0) fail("ldmatrix row address not 16-byte aligned");
        return reinterpret_cast<const unsigned short*>(address);
    };
    const unsigned q = lane / 4, p = lane % 4;
    for (int j = 0; j < X; ++j) {
        unsigned short lo, hi;
        if (trans) {
            lo = row_at(8 * j + 2 * p)[q];
            hi = row_at(8 * j + 2 * p + 1)[q];
        } else {
            lo = row_at(8 * j + q)[2 * p];
            hi = row_at(8 * j + q)[2 * p + 1];
        }
        r[j] = lo | static_cast<unsigned>(hi) << 16;
    }
}

template <int X>
void ldmatrix(unsigned (&r)[X], const void* row, bool trans) {
    const unsigned long long address = reinterpret_cast<unsigned long long>(row);
    const unsigned words[2] = {static_cast<unsigned>(address), static_cast<unsigned>(address >> 32)};
    warp_collective(words, 2, [&](const LaneWords* lanes, unsigned lane) { ldmatrix_lane(r, lanes, lane, trans); });
}

// One recorded cp.async.
struct AsyncCopy {
    void* dst;
    const void* src;
    unsigned bytes;
};

// The calling thread's cp.async state: the copies since its last commit, and its committed
// groups, oldest first.
struct AsyncCopies {
    std::vector<AsyncCopy> open;
    std::vector<std::vector<AsyncCopy>> groups;
};

inline thread_local AsyncCopies async_copies;

inline void cp_async(void* smem, const void* gmem, unsigned bytes) {
    if (reinterpret_cast<unsigned long long>(smem) % bytes != 0) fail("cp.async to a misaligned shared address");
    async_copies.open.push_back({smem, gmem, bytes});
}

// Drops the calling thread's copies that no wait_group completed (the end of a block).
inline void end_block() {
    async_copies.open.clear();
    async_copies.groups.clear();
}

}  // namespace emu

inline unsigned to_tf32(float x) {
    const unsigned u = emu::float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return u | 0x00400000u;  // NaN stays NaN
    return (u + 0x1000u) & 0xffffe000u;                             // to nearest, ties away from zero
}

inline unsigned pack_bf16x2(float lo, float hi) {
    const auto round = [](float x) -> unsigned {
        const unsigned u = emu::float_bits(x);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x0040u;  // NaN stays NaN
        return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                     // to nearest even
    };
    return round(lo) | round(hi) << 16;
}

inline void mma_tf32_m16n8k8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    unsigned words[10];
    emu::mma_words(words, a, b, c);
    emu::warp_collective(words, 10, [&](const emu::LaneWords* lanes, unsigned lane) {
        const auto tf32 = [](unsigned u) { return emu::bits_float(u & 0xffffe000u); };
        // a: register 2 (k / 4) + row / 8 of lane 4 (row % 8) + k % 4; b: register k / 4 of lane
        // 4 col + k % 4.
        const auto a_at = [&](unsigned row, int k) {
            return tf32(lanes[4 * (row % 8) + k % 4][2 * (k / 4) + row / 8]);
        };
        const auto b_at = [&](int k, unsigned col) { return tf32(lanes[4 * col + k % 4][4 + k / 4]); };
        emu::mma_lane(d, lanes, lane, 8, a_at, b_at);
    });
}

inline void mma_bf16_m16n8k16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    unsigned words[10];
    emu::mma_words(words, a, b, c);
    emu::warp_collective(words, 10, [&](const emu::LaneWords* lanes, unsigned lane) {
        const auto half = [](unsigned w, int k) { return emu::bits_float(k % 2 ? w & 0xffff0000u : w << 16); };
        // a: register 2 (k / 8) + row / 8 of lane 4 (row % 8) + (k % 8) / 2; b: register k / 8
        // of lane 4 col + (k % 8) / 2; the odd k in the high half.
        const auto a_at = [&](unsigned row, int k) {
            return half(lanes[4 * (row % 8) + (k % 8) / 2][2 * (k / 8) + row / 8], k);
        };
        const auto b_at = [&](int k, unsigned col) { return half(lanes[4 * col + (k % 8) / 2][4 + k / 8], k); };
        emu::mma_lane(d, lanes, lane, 16, a_at, b_at);
    });
}

inline void ldmatrix_x1(unsigned (&r)[1], const void* row) { emu::ldmatrix(r, row, false); }
inline void ldmatrix_x2(unsigned (&r)[2], const void* row) { emu::ldmatrix(r, row, false); }
inline void ldmatrix_x4(unsigned (&r)[4], const void* row) { emu::ldmatrix(r, row, false); }
inline void ldmatrix_x1_trans(unsigned (&r)[1], const void* row) { emu::ldmatrix(r, row, true); }
inline void ldmatrix_x2_trans(unsigned (&r)[2], const void* row) { emu::ldmatrix(r, row, true); }
inline void ldmatrix_x4_trans(unsigned (&r)[4], const void* row) { emu::ldmatrix(r, row, true); }

inline void cp_async_16(void* smem, const void* gmem) { emu::cp_async(smem, gmem, 16); }
inline void cp_async_4(void* smem, const void* gmem) { emu::cp_async(smem, gmem, 4); }

inline void load_f32x4(float (&v)[4], const float* src) {
    for (int j = 0; j < 4; ++j) v[j] = src[j];
}

inline void store_b32x2(void* smem, unsigned lo, unsigned hi) {
    if (reinterpret_cast<unsigned long long>(smem) % 8 != 0) emu::fail("st.shared.v2.b32 to a misaligned address");
    const unsigned words[2] = {lo, hi};
    std::memcpy(smem, words, sizeof words);
}

inline void cp_async_commit() {
    emu::async_copies.groups.push_back(std::move(emu::async_copies.open));
    emu::async_copies.open.clear();
}

template <int N>
void cp_async_wait() {
    std::vector<std::vector<emu::AsyncCopy>>& groups = emu::async_copies.groups;
    while (groups.size() > static_cast<std::size_t>(N)) {
        for (const emu::AsyncCopy& c : groups.front()) std::memcpy(c.dst, c.src, c.bytes);
        groups.erase(groups.begin());
    }
}

#endif
