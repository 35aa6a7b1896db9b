// custom_function: user-defined forward/backward pairs, and the lifetime of what their
// backward closures capture.
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "../tensor/error_matcher.hpp"
#include "deepshift.hpp"

using namespace ds;
using ds::autograd::BackwardFn;
using ds::autograd::custom_function;
using ds::testing::MessageContains;

namespace {

Tensor leaf(std::vector<float> values) {
  const auto n = static_cast<std::int64_t>(values.size());
  Tensor t = Tensor::from_vector<float>(values, {n});
  t.requires_grad_();
  return t;
}

// Rounds in the forward pass and passes the gradient straight through in the backward pass,
// as DeepShift's weight rounding does.
Tensor round_ste(const Tensor& x) {
  return custom_function(
      "round_ste", {x}, [](const std::vector<Tensor>& in) { return ds::round(in[0]); },
      [](const Tensor& grad, const std::vector<bool>&) { return std::vector<Tensor>{grad}; });
}

// x * 2 whose backward closure owns `sentinel`, so that a test can watch the closure's life.
Tensor doubled_holding(const Tensor& x, std::shared_ptr<int> sentinel) {
  return custom_function(
      "doubled", {x}, [](const std::vector<Tensor>& in) { return in[0] * 2.0; },
      [sentinel](const Tensor& grad, const std::vector<bool>&) {
        return std::vector<Tensor>{grad * 2.0};
      });
}

}  // namespace

TEST_CASE("a straight-through estimator rounds forward and passes gradients back",
          "[autograd][custom]") {
  const Tensor x = leaf({0.4f, 1.6f, -2.5f});
  const Tensor y = round_ste(x);
  CHECK(y.to_vector<float>() == std::vector<float>{0, 2, -2});
  CHECK(y.requires_grad());
  (y * Tensor::from_vector<float>({1, 2, 3}, {3})).sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{1, 2, 3});

  // The built-in round has zero gradient, which is exactly why the STE exists.
  const Tensor z = leaf({0.4f});
  ds::round(z * 1.0).sum().backward();
  CHECK(z.grad().to_vector<float>() == std::vector<float>{0});
}

TEST_CASE("backward is told which inputs want a gradient", "[autograd][custom]") {
  const Tensor a = leaf({2});
  const Tensor b = Tensor::from_vector<float>({5}, {1});
  std::vector<bool> seen;
  const Tensor product = custom_function(
      "product", {a, b}, [](const std::vector<Tensor>& in) { return in[0] * in[1]; },
      [&seen, b](const Tensor& grad, const std::vector<bool>& needs) {
        seen = needs;
        return std::vector<Tensor>{grad * b, Tensor()};
      });
  product.sum().backward();
  CHECK(seen == std::vector<bool>{true, false});
  CHECK(a.grad().to_vector<float>() == std::vector<float>{5});
}

TEST_CASE("a backward returning the wrong number of gradients is reported", "[autograd][custom]") {
  const Tensor x = leaf({1});
  const Tensor y = custom_function(
      "broken", {x}, [](const std::vector<Tensor>& in) { return in[0] * 1.0; },
      [](const Tensor& grad, const std::vector<bool>&) {
        return std::vector<Tensor>{grad, grad};
      });
  CHECK_THROWS_MATCHES(y.sum().backward(), Error, MessageContains({"broken"}));
}

TEST_CASE("under NoGradGuard a custom function records nothing", "[autograd][custom]") {
  const Tensor x = leaf({1.2f});
  NoGradGuard no_grad;
  const Tensor y = round_ste(x);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.item() == 1);
}

TEST_CASE("the forward pass of a custom function is not recorded", "[autograd][custom]") {
  const Tensor x = leaf({3});
  bool recorded_inside = true;
  const Tensor y = custom_function(
      "probe", {x},
      [&recorded_inside](const std::vector<Tensor>& in) {
        Tensor out = in[0] * 1.0;
        recorded_inside = out.requires_grad();
        return out;
      },
      [](const Tensor& grad, const std::vector<bool>&) { return std::vector<Tensor>{grad}; });
  CHECK_FALSE(recorded_inside);
  CHECK(y.requires_grad());
  CHECK(y.grad_fn() != nullptr);
}

TEST_CASE("the graph is freed by backward unless retained", "[autograd][custom]") {
  const Tensor x = leaf({1, 2});

  SECTION("freed after backward while the output is still alive") {
    auto sentinel = std::make_shared<int>(0);
    std::weak_ptr<int> watch = sentinel;
    const Tensor y = doubled_holding(x, std::move(sentinel)).sum();
    REQUIRE_FALSE(watch.expired());
    y.backward();
    CHECK(watch.expired());
    CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 2});
  }

  SECTION("kept by retain_graph until the output goes away") {
    auto sentinel = std::make_shared<int>(0);
    std::weak_ptr<int> watch = sentinel;
    {
      const Tensor y = doubled_holding(x, std::move(sentinel)).sum();
      y.backward({}, true);
      CHECK_FALSE(watch.expired());
    }
    CHECK(watch.expired());
    CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 2});
  }

  SECTION("freed with the output when backward never runs") {
    auto sentinel = std::make_shared<int>(0);
    std::weak_ptr<int> watch = sentinel;
    {
      const Tensor y = doubled_holding(x, std::move(sentinel)) * 3.0;
      CHECK_FALSE(watch.expired());
    }
    CHECK(watch.expired());
  }
}

TEST_CASE("the graph does not keep the leaves alive", "[autograd][custom]") {
  std::weak_ptr<TensorImpl> watch;
  Tensor y;
  {
    const Tensor x = leaf({1, 2});
    watch = x.impl_ptr();
    y = x * 3.0;
  }
  CHECK(watch.expired());
  y.sum().backward();  // the gradient has nowhere to go, which is not an error
  CHECK(y.requires_grad());
}
