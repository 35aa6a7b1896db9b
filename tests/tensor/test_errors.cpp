// Dtype and shape errors name the op and the operands at fault.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"
#include "support/thread_count.hpp"

using namespace ds;
using ds::testing::MessageContains;

TEST_CASE("floating-only ops refuse integer tensors", "[tensor][errors]") {
  const Tensor labels = Tensor::zeros({3}, DType::i32);
  CHECK_THROWS_MATCHES(exp(labels), Error, MessageContains({"exp", "i32"}));
  CHECK_THROWS_MATCHES(log(Tensor::zeros({3}, DType::u8)), Error, MessageContains({"log", "u8"}));
  CHECK_THROWS_AS(sqrt(labels), Error);
  CHECK_THROWS_AS(softmax(labels, 0), Error);
}

TEST_CASE("mixed dtypes are refused, naming both", "[tensor][errors]") {
  const Tensor a = Tensor::zeros({2}, DType::f32);
  const Tensor b = Tensor::zeros({2}, DType::f64);
  CHECK_THROWS_MATCHES(add(a, b), Error, MessageContains({"add", "f32", "f64"}));
  CHECK_THROWS_MATCHES(a * Tensor::zeros({2}, DType::i32), Error,
                       MessageContains({"mul", "f32", "i32"}));
  CHECK_THROWS_AS(where(Tensor::ones({2}, DType::u8), a, b), Error);
}

TEST_CASE("requires_grad is refused on integer tensors", "[tensor][errors]") {
  Tensor labels = Tensor::zeros({3}, DType::i32);
  CHECK_THROWS_MATCHES(labels.requires_grad_(), Error, MessageContains({"i32"}));
  CHECK_FALSE(labels.requires_grad());
}

TEST_CASE("matmul multiplies matching shapes", "[tensor][errors][matmul]") {
  const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = Tensor::from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  const Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 2});
  CHECK(c.to_vector<float>() == std::vector<float>{4, 5, 10, 11});
  CHECK(a.matmul(a.t()).to_vector<float>() == std::vector<float>{14, 32, 32, 77});

  const Tensor v = Tensor::from_vector<float>({1, -1, 2}, {3});
  CHECK(matmul(a, v).to_vector<float>() == std::vector<float>{5, 11});
  CHECK(matmul(Tensor::from_vector<float>({1, 1}, {2}), a).to_vector<float>() ==
        std::vector<float>{5, 7, 9});
  CHECK(matmul(v, v).item() == 6);  // row times column: the dot product
  CHECK(matmul(a.t(), Tensor::from_vector<float>({1, 0, 0, 1}, {2, 2})).to_vector<float>() ==
        std::vector<float>{1, 4, 2, 5, 3, 6});

  // A 2-D right operand is shared by every matrix of the batch.
  const Tensor batch = Tensor::arange(0, 12).reshape({2, 2, 3});
  const Tensor batched = matmul(batch, b);
  CHECK(batched.shape() == Shape{2, 2, 2});
  CHECK(batched.to_vector<float>() == std::vector<float>{2, 3, 8, 9, 14, 15, 20, 21});
}

TEST_CASE("large products split over threads match a plain loop", "[tensor][matmul]") {
  // Above 2^22 multiply-adds the product is split over the threads along its longer side: here
  // along the columns (n < m) and along the rows (n > m and n = m), with transposed operands as
  // well. Each half of the square one packs blocks of at least 176 x 256 doubles whatever the
  // cache sizes, above Eigen's stack limit, so they come from the tensor allocator
  // (CachedBlocking in matmul.cpp).
  const test::ThreadCount two_threads(2);
  for (const auto& [n, m] :
       {std::pair<std::int64_t, std::int64_t>{8, 1030}, {1030, 8}, {512, 512}}) {
    const std::int64_t k = 600;
    const Tensor a = randn({n, k}, DType::f64);
    const Tensor b = randn({m, k}, DType::f64).t();  // a column-major operand
    const auto va = a.to_vector<double>();
    const auto vb = b.contiguous().to_vector<double>();
    const auto product = matmul(a, b).to_vector<double>();
    double worst = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < m; ++j) {
        double expected = 0;
        for (std::int64_t l = 0; l < k; ++l) expected += va[i * k + l] * vb[l * m + j];
        worst = std::max(worst, std::abs(product[i * m + j] - expected));
      }
    CHECK(worst < 1e-9);
  }
}

TEST_CASE("matmul shape errors name both shapes", "[tensor][errors][matmul]") {
  const Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_MATCHES(matmul(a, a), Error, MessageContains({"matmul", "[2, 3]"}));
  CHECK_THROWS_MATCHES(matmul(a, Tensor::zeros({4, 5})), Error,
                       MessageContains({"matmul", "[2, 3]", "[4, 5]"}));
  CHECK_THROWS_MATCHES(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 2})), Error,
                       MessageContains({"matmul", "[2, 2, 3]", "[3, 3, 2]"}));
  CHECK_THROWS_AS(matmul(a, Tensor::zeros({2})), Error);
  CHECK_THROWS_AS(matmul(a, Tensor::zeros({3, 2}, DType::f64)), Error);
}

TEST_CASE("element counts that overflow int64 are refused, naming the shape", "[tensor][errors]") {
  const Shape huge{std::int64_t{1} << 32, std::int64_t{1} << 32};
  CHECK_THROWS_MATCHES(numel_of(huge), Error, MessageContains({"[4294967296, 4294967296]"}));
  CHECK_THROWS_AS(contiguous_strides({3, std::int64_t{1} << 32, std::int64_t{1} << 32}), Error);
  CHECK_THROWS_AS(Tensor::empty(huge), Error);
  CHECK(numel_of({std::int64_t{1} << 31, std::int64_t{1} << 31}) == std::int64_t{1} << 62);
}
