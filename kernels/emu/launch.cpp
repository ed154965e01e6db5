// The entry point of the emulated kernels: iekd_emu_launch(name, grid, block, shared_bytes, args)
// runs the kernel called name over grid x block with that much dynamic shared memory and CUDA's
// kernelParams array. build.rs writes emu_kernels.inc: the #include of every kernel file and
// IEKD_KERNELS(X), which applies X to every kernel's name.
#include <cstring>

#include "cuda_emu.h"
#include "emu_kernels.inc"

namespace {

template <auto K>
void launch(dim3 grid, dim3 block, unsigned shared_bytes, void** args) {
    emu::run(K, grid, block, shared_bytes, args);
}

struct Entry {
    const char* name;
    void (*run)(dim3, dim3, unsigned, void**);
};

#define IEKD_ENTRY(name) {#name, launch<name>},
const Entry entries[] = {IEKD_KERNELS(IEKD_ENTRY)};

}  // namespace

// Returns 0 after running the kernel, -1 when no kernel has that name.
extern "C" int iekd_emu_launch(const char* name, const unsigned* grid, const unsigned* block, unsigned shared_bytes,
                               void** args) {
    for (const Entry& e : entries) {
        if (std::strcmp(e.name, name) == 0) {
            e.run(dim3(grid[0], grid[1], grid[2]), dim3(block[0], block[1], block[2]), shared_bytes, args);
            return 0;
        }
    }
    return -1;
}
