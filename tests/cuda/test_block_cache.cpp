// The caching device allocator's bookkeeping, with a fake raw allocator (runs everywhere).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <utility>

#include "cuda/block_cache.hpp"

using ds::cuda::BlockCache;

namespace {

// Hands out host blocks up to a budget, as a device with `capacity` bytes would.
struct FakeDevice {
  std::size_t capacity;
  std::size_t used = 0;
  std::map<void*, std::size_t> live;

  void* allocate(std::size_t bytes) {
    if (used + bytes > capacity) return nullptr;
    used += bytes;
    void* p = std::malloc(bytes);
    live[p] = bytes;
    return p;
  }
  void release(void* p) {
    REQUIRE(live.count(p) == 1);
    used -= live[p];
    live.erase(p);
    std::free(p);
  }
  BlockCache cache() {
    return BlockCache([this](std::size_t bytes) { return allocate(bytes); },
                      [this](void* p) { release(p); });
  }
};

}  // namespace

TEST_CASE("size classes round up with bounded waste", "[cuda][allocator]") {
  REQUIRE(BlockCache::size_class(0) == 512);
  REQUIRE(BlockCache::size_class(1) == 512);
  REQUIRE(BlockCache::size_class(513) == 1024);
  REQUIRE(BlockCache::size_class(1 << 20) == 1 << 20);
  REQUIRE(BlockCache::size_class((1 << 20) + 1) == (1 << 20) + (1 << 18));
  for (std::size_t bytes : {std::size_t{3000000}, std::size_t{123456789}}) {
    const std::size_t size = BlockCache::size_class(bytes);
    REQUIRE(size >= bytes);
    REQUIRE(size < bytes + bytes / 4 + 1);
  }
}

TEST_CASE("freed blocks are reused for requests of their class", "[cuda][allocator]") {
  FakeDevice device{1 << 24, 0, {}};
  BlockCache cache = device.cache();
  std::size_t size = 0;
  void* first = cache.take(1000, &size);
  REQUIRE(size == 1024);
  REQUIRE(cache.in_use_bytes() == 1024);
  cache.give(first, size);
  REQUIRE(cache.in_use_bytes() == 0);
  REQUIRE(cache.cached_bytes() == 1024);
  void* second = cache.take(1020, &size);
  REQUIRE(second == first);
  REQUIRE(cache.raw_allocations() == 1);
  void* other = cache.take(5000, &size);  // another class: a fresh block
  REQUIRE(other != first);
  REQUIRE(cache.raw_allocations() == 2);
  cache.give(second, 1024);
  cache.give(other, size);
  cache.release_cached();
  REQUIRE(device.live.empty());
  REQUIRE(cache.cached_bytes() == 0);
}

TEST_CASE("a full device first gives back the cache, then reports failure", "[cuda][allocator]") {
  FakeDevice device{4096, 0, {}};
  BlockCache cache = device.cache();
  std::size_t size = 0;
  void* small = cache.take(3000, &size);
  cache.give(small, size);              // 3072 bytes cached
  void* big = cache.take(4000, &size);  // needs the cached bytes back
  REQUIRE(big != nullptr);
  REQUIRE(cache.cached_bytes() == 0);
  REQUIRE(cache.take(4000, &size) == nullptr);  // nothing left to give back
  cache.give(big, 4096);
  cache.release_cached();
  REQUIRE(device.live.empty());
}

TEST_CASE("a failed release still empties the cache and frees the other blocks",
          "[cuda][allocator]") {
  // A throwing cudaFree part-way through must not leave freed blocks in the cache, to be handed
  // out or freed again later.
  FakeDevice device{1 << 24, 0, {}};
  bool fail_next = false;
  BlockCache cache([&](std::size_t bytes) { return device.allocate(bytes); },
                   [&](void* p) {
                     device.release(p);
                     if (std::exchange(fail_next, false))
                       throw std::runtime_error("cudaFree failed");
                   });
  std::size_t size = 0;
  void* blocks[3];
  std::size_t sizes[3];
  for (int i = 0; i < 3; ++i) blocks[i] = cache.take(1000 * (i + 1), &sizes[i]);
  for (int i = 0; i < 3; ++i) cache.give(blocks[i], sizes[i]);
  fail_next = true;
  REQUIRE_THROWS_AS(cache.release_cached(), std::runtime_error);
  CHECK(cache.cached_bytes() == 0);
  CHECK(device.live.empty());
  void* fresh = cache.take(1000, &size);
  CHECK(cache.raw_allocations() == 4);  // a new block, not one already freed
  cache.give(fresh, size);
  cache.release_cached();
  CHECK(device.live.empty());
}
