// Flush-to-zero: set_flush_denormal on the calling thread and the OpenMP threads.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <vector>

#include "deepshift.hpp"
#include "support/thread_count.hpp"

using namespace ds;

namespace {

// 1e-20 * 1e-20 = 1e-40, below the smallest normal float (1.2e-38); volatile keeps the compiler
// from computing it.
float tiny_product() {
  volatile float a = 1e-20f, b = 1e-20f;
  return a * b;
}

// The product on the calling thread and on every thread of a two-thread team, and a tensor
// product large enough for the parallel elementwise loops.
std::vector<float> products_everywhere() {
  std::vector<float> products{-1.0f, -1.0f};
  int team = 0;
#pragma omp parallel num_threads(2)
  {
    products[static_cast<std::size_t>(omp_get_thread_num())] = tiny_product();
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
  }
  REQUIRE(team == 2);
  products.push_back(tiny_product());
  const Tensor x = Tensor::full({1 << 18}, 1e-20);
  const std::vector<float> squares = (x * x).to_vector<float>();
  products.push_back(*std::min_element(squares.begin(), squares.end()));
  products.push_back(*std::max_element(squares.begin(), squares.end()));
  return products;
}

}  // namespace

namespace {

// The mode the process had, back however the test ends.
class RestoreFlushMode {
 public:
  ~RestoreFlushMode() { set_flush_denormal(saved_); }

 private:
  bool saved_ = flush_denormal();
};

}  // namespace

TEST_CASE("set_flush_denormal flushes subnormal results on every thread and restores them",
          "[tensor]") {
  const test::ThreadCount two_threads(2);
  const RestoreFlushMode restore;
  // The threads exist before the mode changes (a thread started later inherits it).
  for (const float p : products_everywhere()) CHECK(p > 0.0f);
  if (!set_flush_denormal(true)) {
    WARN("no flush-to-zero mode on this CPU");
    return;
  }
  CHECK(flush_denormal());
  // The bits, not p == 0: with the mode on, a comparison takes a subnormal operand as 0 too.
  for (const float p : products_everywhere()) CHECK(std::bit_cast<std::uint32_t>(p) == 0);
  REQUIRE(set_flush_denormal(false));
  CHECK_FALSE(flush_denormal());
  for (const float p : products_everywhere()) {
    CHECK(p > 0.0f);
    CHECK(p < std::numeric_limits<float>::min());
  }
}
