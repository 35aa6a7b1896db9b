#include "cuda/allocator.hpp"

#include <array>

#include "cuda/runtime.hpp"
#include "tensor/error.hpp"

namespace ds::cuda {

namespace {

BlockCache make_cache(int device) {
  return BlockCache(
      [device](std::size_t bytes) -> void* {
        use_device(device);
        void* block = nullptr;
        const cudaError_t status = cudaMalloc(&block, bytes);
        if (status == cudaErrorMemoryAllocation) {
          cudaGetLastError();  // clear it: running out is reported by the caller, not sticky
          return nullptr;
        }
        check(status, "cudaMalloc");
        return block;
      },
      [device](void* block) {
        use_device(device);
        check(cudaFree(block), "cudaFree");
      });
}

}  // namespace

BlockCache& block_cache(int device) {
  // Never destroyed: tensors owned by static objects may be freed after main returns.
  static auto* caches = [] {
    auto* all = new std::array<BlockCache*, kMaxDevices>;
    for (int d = 0; d < kMaxDevices; ++d)
      (*all)[static_cast<std::size_t>(d)] = new BlockCache(make_cache(d));
    return all;
  }();
  if (device < 0 || device >= kMaxDevices)
    fail("cuda:", device, " is not a valid device index (0..", kMaxDevices - 1, ")");
  return *(*caches)[static_cast<std::size_t>(device)];
}

std::shared_ptr<void> allocate_on(int device, std::size_t nbytes) {
  BlockCache& cache = block_cache(device);
  std::size_t class_bytes = 0;
  void* block = cache.take(nbytes, &class_bytes);
  if (!block)
    fail("out of GPU memory on cuda:", device, " allocating ", nbytes, " bytes (",
         cache.in_use_bytes(), " bytes held by tensors)");
  return std::shared_ptr<void>(block,
                               [&cache, class_bytes](void* p) { cache.give(p, class_bytes); });
}

}  // namespace ds::cuda
