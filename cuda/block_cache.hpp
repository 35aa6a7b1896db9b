#pragma once
// The bookkeeping of the caching device allocator, apart from the CUDA calls so that it can be
// tested on any machine. Training allocates the same sizes every step; rounding requests up to
// a few size classes per power of two lets a freed block serve the next request of its class
// without a cudaMalloc (which is slow and synchronises the device).
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>

namespace ds::cuda {

class BlockCache {
 public:
  using RawAllocate = std::function<void*(std::size_t)>;  // nullptr when out of memory
  using RawFree = std::function<void(void*)>;

  BlockCache(RawAllocate allocate, RawFree release)
      : allocate_(std::move(allocate)), release_(std::move(release)) {}

  // 512-byte granules below 1 MiB; above, four classes per power of two (waste under 25%).
  static std::size_t size_class(std::size_t bytes);

  // A block of at least `bytes`; its class size is written to *class_bytes. Cached blocks
  // are tried first; when the device is full the cache is emptied and the request retried.
  // Returns nullptr only when even that fails.
  void* take(std::size_t bytes, std::size_t* class_bytes);
  void give(void* block, std::size_t class_bytes);
  void release_cached();

  std::size_t in_use_bytes() const;
  std::size_t cached_bytes() const;
  std::size_t raw_allocations() const;

 private:
  void release_cached_locked();

  RawAllocate allocate_;
  RawFree release_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;
  std::size_t in_use_ = 0;
  std::size_t cached_ = 0;
  std::size_t raw_allocations_ = 0;
};

}  // namespace ds::cuda
