#include "cuda/block_cache.hpp"

#include <bit>
#include <exception>

namespace ds::cuda {

std::size_t BlockCache::size_class(std::size_t bytes) {
  constexpr std::size_t kGranule = 512;
  constexpr std::size_t kLarge = std::size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  if (bytes < kLarge) return (bytes + kGranule - 1) / kGranule * kGranule;
  const std::size_t step = std::bit_floor(bytes) / 4;
  return (bytes + step - 1) / step * step;
}

void* BlockCache::take(std::size_t bytes, std::size_t* class_bytes) {
  const std::size_t size = size_class(bytes);
  *class_bytes = size;
  std::lock_guard<std::mutex> lock(mutex_);
  if (const auto found = free_.find(size); found != free_.end()) {
    void* block = found->second;
    free_.erase(found);
    cached_ -= size;
    in_use_ += size;
    return block;
  }
  void* block = allocate_(size);
  if (!block && !free_.empty()) {
    release_cached_locked();
    block = allocate_(size);
  }
  if (!block) return nullptr;
  ++raw_allocations_;
  in_use_ += size;
  return block;
}

void BlockCache::give(void* block, std::size_t class_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.emplace(class_bytes, block);
  in_use_ -= class_bytes;
  cached_ += class_bytes;
}

void BlockCache::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

void BlockCache::release_cached_locked() {
  // The blocks leave the cache before any is freed, and every one is freed before the first
  // error is rethrown: a failed cudaFree part-way must not leave freed blocks to be handed out
  // (or freed a second time) later.
  std::multimap<std::size_t, void*> blocks;
  blocks.swap(free_);
  cached_ = 0;
  std::exception_ptr first_error;
  for (const auto& [size, block] : blocks) {
    try {
      release_(block);
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
}

std::size_t BlockCache::in_use_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

std::size_t BlockCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

std::size_t BlockCache::raw_allocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return raw_allocations_;
}

}  // namespace ds::cuda
