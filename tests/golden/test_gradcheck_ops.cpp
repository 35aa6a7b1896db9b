// Finite-difference checks (f64, full Jacobian) of every differentiable op and view, with
// broadcasting; and proof that the checker rejects a wrong backward.
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/function.hpp"
#include "autograd/gradcheck.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Shape;
using ds::Tensor;
using Inputs = std::vector<Tensor>;
using Fn = std::function<Tensor(const Inputs&)>;

Tensor leaf(Tensor values) {
  values.requires_grad_();
  return values;
}

Tensor normal_leaf(ds::Generator& gen, const Shape& shape) {
  return leaf(ds::randn(shape, DType::f64, gen));
}

// Inputs of log, sqrt, pow bases and denominators: far from 0 relative to the step size.
Tensor positive_leaf(ds::Generator& gen, const Shape& shape) {
  return leaf(ds::uniform(shape, 0.5, 2.0, DType::f64, gen));
}

void expect_gradcheck(const Fn& fn, const Inputs& inputs,
                      ds::autograd::GradcheckOptions options = {}) {
  const ds::autograd::GradcheckResult result = ds::autograd::gradcheck(fn, inputs, options);
  INFO(result.message);
  CHECK(result.ok);
}

// Shape pairs covering the broadcasting corners: equal, scalar-shaped, [3,1]x[1,4], and
// missing leading dims on either side.
const std::vector<std::pair<Shape, Shape>> kBroadcastShapes = {
    {{3, 4}, {3, 4}}, {{3, 4}, {}},     {{}, {2, 3}},        {{3, 1}, {1, 4}},
    {{2, 3, 4}, {4}}, {{4}, {2, 3, 4}}, {{2, 1, 4}, {3, 1}},
};

using Binary = Tensor (*)(const Tensor&, const Tensor&);

void check_binary(const char* name, Binary op, bool positive_right) {
  ds::Generator gen(11);
  for (const auto& [left, right] : kBroadcastShapes) {
    INFO(name << " of " << ds::shape_str(left) << " and " << ds::shape_str(right));
    const Tensor b = positive_right ? positive_leaf(gen, right) : normal_leaf(gen, right);
    expect_gradcheck([op](const Inputs& in) { return op(in[0], in[1]); },
                     {normal_leaf(gen, left), b});
  }
}

Tensor square_forward(const Inputs& inputs) { return ds::mul(inputs[0], inputs[0]); }

// x^2 through custom_function, with the derivative scaled by `derivative_factor` (2 is right).
Tensor custom_square(const Tensor& x, double derivative_factor) {
  return ds::autograd::custom_function(
      "square", {x}, square_forward,
      [x = x.detach(), derivative_factor](const Tensor& grad, const std::vector<bool>&) {
        return std::vector<Tensor>{ds::mul(grad, x) * derivative_factor};
      });
}

}  // namespace

TEST_CASE("gradcheck: add, sub, mul, div with broadcasting", "[gradcheck]") {
  check_binary("add", ds::add, false);
  check_binary("sub", ds::sub, false);
  check_binary("mul", ds::mul, false);
  check_binary("div", ds::div, true);
}

TEST_CASE("gradcheck: maximum and minimum with broadcasting", "[gradcheck]") {
  check_binary("maximum", ds::maximum, false);
  check_binary("minimum", ds::minimum, false);
}

TEST_CASE("gradcheck: pow in its three forms", "[gradcheck]") {
  ds::Generator gen(12);
  expect_gradcheck([](const Inputs& in) { return ds::pow(in[0], in[1]); },
                   {positive_leaf(gen, {3, 4}), normal_leaf(gen, {3, 4})});
  expect_gradcheck([](const Inputs& in) { return ds::pow(in[0], in[1]); },
                   {positive_leaf(gen, {3, 1}), normal_leaf(gen, {1, 4})});
  for (const double exponent : {2.0, 3.0}) {
    INFO("exponent " << exponent);
    expect_gradcheck([exponent](const Inputs& in) { return ds::pow(in[0], exponent); },
                     {normal_leaf(gen, {3, 4})});
  }
  INFO("exponent -1 of negative bases");
  expect_gradcheck([](const Inputs& in) { return ds::pow(in[0], -1.0); },
                   {leaf(ds::uniform({3, 4}, -2.0, -0.5, DType::f64, gen))});
  for (const double exponent : {0.5, -1.5, 2.5}) {
    INFO("exponent " << exponent);
    expect_gradcheck([exponent](const Inputs& in) { return ds::pow(in[0], exponent); },
                     {positive_leaf(gen, {3, 4})});
  }
  for (const double base : {2.0, 3.0, 0.5}) {
    INFO("base " << base);
    expect_gradcheck([base](const Inputs& in) { return ds::pow(base, in[0]); },
                     {normal_leaf(gen, {3, 4})});
  }
}

