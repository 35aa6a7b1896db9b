// NumPy broadcasting of binary ops and its error messages.
#include <catch2/catch.hpp>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"

using namespace ds;
using ds::testing::MessageContains;

TEST_CASE("broadcast_shapes follows NumPy rules", "[tensor][broadcast]") {
  CHECK(broadcast_shapes({2, 3}, {}, "add") == Shape{2, 3});
  CHECK(broadcast_shapes({2, 1}, {1, 3}, "add") == Shape{2, 3});
  CHECK(broadcast_shapes({3}, {4, 2, 3}, "add") == Shape{4, 2, 3});
  CHECK(broadcast_shapes({4, 1, 2}, {3, 1}, "add") == Shape{4, 3, 2});
  CHECK(broadcast_shapes({0, 1}, {1, 5}, "add") == Shape{0, 5});
  CHECK_THROWS_MATCHES(broadcast_shapes({2, 3}, {4}, "frobnicate"), Error,
                       MessageContains({"frobnicate", "[2, 3]", "[4]"}));
}

TEST_CASE("a 0-d scalar broadcasts against any shape", "[tensor][broadcast]") {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  const Tensor s = Tensor::scalar(10);
  const Tensor sum = x + s;
  CHECK(sum.shape() == Shape{2, 2});
  CHECK(sum.to_vector<float>() == std::vector<float>{11, 12, 13, 14});
  CHECK((s - x).to_vector<float>() == std::vector<float>{9, 8, 7, 6});
  CHECK((s * s).dim() == 0);
}

TEST_CASE("size-1 dims stretch on both sides", "[tensor][broadcast]") {
  const Tensor column = Tensor::from_vector<float>({1, 2}, {2, 1});
  const Tensor row = Tensor::from_vector<float>({10, 20, 30}, {1, 3});
  const Tensor outer = column * row;
  CHECK(outer.shape() == Shape{2, 3});
  CHECK(outer.to_vector<float>() == std::vector<float>{10, 20, 30, 20, 40, 60});
}

TEST_CASE("missing leading dims are added", "[tensor][broadcast]") {
  const Tensor m = Tensor::arange(0, 6).reshape({2, 3});
  const Tensor v = Tensor::from_vector<float>({100, 200, 300}, {3});
  CHECK((m + v).to_vector<float>() == std::vector<float>{100, 201, 302, 103, 204, 305});
  CHECK((v - m).to_vector<float>() == std::vector<float>{100, 199, 298, 97, 196, 295});

  const Tensor a = Tensor::arange(0, 8).reshape({4, 1, 2});
  const Tensor b = Tensor::from_vector<float>({0, 10, 20}, {3, 1});
  const Tensor c = a + b;
  CHECK(c.shape() == Shape{4, 3, 2});
  // c[i][j][k] = a[i][0][k] + b[j][0]
  CHECK(c.select(0, 3).to_vector<float>() == std::vector<float>{6, 7, 16, 17, 26, 27});
}

TEST_CASE("broadcasting works on views with odd strides", "[tensor][broadcast]") {
  const Tensor m = Tensor::arange(0, 6).reshape({2, 3}).t();  // [3, 2]
  const Tensor v = Tensor::from_vector<float>({1, -1}, {2});
  CHECK((m * v).to_vector<float>() == std::vector<float>{0, -3, 1, -4, 2, -5});
}

TEST_CASE("comparisons and where broadcast too", "[tensor][broadcast]") {
  const Tensor m = Tensor::arange(0, 6).reshape({2, 3});
  const Tensor threshold = Tensor::from_vector<float>({1, 4}, {2, 1});
  const Tensor mask = gt(m, threshold);
  CHECK(mask.shape() == Shape{2, 3});
  CHECK(mask.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{0, 0, 1, 0, 0, 1});
  const Tensor picked = where(mask, m, Tensor::scalar(-1));
  CHECK(picked.to_vector<float>() == std::vector<float>{-1, -1, 2, -1, -1, 5});
}

TEST_CASE("incompatible shapes throw naming the op and both shapes", "[tensor][broadcast]") {
  const Tensor a = Tensor::zeros({2, 3});
  const Tensor b = Tensor::zeros({4});
  CHECK_THROWS_MATCHES(add(a, b), Error, MessageContains({"add", "[2, 3]", "[4]"}));
  CHECK_THROWS_MATCHES(mul(a, b), Error, MessageContains({"mul", "[2, 3]", "[4]"}));
  CHECK_THROWS_MATCHES(maximum(b, a), Error, MessageContains({"maximum", "[4]", "[2, 3]"}));
  CHECK_THROWS_MATCHES(lt(a, Tensor::zeros({3, 3})), Error,
                       MessageContains({"lt", "[2, 3]", "[3, 3]"}));
}
