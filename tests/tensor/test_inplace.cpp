// In-place updates: values, broadcasting, version counting and the grad-mode guard.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"

using namespace ds;
using ds::testing::MessageContains;

namespace {

Tensor vec(std::vector<float> values) {
  const auto n = static_cast<std::int64_t>(values.size());
  return Tensor::from_vector<float>(values, {n});
}

}  // namespace

TEST_CASE("in-place arithmetic updates the tensor and returns it", "[tensor][inplace]") {
  const Tensor x = vec({1, 2, 3});
  const Tensor& same = x.add_(vec({10, 20, 30}), -0.5);
  CHECK(same.is_same(x));
  CHECK(x.to_vector<float>() == std::vector<float>{-4, -8, -12});
  x.add_(4);
  CHECK(x.to_vector<float>() == std::vector<float>{0, -4, -8});
  x.sub_(vec({1, 1, 1}));
  CHECK(x.to_vector<float>() == std::vector<float>{-1, -5, -9});
  x.mul_(vec({2, -1, 0.5}));
  CHECK(x.to_vector<float>() == std::vector<float>{-2, 5, -4.5});
  x.mul_(-2);
  CHECK(x.to_vector<float>() == std::vector<float>{4, -10, 9});
  x.div_(vec({8, 4, 3}));
  CHECK(x.to_vector<float>() == std::vector<float>{0.5, -2.5, 3});
  x.round_();
  CHECK(x.to_vector<float>() == std::vector<float>{0, -2, 3});
  x.zero_();
  CHECK(x.to_vector<float>() == std::vector<float>{0, 0, 0});
}

TEST_CASE("in-place ops broadcast the other operand", "[tensor][inplace]") {
  const Tensor m = Tensor::zeros({2, 3});
  m.add_(vec({1, 2, 3}));
  m.mul_(Tensor::from_vector<float>({1, -1}, {2, 1}));
  CHECK(m.to_vector<float>() == std::vector<float>{1, 2, 3, -1, -2, -3});
  // The result shape is fixed: the other operand may not grow it.
  CHECK_THROWS_AS(vec({1, 2, 3}).add_(Tensor::zeros({2, 3})), Error);
}

TEST_CASE("clamp_ with one bound leaves the other side alone", "[tensor][inplace]") {
  const Tensor x = vec({-3, -0.5, 0.5, 3});
  x.clamp_(std::nullopt, 1.0);
  CHECK(x.to_vector<float>() == std::vector<float>{-3, -0.5, 0.5, 1});
  x.clamp_(-1.0, std::nullopt);
  CHECK(x.to_vector<float>() == std::vector<float>{-1, -0.5, 0.5, 1});
  x.clamp_(0.0, 0.25);
  CHECK(x.to_vector<float>() == std::vector<float>{0, 0, 0.25, 0.25});
}

TEST_CASE("copy_ broadcasts and converts the source", "[tensor][inplace]") {
  const Tensor m = Tensor::zeros({2, 3}, DType::i32);
  m.copy_(vec({1.9f, -2.9f, 3}));
  CHECK(m.to_vector<std::int32_t>() == std::vector<std::int32_t>{1, -2, 3, 1, -2, 3});
  m.copy_(Tensor::scalar(7));
  CHECK(m.to_vector<std::int32_t>() == std::vector<std::int32_t>(6, 7));

  const Tensor target = Tensor::zeros({3, 2});
  target.copy_(Tensor::arange(0, 6).reshape({2, 3}).t());
  CHECK(target.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_AS(target.copy_(Tensor::zeros({2, 3})), Error);
}

TEST_CASE("in-place ops on a view write through to the base", "[tensor][inplace]") {
  const Tensor base = Tensor::zeros({3, 3});
  base.select(1, 1).add_(1);
  base.narrow(0, 2, 1).mul_(0).add_(vec({5, 6, 7}));
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 0, 0, 1, 0, 5, 6, 7});
}

TEST_CASE("an in-place op may read its own storage", "[tensor][inplace]") {
  const Tensor x = vec({1, 2, 3});
  x.add_(x);
  CHECK(x.to_vector<float>() == std::vector<float>{2, 4, 6});
  x.mul_(x);
  CHECK(x.to_vector<float>() == std::vector<float>{4, 16, 36});
}

TEST_CASE("in-place ops bump the storage version shared by views", "[tensor][inplace]") {
  const Tensor base = Tensor::zeros({4});
  const Tensor view = base.narrow(0, 1, 2);
  const auto before = base.storage().version();
  view.fill_(1);
  CHECK(base.storage().version() > before);
  const auto after_fill = base.storage().version();
  base.clamp_(0.0, std::nullopt);
  CHECK(view.storage().version() > after_fill);
}

TEST_CASE("in-place ops on tensors that require grad need a NoGradGuard", "[tensor][inplace]") {
  Tensor p = vec({1, 2});
  p.requires_grad_();
  REQUIRE(GradMode::enabled());
  CHECK_THROWS_MATCHES(p.add_(vec({1, 1})), Error, MessageContains({"NoGradGuard"}));
  CHECK_THROWS_AS(p.mul_(2), Error);
  CHECK_THROWS_AS(p.fill_(0), Error);
  CHECK_THROWS_AS(p.clamp_(0.0, std::nullopt), Error);
  CHECK(p.to_vector<float>() == std::vector<float>{1, 2});
  {
    NoGradGuard no_grad;
    p.add_(vec({1, 1}), -1);
    p.mul_(4);
  }
  CHECK(p.to_vector<float>() == std::vector<float>{0, 4});
  CHECK(p.requires_grad());

  // Tensors that do not require grad are free to change in grad mode.
  const Tensor plain = vec({1});
  plain.add_(1);
  CHECK(plain.item() == 2);
}