TEST_CASE("gradcheck: negation and the scalar operator forms", "[gradcheck]") {
  ds::Generator gen(13);
  const std::vector<std::pair<const char*, Fn>> forms = {
      {"neg", [](const Inputs& in) { return ds::neg(in[0]); }},
      {"-x", [](const Inputs& in) { return -in[0]; }},
      {"x + s", [](const Inputs& in) { return in[0] + 1.5; }},
      {"x - s", [](const Inputs& in) { return in[0] - 1.5; }},
      {"x * s", [](const Inputs& in) { return in[0] * -2.5; }},
      {"x / s", [](const Inputs& in) { return in[0] / 4.0; }},
      {"s + x", [](const Inputs& in) { return 1.5 + in[0]; }},
      {"s - x", [](const Inputs& in) { return 1.5 - in[0]; }},
      {"s * x", [](const Inputs& in) { return -2.5 * in[0]; }},
      {"s / x", [](const Inputs& in) { return 3.0 / in[0]; }},
      {"a + b", [](const Inputs& in) { return in[0] + in[1]; }},
      {"a - b", [](const Inputs& in) { return in[0] - in[1]; }},
      {"a * b", [](const Inputs& in) { return in[0] * in[1]; }},
      {"a / b", [](const Inputs& in) { return in[0] / in[1]; }},
  };
  for (const auto& [name, fn] : forms) {
    INFO(name);
    expect_gradcheck(fn, {positive_leaf(gen, {2, 3}), positive_leaf(gen, {3})});
  }
}

TEST_CASE("gradcheck: unary math", "[gradcheck]") {
  ds::Generator gen(14);
  using Unary = Tensor (*)(const Tensor&);
  // Random inputs are almost surely farther than the step from the kinks of abs and relu and
  // from the jumps of sign, floor and round (whose gradient is zero).
  const std::vector<std::pair<const char*, Unary>> on_reals = {
      {"exp", ds::exp},     {"exp2", ds::exp2},   {"abs", ds::abs},   {"sign", ds::sign},
      {"floor", ds::floor}, {"round", ds::round}, {"relu", ds::relu}, {"neg", ds::neg},
  };
  for (const auto& [name, op] : on_reals) {
    INFO(name);
    expect_gradcheck([op = op](const Inputs& in) { return op(in[0]); },
                     {leaf(ds::randn({3, 4}, DType::f64, gen) * 3.0)});
  }
  const std::vector<std::pair<const char*, Unary>> on_positives = {
      {"log", ds::log}, {"log2", ds::log2}, {"sqrt", ds::sqrt}};
  for (const auto& [name, op] : on_positives) {
    INFO(name);
    expect_gradcheck([op = op](const Inputs& in) { return op(in[0]); },
                     {positive_leaf(gen, {3, 4})});
  }
  expect_gradcheck([](const Inputs& in) { return ds::exp(in[0]); }, {normal_leaf(gen, {})});
}

TEST_CASE("gradcheck: clamp with both bounds and with one", "[gradcheck]") {
  ds::Generator gen(15);
  const Tensor x = leaf(ds::randn({4, 5}, DType::f64, gen) * 2.0);
  expect_gradcheck([](const Inputs& in) { return ds::clamp(in[0], -0.5, 0.8); }, {x});
  expect_gradcheck([](const Inputs& in) { return ds::clamp(in[0], -0.5, std::nullopt); }, {x});
  expect_gradcheck([](const Inputs& in) { return ds::clamp(in[0], std::nullopt, 0.8); }, {x});
}

