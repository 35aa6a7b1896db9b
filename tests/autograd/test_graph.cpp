// How the backward graph behaves: accumulation, grad mode, detach, retained and freed graphs,
// version checks of saved tensors, and gradients of broadcast operands.
#include <catch2/catch.hpp>
#include <cstdint>
#include <thread>
#include <vector>

#include "../tensor/error_matcher.hpp"
#include "deepshift.hpp"

using namespace ds;
using ds::testing::MessageContains;

namespace {

Tensor leaf(std::vector<float> values) {
  const auto n = static_cast<std::int64_t>(values.size());
  Tensor t = Tensor::from_vector<float>(values, {n});
  t.requires_grad_();
  return t;
}

std::vector<float> grad_of(const Tensor& t) {
  REQUIRE(t.grad().defined());
  return t.grad().to_vector<float>();
}

}  // namespace

TEST_CASE("results of recorded ops require grad and are not leaves", "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  CHECK(x.is_leaf());
  CHECK_FALSE(x.grad().defined());
  const Tensor y = x * 2.0;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn() != nullptr);

  const Tensor constant = Tensor::ones({2});
  CHECK_FALSE((constant * 2.0).requires_grad());
  CHECK((constant * x).requires_grad());
  // Integer results (comparisons, argmax) never carry a gradient.
  CHECK_FALSE(gt(x, constant).requires_grad());
  CHECK_FALSE(argmax(x).requires_grad());
}

TEST_CASE("a tensor used twice receives the sum of both gradients", "[autograd][graph]") {
  const Tensor x = leaf({1, -2, 3});
  (x * x).sum().backward();
  CHECK(grad_of(x) == std::vector<float>{2, -4, 6});

  const Tensor z = leaf({5, 6});
  (z + z + z).sum().backward();
  CHECK(grad_of(z) == std::vector<float>{3, 3});
}

TEST_CASE("gradients flow through a diamond in the right order", "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  const Tensor y = x * 2.0;
  const Tensor z = y * y + y;  // dz/dx = (2 y + 1) * 2
  z.sum().backward();
  CHECK(grad_of(x) == std::vector<float>{10, 18});
  CHECK_FALSE(y.grad().defined());  // only leaves keep their gradient
}

TEST_CASE(".grad accumulates over backward calls until reset", "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  (x * 3.0).sum().backward();
  (x * 3.0).sum().backward();
  CHECK(grad_of(x) == std::vector<float>{6, 6});

  x.grad().zero_();
  (x * x).sum().backward();
  CHECK(grad_of(x) == std::vector<float>{2, 4});

  x.set_grad(Tensor::from_vector<float>({100, 200}, {2}));
  x.sum().backward();
  CHECK(grad_of(x) == std::vector<float>{101, 201});
}

TEST_CASE("retain_graph lets backward run twice; otherwise the second call throws",
          "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  const Tensor retained = (x * x).sum();
  retained.backward({}, true);
  retained.backward();
  CHECK(grad_of(x) == std::vector<float>{4, 8});

  const Tensor freed = (x * x).sum();
  freed.backward();
  CHECK_THROWS_MATCHES(freed.backward(), Error, MessageContains({"retain_graph"}));
}

TEST_CASE("backward of a non-scalar needs an explicit gradient", "[autograd][graph]") {
  const Tensor x = leaf({1, 2, 3});
  const Tensor y = x * x;
  CHECK_THROWS_MATCHES(y.backward(), Error, MessageContains({"backward", "[3]"}));
  CHECK_THROWS_AS(y.backward(Tensor::ones({2})), Error);
  y.backward(Tensor::from_vector<float>({1, 0, -2}, {3}));
  CHECK(grad_of(x) == std::vector<float>{2, 0, -12});
}

TEST_CASE("backward of a tensor that does not require grad throws", "[autograd][graph]") {
  const Tensor constant = Tensor::ones({2}).sum();
  CHECK_THROWS_AS(constant.backward(), Error);
}

