// Tensor-core building blocks for the kernel files that include this header after common.cuh:
// warp-wide matrix products (mma.sync), shared-memory fragment loads (ldmatrix), asynchronous
// global-to-shared copies (cp.async with commit and wait groups), and the operand conversions
// they need. On the device each is one inline PTX instruction (PTX ISA <= 9.0, sm_80 and newer);
// under the CPU emulation kernels/emu/tensor_core_emu.h defines the same functions, following
// the PTX ISA's fragment layouts, and IEKD_TENSOR_CORE_EMU, which hides the PTX here.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k8 / mma.m16n8k16"), with
// g = lane >> 2 and t = lane % 4, (row, column) of the element each register holds:
//   m16n8k8 tf32:  a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4);
//                  b0 (t, g), b1 (t + 4, g);
//   m16n8k16 bf16: a[0] (g, 2t..2t+1), a[1] (g + 8, 2t..), a[2] (g, 2t+8..), a[3] (g + 8, 2t+8..);
//                  b[0] (2t..2t+1, g), b[1] (2t+8..2t+9, g), the lower column or row in the low
//                  16 bits;
//   both, c and d: c0, c1 (g, 2t + {0, 1}), c2, c3 (g + 8, 2t + {0, 1}).
// Every lane of the warp must call the warp-wide functions together (they are .sync.aligned).
#ifndef IEKD_TENSOR_CORE_CUH
#define IEKD_TENSOR_CORE_CUH

// The float whose bits are the bf16 in the low (bf16_lo) or high (bf16_hi) half of a bf16x2 word.
__device__ __forceinline__ float bf16_lo(unsigned w) { return __int_as_float(static_cast<int>(w << 16)); }
__device__ __forceinline__ float bf16_hi(unsigned w) { return __int_as_float(static_cast<int>(w & 0xffff0000u)); }

#ifndef IEKD_TENSOR_CORE_EMU

// x rounded to tf32 (10 mantissa bits, to nearest with ties away from zero), as the b32 operand
// of an mma (the low 13 bits zero).
__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// lo and hi rounded to bf16 (to nearest even) and packed, lo in the low 16 bits.
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// d = a * b + c for a 16 x 8 x 8 product with tf32 operands and f32 accumulators.
__device__ __forceinline__ void mma_tf32_m16n8k8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2],
                                                 const float (&c)[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %11, %12, %13};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
}

// d = a * b + c for a 16 x 8 x 16 product with bf16 operands and f32 accumulators.
__device__ __forceinline__ void mma_bf16_m16n8k16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2],
                                                  const float (&c)[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %11, %12, %13};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
}

// The 32-bit shared-memory address of a generic pointer into shared memory.
__device__ __forceinline__ unsigned shared_address(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// ldmatrix: 8 x 8 matrices of 16-bit elements from shared memory. Lane 8j + r passes the address
// of row r of matrix j (16-byte aligned; lanes past the x count pass any address); register j of
// lane i receives row i / 4, elements 2 (i % 4) and 2 (i % 4) + 1 of matrix j (with trans, of its
// transpose), the lower element in the low 16 bits.
__device__ __forceinline__ void ldmatrix_x1(unsigned (&r)[1], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2(unsigned (&r)[2], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(unsigned (&r)[1], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];"
                 : "=r"(r[0])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(unsigned (&r)[2], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
}

// cp.async: starts a copy from global to shared memory that the calling thread's later
// cp_async_commit puts in a group; both addresses aligned to the size. 16 bytes bypass L1 (.cg).
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(shared_address(smem)), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_4(void* smem, const void* gmem) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(shared_address(smem)), "l"(gmem) : "memory");
}

// v = the four floats at src (global memory, 16-byte aligned, read-only for the kernel's life).
__device__ __forceinline__ void load_f32x4(float (&v)[4], const float* src) {
    asm volatile("ld.global.nc.v4.f32 {%0, %1, %2, %3}, [%4];"
                 : "=f"(v[0]), "=f"(v[1]), "=f"(v[2]), "=f"(v[3])
                 : "l"(src));
}

// Stores lo and hi to the 8 bytes at smem (shared memory, 8-byte aligned), lo first.
__device__ __forceinline__ void store_b32x2(void* smem, unsigned lo, unsigned hi) {
    asm volatile("st.shared.v2.b32 [%0], {%1, %2};" ::"r"(shared_address(smem)), "r"(lo), "r"(hi) : "memory");
}

// Closes the calling thread's copies started since the last commit into one group.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Waits until at most N of the calling thread's committed groups are still in flight (the newest
// N); other threads see the data after a barrier.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

#endif  // IEKD_TENSOR_CORE_EMU

#endif
