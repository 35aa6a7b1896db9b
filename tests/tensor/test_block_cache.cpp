// The CPU allocator's cache of freed blocks: exact-size reuse, and the oldest blocks freed first
// beyond its limit; large blocks aligned for huge pages.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>

#include "tensor/cpu/block_cache.hpp"
#include "tensor/tensor.hpp"

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

TEST_CASE("CPU tensors of 2 MiB or more start on a huge page's boundary", "[tensor][allocator]") {
  const auto address = [](const ds::Tensor& t) {
    return reinterpret_cast<std::uintptr_t>(t.data<float>());
  };
  for (const std::int64_t floats : {std::int64_t{1} << 19, (std::int64_t{1} << 21) + 7}) {
    INFO(floats << " floats");
    const ds::Tensor large = ds::Tensor::empty({floats}, ds::DType::f32);
    CHECK(address(large) % (std::uintptr_t{1} << 21) == 0);
  }
  // Smaller ones keep the SIMD alignment only (no 2 MiB of address space for a 200 KiB block).
  const ds::Tensor small = ds::Tensor::empty({50000}, ds::DType::f32);
  CHECK(address(small) % 64 == 0);
}
