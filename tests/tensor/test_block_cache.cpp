// The CPU allocator's cache of freed blocks: exact-size reuse, and the oldest blocks freed first
// beyond its limit.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "tensor/cpu/block_cache.hpp"

using ds::cpu::LargeBlockCache;

namespace {

void* block(std::size_t bytes) { return std::aligned_alloc(64, bytes); }

}  // namespace

TEST_CASE("the block cache hands back a block of the same size only", "[tensor][allocator]") {
  LargeBlockCache cache(1024);
  CHECK(cache.take(128) == nullptr);
  void* a = block(128);
  cache.give(a, 128);
  CHECK(cache.cached_bytes() == 128);
  CHECK(cache.take(192) == nullptr);
  CHECK(cache.take(128) == a);
  CHECK(cache.take(128) == nullptr);
  CHECK(cache.cached_bytes() == 0);
  std::free(a);
}

TEST_CASE("the block cache frees the blocks given longest ago beyond its limit",
          "[tensor][allocator]") {
  LargeBlockCache cache(512);
  void* a = block(128);
  void* b = block(192);
  void* c = block(64);
  void* d = block(256);
  cache.give(a, 128);
  cache.give(b, 192);
  cache.give(c, 64);
  cache.give(d, 256);  // 640 bytes: a, the oldest, goes
  CHECK(cache.cached_bytes() == 512);
  CHECK(cache.take(128) == nullptr);
  CHECK(cache.take(192) == b);
  CHECK(cache.take(64) == c);
  CHECK(cache.take(256) == d);

  // Of two blocks of one size the older goes first, also after a take and a give reordered them.
  void* p = block(128);
  void* q = block(128);
  cache.give(p, 128);
  cache.give(q, 128);
  CHECK(cache.take(128) == p);
  cache.give(p, 128);  // q is now the oldest
  cache.give(d, 256);  // 512 bytes
  cache.give(c, 64);   // 576: q goes
  CHECK(cache.cached_bytes() == 448);
  CHECK(cache.take(128) == p);
  CHECK(cache.take(128) == nullptr);
  CHECK(cache.take(64) == c);
  CHECK(cache.take(256) == d);

  // A block over the limit is not kept.
  void* big = block(1024);
  cache.give(big, 1024);
  CHECK(cache.cached_bytes() == 0);
  CHECK(cache.take(1024) == nullptr);
  for (void* kept : {b, c, d, p}) std::free(kept);
}