TEST_CASE("gradcheck: where with a broadcast condition and operands", "[gradcheck]") {
  ds::Generator gen(16);
  const Tensor condition = Tensor::from_vector<std::uint8_t>({1, 0, 1}, {3, 1});
  expect_gradcheck([condition](const Inputs& in) { return ds::where(condition, in[0], in[1]); },
                   {normal_leaf(gen, {3, 4}), normal_leaf(gen, {4})});
  expect_gradcheck([condition](const Inputs& in) { return ds::where(condition, in[0], in[1]); },
                   {normal_leaf(gen, {}), normal_leaf(gen, {3, 2})});
}

TEST_CASE("gradcheck: reductions over dims, with and without keepdim", "[gradcheck]") {
  ds::Generator gen(17);
  const std::vector<std::vector<std::int64_t>> dim_sets = {{}, {0}, {1}, {-1}, {0, 2}};
  for (const auto& dims : dim_sets) {
    for (const bool keep : {false, true}) {
      INFO("dims " << ds::shape_str(dims) << " keepdim " << keep);
      const Tensor x = normal_leaf(gen, {2, 3, 4});
      expect_gradcheck([&](const Inputs& in) { return ds::sum(in[0], dims, keep); }, {x});
      expect_gradcheck([&](const Inputs& in) { return ds::mean(in[0], dims, keep); }, {x});
      expect_gradcheck([&](const Inputs& in) { return ds::max(in[0], dims, keep); }, {x});
      expect_gradcheck([&](const Inputs& in) { return ds::min(in[0], dims, keep); }, {x});
      for (const std::int64_t correction : {1, 0}) {
        INFO("var correction " << correction);
        expect_gradcheck([&](const Inputs& in) { return ds::var(in[0], dims, keep, correction); },
                         {x});
      }
    }
  }
}

TEST_CASE("gradcheck: sum_to reduces broadcast dims", "[gradcheck]") {
  ds::Generator gen(18);
  const Tensor x = normal_leaf(gen, {2, 3, 4});
  for (const Shape& target : {Shape{3, 1}, Shape{4}, Shape{1, 3, 4}, Shape{}}) {
    INFO("target " << ds::shape_str(target));
    expect_gradcheck([target](const Inputs& in) { return ds::sum_to(in[0], target); }, {x});
  }
}

TEST_CASE("gradcheck: softmax and log_softmax over every dim", "[gradcheck]") {
  ds::Generator gen(19);
  const Tensor x = normal_leaf(gen, {2, 3, 4});
  for (const std::int64_t dim : {0, 1, 2, -1}) {
    INFO("dim " << dim);
    expect_gradcheck([dim](const Inputs& in) { return ds::softmax(in[0], dim); }, {x});
    expect_gradcheck([dim](const Inputs& in) { return ds::log_softmax(in[0], dim); }, {x});
  }
}

TEST_CASE("gradcheck: matmul shapes", "[gradcheck]") {
  ds::Generator gen(20);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {4, 5}}, {{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}}, {{1, 3, 4}, {2, 4, 5}},
      {{4}, {4, 5}},    {{3, 4}, {4}},          {{4}, {4}},
  };
  const Fn matmul = [](const Inputs& in) { return ds::matmul(in[0], in[1]); };
  for (const auto& [left, right] : shapes) {
    INFO("matmul of " << ds::shape_str(left) << " and " << ds::shape_str(right));
    expect_gradcheck(matmul, {normal_leaf(gen, left), normal_leaf(gen, right)});
  }
  INFO("transposed operands");
  expect_gradcheck([](const Inputs& in) { return ds::matmul(in[0].t(), in[1].t()); },
                   {normal_leaf(gen, {4, 3}), normal_leaf(gen, {5, 4})});
}

