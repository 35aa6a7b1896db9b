#include "tensor/cpu/block_cache.hpp"

#include <cstdlib>
#include <vector>

namespace ds::cpu {

void LargeBlockCache::forget(std::multimap<std::size_t, Age>::iterator entry) {
  cached_bytes_ -= entry->first;
  by_age_.erase(entry->second);
  by_size_.erase(entry);
}

void* LargeBlockCache::take(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = by_size_.find(bytes);
  if (found == by_size_.end()) return nullptr;
  void* block = found->second->block;
  forget(found);
  return block;
}

void LargeBlockCache::give(void* block, std::size_t bytes) {
  std::vector<void*> evicted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes > max_cached_bytes_) {
      evicted.push_back(block);
    } else {
      while (cached_bytes_ + bytes > max_cached_bytes_) {
        // Blocks of one size sit in both containers in the order given (multimap inserts at
        // the end of equal keys), so the first of the oldest block's size is that block.
        evicted.push_back(by_age_.front().block);
        forget(by_size_.lower_bound(by_age_.front().bytes));
      }
      by_age_.push_back({bytes, block});
      by_size_.emplace(bytes, std::prev(by_age_.end()));
      cached_bytes_ += bytes;
    }
  }
  for (void* old : evicted) std::free(old);  // outside the lock: free may return memory
}

std::size_t LargeBlockCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

}  // namespace ds::cpu
