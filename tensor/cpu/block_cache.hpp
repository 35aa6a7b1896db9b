#pragma once
// Freed host blocks kept for reuse by the CPU allocator. The C library hands blocks above its
// mmap threshold (128 KiB at first) back to the kernel, and trims the top of its heap when a
// block there is freed, so without this every large temporary of a training step would be
// page-faulted and zero-filled again (5% of an MNIST conv step while blocks of 128 KiB to 1 MiB
// were left to it). Training allocates the same sizes every step, so blocks are matched by
// (rounded) size.
#include <cstddef>
#include <list>
#include <map>
#include <mutex>

namespace ds::cpu {

class LargeBlockCache {
 public:
  static constexpr std::size_t kMinBlock = std::size_t{1} << 17;
  static constexpr std::size_t kGranule = std::size_t{1} << 12;

  explicit LargeBlockCache(std::size_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {}

  // A cached block of exactly `bytes`, or nullptr.
  void* take(std::size_t bytes);
  // Keeps a block that std::free releases (from aligned_alloc, posix_memalign) for reuse. Beyond
  // the limit the blocks given longest ago are freed first: sizes that never come back (decoded
  // images of many sizes) must not hold the cache against the sizes every training step asks for.
  void give(void* block, std::size_t bytes);
  std::size_t cached_bytes() const;

 private:
  struct Cached {
    std::size_t bytes;
    void* block;
  };
  using Age = std::list<Cached>::iterator;
  void forget(std::multimap<std::size_t, Age>::iterator entry);

  const std::size_t max_cached_bytes_;
  mutable std::mutex mutex_;
  std::list<Cached> by_age_;  // oldest first
  std::multimap<std::size_t, Age> by_size_;
  std::size_t cached_bytes_ = 0;
};

}  // namespace ds::cpu