TEST_CASE("gradcheck: views and copies", "[gradcheck]") {
  ds::Generator gen(21);
  const Tensor x = normal_leaf(gen, {2, 3, 4});
  const std::vector<std::pair<const char*, Fn>> views = {
      {"view",
       [](const Inputs& in) {
         return in[0].view({6, 4});
       }},
      {"reshape",
       [](const Inputs& in) {
         return in[0].reshape({4, -1});
       }},
      {"reshape of a permuted view",
       [](const Inputs& in) {
         return in[0].permute({2, 0, 1}).reshape({4, 6});
       }},
      {"permute",
       [](const Inputs& in) {
         return in[0].permute({2, 0, 1});
       }},
      {"transpose", [](const Inputs& in) { return in[0].transpose(0, 2); }},
      {"t", [](const Inputs& in) { return in[0].select(0, 1).t(); }},
      {"narrow", [](const Inputs& in) { return in[0].narrow(2, 1, 2); }},
      {"slice with step", [](const Inputs& in) { return in[0].slice(2, 0, 4, 2); }},
      {"slice of a slice", [](const Inputs& in) { return in[0].slice(1, 1, 3).slice(2, 3, 4); }},
      {"select", [](const Inputs& in) { return in[0].select(1, 2); }},
      {"select negative", [](const Inputs& in) { return in[0].select(-1, -1); }},
      {"expand",
       [](const Inputs& in) {
         return in[0].unsqueeze(0).expand({3, 2, 3, 4});
       }},
      {"expand size-1 dim",
       [](const Inputs& in) {
         return in[0].narrow(1, 0, 1).expand({2, 5, 4});
       }},
      {"unsqueeze", [](const Inputs& in) { return in[0].unsqueeze(1); }},
      {"squeeze all", [](const Inputs& in) { return in[0].narrow(1, 2, 1).squeeze(); }},
      {"squeeze dim", [](const Inputs& in) { return in[0].unsqueeze(3).squeeze(3); }},
      {"flatten", [](const Inputs& in) { return in[0].flatten(); }},
      {"flatten range", [](const Inputs& in) { return in[0].flatten(1, 2); }},
      {"contiguous", [](const Inputs& in) { return in[0].transpose(0, 1).contiguous(); }},
      {"clone", [](const Inputs& in) { return in[0].clone(); }},
      {"to f64", [](const Inputs& in) { return in[0].to(DType::f64); }},
      // A view followed by an op: the op must read the view's strides.
      {"exp of a strided view", [](const Inputs& in) { return ds::exp(in[0].slice(2, 1, 4, 2)); }},
  };
  for (const auto& [name, fn] : views) {
    INFO(name);
    expect_gradcheck(fn, {x});
  }
}

TEST_CASE("gradcheck: a round trip through f32", "[gradcheck]") {
  ds::Generator gen(22);
  // f32 rounding (about 1e-7 relative) needs a wider step than the default to stay small
  // against it.
  ds::autograd::GradcheckOptions options;
  options.eps = 1e-2;
  expect_gradcheck([](const Inputs& in) { return in[0].to(DType::f32).to(DType::f64); },
                   {normal_leaf(gen, {3, 4})}, options);
}

TEST_CASE("gradcheck: method forms and composed expressions", "[gradcheck]") {
  ds::Generator gen(23);
  const Tensor x = positive_leaf(gen, {3, 4});
  const Tensor w = normal_leaf(gen, {4, 2});
  const Tensor b = normal_leaf(gen, {2});
  expect_gradcheck([](const Inputs& in) { return in[0].sum(); }, {x});
  expect_gradcheck([](const Inputs& in) { return in[0].sum({1}, true); }, {x});
  expect_gradcheck([](const Inputs& in) { return in[0].mean(); }, {x});
  expect_gradcheck([](const Inputs& in) { return in[0].mean({0}); }, {x});
  expect_gradcheck([](const Inputs& in) { return in[0].exp().log().sqrt().abs(); }, {x});
  INFO("an input used twice accumulates both gradients");
  expect_gradcheck([](const Inputs& in) { return in[0] * in[0] + ds::exp(in[0]); }, {x});
  INFO("a small classifier: log_softmax(x @ w + b) averaged");
  expect_gradcheck(
      [](const Inputs& in) { return ds::log_softmax(in[0].matmul(in[1]) + in[2], 1).mean(); },
      {x, w, b});
}

TEST_CASE("gradcheck accepts a right custom backward and rejects a wrong one", "[gradcheck]") {
  ds::Generator gen(24);
  const Tensor x = normal_leaf(gen, {2, 3});
  expect_gradcheck([](const Inputs& in) { return custom_square(in[0], 2.0); }, {x});

  // The derivative of x^2 is 2x; a backward returning x must be caught.
  const ds::autograd::GradcheckResult wrong =
      ds::autograd::gradcheck([](const Inputs& in) { return custom_square(in[0], 1.0); }, {x});
  CHECK_FALSE(wrong.ok);
  CHECK_FALSE(wrong.message.empty());
}