TEST_CASE("no_grad records nothing and restores the previous mode", "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  REQUIRE(GradMode::enabled());
  Tensor y;
  {
    NoGradGuard outer;
    {
      NoGradGuard inner;
      CHECK_FALSE(GradMode::enabled());
    }
    CHECK_FALSE(GradMode::enabled());
    y = x * x + 1.0;
  }
  CHECK(GradMode::enabled());
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK(y.to_vector<float>() == std::vector<float>{2, 5});
}

TEST_CASE("detach shares storage and stops the gradient", "[autograd][graph]") {
  const Tensor x = leaf({2, 3});
  const Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage().same_block(x.storage()));
  (d * x).sum().backward();  // d is a constant here, so the gradient is d, not 2 x
  CHECK(grad_of(x) == std::vector<float>{2, 3});
}

TEST_CASE("modifying a saved tensor in place makes backward throw", "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  const Tensor w = leaf({3, 4});
  const Tensor loss = (x * w).sum();
  {
    NoGradGuard no_grad;
    w.mul_(2);
  }
  CHECK_THROWS_MATCHES(loss.backward(), Error, MessageContains({"mul", "in place"}));
}

TEST_CASE("an in-place change after backward is harmless", "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  const Tensor w = leaf({3, 4});
  (x * w).sum().backward();
  {
    NoGradGuard no_grad;
    w.mul_(2);
  }
  CHECK(grad_of(x) == std::vector<float>{3, 4});
  (x * w).sum().backward();
  CHECK(grad_of(x) == std::vector<float>{9, 12});
}

TEST_CASE("the gradient of a broadcast operand is summed to its shape", "[autograd][graph]") {
  const Tensor m = leaf({1, 2, 3, 4, 5, 6});
  const Tensor matrix = m.view({2, 3});
  const Tensor bias = leaf({0, 0, 0});
  (matrix + bias).sum().backward();
  CHECK(bias.grad().shape() == Shape{3});
  CHECK(grad_of(bias) == std::vector<float>{2, 2, 2});
  CHECK(grad_of(m) == std::vector<float>(6, 1));

  Tensor column = Tensor::from_vector<float>({1, 2}, {2, 1});
  column.requires_grad_();
  Tensor row = Tensor::from_vector<float>({10, 20, 30}, {1, 3});
  row.requires_grad_();
  (column * row).sum().backward();
  CHECK(column.grad().shape() == Shape{2, 1});
  CHECK(column.grad().to_vector<float>() == std::vector<float>{60, 60});
  CHECK(row.grad().shape() == Shape{1, 3});
  CHECK(row.grad().to_vector<float>() == std::vector<float>{3, 3, 3});

  Tensor scale = Tensor::scalar(2);
  scale.requires_grad_();
  (scale * matrix.detach()).sum().backward();
  CHECK(scale.grad().dim() == 0);
  CHECK(scale.grad().item() == 21);
}

