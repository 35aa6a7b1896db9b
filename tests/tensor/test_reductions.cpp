// Reductions over several dims, keepdim, and argmax/argmin indexing.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"

using namespace ds;
using ds::testing::MessageContains;

namespace {

// x[i][j][k] = 12 i + 4 j + k
Tensor cube() { return Tensor::arange(0, 24).reshape({2, 3, 4}); }

}  // namespace

TEST_CASE("sum over every dim gives a 0-d tensor", "[tensor][reduce]") {
  const Tensor s = ds::sum(cube());
  CHECK(s.dim() == 0);
  CHECK(s.item() == 276);
  CHECK(cube().sum().item() == 276);
  CHECK(cube().mean().item() == 11.5);
}

TEST_CASE("sum and mean over several dims, with and without keepdim", "[tensor][reduce]") {
  const Tensor s = ds::sum(cube(), {0, 2});
  CHECK(s.shape() == Shape{3});
  CHECK(s.to_vector<float>() == std::vector<float>{60, 92, 124});

  const Tensor kept = cube().sum({0, 2}, true);
  CHECK(kept.shape() == Shape{1, 3, 1});
  CHECK(kept.to_vector<float>() == std::vector<float>{60, 92, 124});

  CHECK(ds::mean(cube(), {2, 0}).to_vector<float>() == std::vector<float>{7.5, 11.5, 15.5});
  const Tensor last = cube().sum({-1});
  CHECK(last.shape() == Shape{2, 3});
  CHECK(last.to_vector<float>() == std::vector<float>{6, 22, 38, 54, 70, 86});
  CHECK(cube().mean({1}, true).shape() == Shape{2, 1, 4});
}

TEST_CASE("max and min over several dims", "[tensor][reduce]") {
  const Tensor x = cube() * -1.0 + 5.0;  // 5 - (12 i + 4 j + k)
  CHECK(ds::max(x).item() == 5);
  CHECK(ds::min(x).item() == -18);
  CHECK(ds::max(x, {0, 2}).to_vector<float>() == std::vector<float>{5, 1, -3});
  CHECK(ds::min(x, {0, 2}, true).shape() == Shape{1, 3, 1});
  CHECK(ds::min(x, {0, 2}, true).to_vector<float>() == std::vector<float>{-10, -14, -18});
  CHECK(ds::max(x, {1}).to_vector<float>() == std::vector<float>{5, 4, 3, 2, -7, -8, -9, -10});
}

TEST_CASE("reductions read non-contiguous inputs in logical order", "[tensor][reduce]") {
  const Tensor t = cube().permute({2, 0, 1});  // t[k][i][j]
  CHECK(ds::sum(t, {1, 2}).to_vector<float>() == std::vector<float>{60, 66, 72, 78});
  CHECK(ds::max(t, {0}).to_vector<float>() == std::vector<float>{3, 7, 11, 15, 19, 23});
}

TEST_CASE("var uses Bessel's correction unless told otherwise", "[tensor][reduce]") {
  const Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
  const std::vector<double> unbiased = ds::var(x, {1}).to_vector<double>();
  REQUIRE(unbiased.size() == 2);
  CHECK(unbiased[0] == Approx(5.0 / 3.0));
  CHECK(unbiased[1] == Approx(20.0 / 3.0));
  CHECK(ds::var(x, {1}, false, 0).to_vector<double>() == std::vector<double>{1.25, 5});
  CHECK(ds::var(x, {1}, true).shape() == Shape{2, 1});
  CHECK(ds::var(x).item() == Approx(37.5 / 7));
}

TEST_CASE("sums of integer tensors count exactly", "[tensor][reduce]") {
  const Tensor labels = Tensor::from_vector<std::int32_t>({3, -1, 7, 100000}, {2, 2});
  CHECK(ds::sum(labels).item() == 100009);
  CHECK(ds::max(labels, {1}).to_vector<std::int32_t>() == std::vector<std::int32_t>{3, 100000});
}

TEST_CASE("argmax and argmin return i32 indices", "[tensor][reduce]") {
  const Tensor x = Tensor::from_vector<float>({1, 5, 2, 7, 0, 3}, {2, 3});
  const Tensor flat = argmax(x);
  CHECK(flat.dtype() == DType::i32);
  CHECK(flat.dim() == 0);
  CHECK(flat.item() == 3);
  CHECK(argmin(x).item() == 4);

  CHECK(argmax(x, 1).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 0});
  CHECK(argmax(x, 0).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 0, 1});
  CHECK(argmin(x, -1).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 1});
  const Tensor kept = argmax(x, 1, true);
  CHECK(kept.shape() == Shape{2, 1});
  CHECK(kept.to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 0});
  CHECK(argmax(x.t(), 1).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 0, 1});
}

TEST_CASE("argmax and argmin pick the first of tied values", "[tensor][reduce]") {
  CHECK(argmax(Tensor::from_vector<float>({3, 1, 3, 0}, {4})).item() == 0);
  CHECK(argmin(Tensor::from_vector<float>({2, 0, 5, 0}, {4})).item() == 1);
}

TEST_CASE("a sum of a comparison mask counts past 255", "[tensor][reduce]") {
  // Accuracy is counted this way; a u8 accumulator would wrap 300 to 44.
  const Tensor ones = Tensor::ones({300});
  CHECK(ds::sum(eq(ones, ones)).item() == 300);
}

TEST_CASE("argmax over class scores picks the predicted label", "[tensor][reduce]") {
  const Tensor logits =
      Tensor::from_vector<float>({0.1f, 0.7f, 0.2f, 0.9f, 0.05f, 0.05f, -1, -2, -0.5f}, {3, 3});
  const Tensor labels = Tensor::from_vector<std::int32_t>({1, 2, 2}, {3});
  const Tensor correct = eq(argmax(logits, 1), labels).to(DType::i32);
  CHECK(ds::sum(correct).item() == 2);
}

TEST_CASE("reducing a dim that does not exist names the op", "[tensor][reduce]") {
  CHECK_THROWS_MATCHES(ds::sum(cube(), {3}), Error, MessageContains({"sum"}));
  CHECK_THROWS_AS(argmax(cube(), -4), Error);
}

TEST_CASE("max over an empty dim is refused, naming the input's shape", "[tensor][reduce]") {
  CHECK_THROWS_MATCHES(ds::max(Tensor::zeros({0, 3}), {0}), Error,
                       MessageContains({"max", "[0, 3]"}));
  CHECK(ds::sum(Tensor::zeros({0, 3}), {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
}