// A leaf without .grad may take the incoming gradient itself rather than a copy; .grad is then
// changed in place by optimizers and zero_grad, so it must never share memory with anything.
TEST_CASE(".grad never shares memory with another tensor", "[autograd][graph]") {
  SECTION("one gradient delivered to two leaves") {
    const Tensor a = leaf({1, 2}), b = leaf({3, 4});
    (a + b).sum().backward();  // add passes its gradient on to both operands
    a.grad().mul_(10.0);
    CHECK(grad_of(a) == std::vector<float>{10, 10});
    CHECK(grad_of(b) == std::vector<float>{1, 1});
  }
  SECTION("the caller's gradient for a leaf") {
    const Tensor x = leaf({1, 2});
    const Tensor seed = Tensor::from_vector<float>({5, 6}, {2});
    x.backward(seed);
    x.grad().zero_();
    CHECK(seed.to_vector<float>() == std::vector<float>{5, 6});
  }
  SECTION("the caller's gradient reshaped on its way to the leaf") {
    const Tensor x = leaf({1, 2});
    const Tensor seed = Tensor::from_vector<float>({5, 6}, {1, 2});
    x.reshape({1, 2}).backward(seed);  // the leaf receives a view of the seed
    x.grad().zero_();
    CHECK(seed.to_vector<float>() == std::vector<float>{5, 6});
  }
  SECTION("slices of one gradient") {
    // cat's backward hands each operand a slice of its gradient; the first slice starts where
    // the memory does, but the memory is larger than the leaf.
    const Tensor a = leaf({1, 2}), b = leaf({3, 4});
    (cat({a, b}, 0) * 2.0).sum().backward();
    CHECK(a.grad().storage().nbytes() == 2 * sizeof(float));
    a.grad().mul_(10.0);
    CHECK(grad_of(a) == std::vector<float>{20, 20});
    CHECK(grad_of(b) == std::vector<float>{2, 2});
  }
  SECTION("values are right when the gradient is taken over, and accumulate after") {
    const Tensor x = leaf({1, 2});
    (x * 3.0).sum().backward();
    (x * 3.0).sum().backward();
    CHECK(grad_of(x) == std::vector<float>{6, 6});
  }
}

TEST_CASE("gradients through views land on the viewed elements", "[autograd][graph]") {
  Tensor x = Tensor::arange(0, 6).reshape({2, 3});
  x.requires_grad_();
  (x.narrow(1, 1, 2) * 2.0).sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 2, 2, 0, 2, 2});

  x.grad().zero_();
  x.t().select(0, 2).sum().backward();  // column 2 of x
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 1, 0, 0, 1});

  x.grad().zero_();
  x.slice(1, 0, 3, 2).expand({4, 2, 2}).sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{4, 0, 4, 4, 0, 4});
}

TEST_CASE("a gradient through a dtype conversion arrives in the leaf's dtype",
          "[autograd][graph]") {
  const Tensor x = leaf({1, 2});
  (x.to(DType::f64) * 3.0).sum().backward();
  CHECK(x.grad().dtype() == DType::f32);
  CHECK(grad_of(x) == std::vector<float>{3, 3});
}

TEST_CASE("a non-contiguous leaf gets a gradient of its own shape", "[autograd][graph]") {
  Tensor b = Tensor::arange(0, 6).reshape({2, 3}).t();
  b.requires_grad_();
  (b * b).sum().backward();
  CHECK(b.grad().shape() == Shape{3, 2});
  CHECK(b.grad().to_vector<float>() == std::vector<float>{0, 6, 2, 8, 4, 10});
  CHECK_THROWS_MATCHES(b.set_grad(Tensor::zeros({2, 3})), Error,
                       MessageContains({"[2, 3]", "[3, 2]"}));
}

TEST_CASE("grad mode is per thread", "[autograd][graph]") {
  bool enabled_elsewhere = false;
  {
    NoGradGuard no_grad;
    std::thread other([&] { enabled_elsewhere = GradMode::enabled(); });
    other.join();
  }
  CHECK(enabled_elsewhere);

  std::thread disabling([] { GradMode::set_enabled(false); });
  disabling.join();
  CHECK(GradMode::enabled());
}

TEST_CASE("requires_grad_ is refused on non-leaves and integer tensors", "[autograd][graph]") {
  const Tensor x = leaf({1});
  Tensor y = x * 2.0;
  CHECK_THROWS_MATCHES(y.requires_grad_(), Error, MessageContains({"leaf"}));
  Tensor labels = Tensor::zeros({2}, DType::i32);
  CHECK_THROWS_MATCHES(labels.requires_grad_(), Error, MessageContains({"i32"}));

  Tensor detached = y.detach();
  detached.requires_grad_();  // a detached result is a leaf again
  CHECK(detached.requires_grad());
  Tensor plain = Tensor::ones({1});
  plain.requires_grad_(true).requires_grad_(false);
  CHECK_FALSE(plain.requires_grad());
}
