// Layer behaviour that has no single PyTorch reference value: dropout masks and seeds, the
// default initialisation's distribution, the ResNet option-A shortcut, the model summary's
// numbers (computed by hand here) and the errors for inputs that do not fit a layer.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "nn/functional.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/summary.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using ds::test::values_of;
using ds::testing::MessageContains;
namespace F = ds::nn::functional;
namespace nn = ds::nn;

struct Moments {
  double mean = 0, variance = 0, min = 0, max = 0;
};

Moments moments_of(const Tensor& t) {
  const auto v = values_of(t);
  Moments m{0, 0, v.at(0), v.at(0)};
  for (const double x : v) {
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= static_cast<double>(v.size());
  for (const double x : v) m.variance += (x - m.mean) * (x - m.mean);
  m.variance /= static_cast<double>(v.size());
  return m;
}

// Checks that `t` looks like n draws of U(-bound, bound): inside the bounds, reaching close to
// them, with mean and variance within five standard errors.
void check_uniform(const std::string& what, const Tensor& t, double bound) {
  const Moments m = moments_of(t);
  const double n = static_cast<double>(t.numel());
  const double variance = bound * bound / 3.0;
  INFO(what << ": bound " << bound << ", min " << m.min << ", max " << m.max << ", mean " << m.mean
            << ", variance " << m.variance);
  CHECK(m.min >= -bound);
  CHECK(m.max <= bound);
  CHECK(m.min < -0.9 * bound);
  CHECK(m.max > 0.9 * bound);
  CHECK(std::abs(m.mean) < 5.0 * std::sqrt(variance / n));
  // The variance of U(-b, b) draws squared is 4 b^4 / 45.
  CHECK(std::abs(m.variance - variance) < 5.0 * std::sqrt(4.0 * std::pow(bound, 4) / 45.0 / n));
}

Tensor parameter(const nn::Module& m, const std::string& name) {
  for (const auto& p : m.named_parameters())
    if (p.name == name) return p.tensor;
  FAIL("no parameter " << name);
  return {};
}

// conv 3->8 (3x3, padding 1), batch norm, relu, 2x2 max pool, linear 128->10 on 8x8 images.
std::shared_ptr<nn::Sequential> summary_model() {
  return nn::make<nn::Sequential>(std::vector<nn::ModulePtr>{
      nn::make<nn::Conv2d>(nn::Conv2dOptions::square(3, 8, 3, 1, 1)),
      nn::batch_norm2d(8),
      nn::make<nn::ReLU>(),
      nn::make<nn::MaxPool2d>(2),
      nn::make<nn::Flatten>(),
      nn::make<nn::Linear>(8 * 4 * 4, 10),
  });
}

}  // namespace

TEST_CASE("dropout is the identity in eval mode", "[nn][dropout]") {
  nn::Dropout dropout(0.5);
  dropout.eval();
  const Tensor x = ds::randn({4, 5});
  CHECK(values_of(dropout(x)) == values_of(x));
  CHECK(values_of(F::dropout(x, 0.9, /*training=*/false)) == values_of(x));
}

TEST_CASE("dropout in training zeroes about p and scales the rest by 1/(1-p)", "[nn][dropout]") {
  const double p = 0.3;
  const std::int64_t n = 20000;
  ds::Generator gen(21);
  const Tensor x = Tensor::ones({n}).requires_grad_();
  const Tensor y = F::dropout(x, p, /*training=*/true, gen);
  std::int64_t zeros = 0;
  for (const double v : values_of(y)) {
    if (v == 0.0)
      ++zeros;
    else
      CHECK(v == Approx(1.0 / (1.0 - p)).epsilon(1e-6));
  }
  const double fraction = static_cast<double>(zeros) / static_cast<double>(n);
  CHECK(std::abs(fraction - p) < 5.0 * std::sqrt(p * (1 - p) / static_cast<double>(n)));

  // The gradient goes through the same mask with the same scale.
  ds::sum(y).backward();
  CHECK(values_of(x.grad()) == values_of(y));
}

TEST_CASE("dropout masks follow the seed", "[nn][dropout]") {
  const Tensor x = ds::randn({64, 32});
  ds::Generator a(5), b(5), c(6);
  const auto first = values_of(F::dropout(x, 0.5, true, a));
  CHECK(first == values_of(F::dropout(x, 0.5, true, b)));
  CHECK(first != values_of(F::dropout(x, 0.5, true, c)));

  // The layer draws from the default generator.
  nn::Dropout layer(0.5);
  ds::manual_seed(77);
  const auto seeded = values_of(layer(x));
  CHECK(seeded != values_of(layer(x)));  // the next mask is a fresh one
  ds::manual_seed(77);
  CHECK(seeded == values_of(layer(x)));
  CHECK_THROWS_MATCHES(nn::Dropout(1.5), ds::Error, MessageContains({"1.5"}));
}

namespace {

// 2x2 max pooling with stride 2 by hand: the first maximum of each window in row order, a NaN
// winning over everything (the first NaN); returns the values and each window's chosen offset.
std::pair<std::vector<double>, std::vector<std::int64_t>> pool_2x2_by_hand(
    const std::vector<double>& x, std::int64_t planes, std::int64_t h, std::int64_t w) {
  std::vector<double> values;
  std::vector<std::int64_t> chosen;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oh = 0; oh < h / 2; ++oh)
      for (std::int64_t ow = 0; ow < w / 2; ++ow) {
        std::int64_t best = p * h * w + 2 * oh * w + 2 * ow;
        for (const std::int64_t at : {best + 1, best + w, best + w + 1})
          if (!std::isnan(x[best]) && (std::isnan(x[at]) || x[at] > x[best])) best = at;
        values.push_back(x[best]);
        chosen.push_back(best);
      }
  return {values, chosen};
}

// Checks F::max_pool2d(x, 2x2 stride 2) on [2, planes / 2, h, w] against pool_2x2_by_hand,
// values and gradients.
void check_pool_2x2(const std::vector<double>& x, std::int64_t planes, std::int64_t h,
                    std::int64_t w, DType dtype) {
  const Tensor input = Tensor::from_vector(x, {2, planes / 2, h, w}).to(dtype).requires_grad_();
  const Tensor pooled = F::max_pool2d(input, {2, 2, 2, 2});
  const auto [expected, chosen] = pool_2x2_by_hand(x, planes, h, w);
  REQUIRE(pooled.shape() == ds::Shape{2, planes / 2, h / 2, w / 2});
  const auto got = values_of(pooled);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("window " << i);
    if (std::isnan(expected[i]))
      CHECK(std::isnan(got[i]));
    else
      CHECK(got[i] == expected[i]);
  }
  // Each window's gradient goes to the element chosen, nothing to the others.
  const Tensor weights =
      Tensor::arange(1, static_cast<double>(expected.size()) + 1, 1, dtype).reshape(pooled.shape());
  ds::sum(pooled * weights).backward();
  std::vector<double> expected_grad(x.size(), 0.0);
  for (std::size_t i = 0; i < chosen.size(); ++i) expected_grad[chosen[i]] += i + 1.0;
  CHECK(values_of(input.grad()) == expected_grad);
}

}  // namespace

TEST_CASE("2x2 max pooling takes the first maximum, a NaN winning, on odd sizes", "[nn][pooling]") {
  const DType dtype = GENERATE(DType::f32, DType::f64);
  SECTION("ties, NaN, -inf") {
    const std::int64_t planes = 6, h = 7, w = 9;
    // Small integers make ties common; plane 3 holds NaNs, plane 4 only -inf and ties, and
    // plane 5's first window is all -inf.
    std::vector<double> x = values_of(ds::floor(ds::rand({planes * h * w}) * 4.0));
    x[3 * h * w + 10] = std::nan("");
    x[3 * h * w + 11] = std::nan("");
    x[3 * h * w + 40] = std::nan("");
    for (std::int64_t i = 4 * h * w; i < 5 * h * w; ++i) x[i] = i % 3 == 0 ? -INFINITY : -1.0;
    for (const std::int64_t at : {std::int64_t{0}, std::int64_t{1}, w, w + 1})
      x[5 * h * w + at] = -INFINITY;
    check_pool_2x2(x, planes, h, w, dtype);
  }
  SECTION("rows around a register's width, which run on into the plane's next rows") {
    for (const std::int64_t h : {2, 3, 4, 5, 6, 7, 8})
      for (const std::int64_t w : {2, 3, 4, 5, 8, 9, 16, 17, 18, 24, 34}) {
        INFO(h << "x" << w);
        check_pool_2x2(values_of(ds::floor(ds::rand({4 * h * w}) * 4.0)), 4, h, w, dtype);
      }
  }
  SECTION("a batch large enough for both threads, forward and backward") {
    const std::int64_t planes = 2 * 40, h = 24, w = 24;
    check_pool_2x2(values_of(ds::floor(ds::rand({planes * h * w}) * 16.0)), planes, h, w, dtype);
  }
}

TEST_CASE("Linear and Conv2d start from PyTorch's default initialisation", "[nn][init]") {
  ds::manual_seed(31);
  const nn::Linear linear(400, 256);
  // kaiming_uniform(a = sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the bias.
  check_uniform("Linear weight", linear.weight(), 1.0 / std::sqrt(400.0));
  check_uniform("Linear bias", linear.bias(), 1.0 / std::sqrt(400.0));

  const nn::Conv2d conv(nn::Conv2dOptions::square(16, 48, 3));
  check_uniform("Conv2d weight", conv.weight(), 1.0 / std::sqrt(16.0 * 9.0));
  CHECK(conv.weight().shape() == ds::Shape{48, 16, 3, 3});
  const nn::Conv2d grouped(nn::Conv2dOptions::square(16, 256, 3, 1, 0, true, /*groups=*/4));
  check_uniform("grouped Conv2d weight", grouped.weight(), 1.0 / std::sqrt(4.0 * 9.0));
  check_uniform("grouped Conv2d bias", grouped.bias(), 1.0 / std::sqrt(4.0 * 9.0));

  const auto bn = nn::batch_norm2d(5);
  CHECK(values_of(parameter(*bn, "weight")) == std::vector<double>(5, 1.0));
  CHECK(values_of(parameter(*bn, "bias")) == std::vector<double>(5, 0.0));
}

TEST_CASE("initialisers follow PyTorch's formulas", "[nn][init]") {
  ds::Generator gen(32);
  CHECK(nn::init::fans({64, 16, 3, 3}) == std::pair<std::int64_t, std::int64_t>{144, 576});
  CHECK_THROWS_AS(nn::init::fans({7}), ds::Error);

  const Tensor w = Tensor::empty({128, 96});
  nn::init::kaiming_uniform_(w, 0.0, nn::init::FanMode::fan_in, gen);
  check_uniform("kaiming_uniform fan_in", w, std::sqrt(2.0) * std::sqrt(3.0 / 96.0));
  nn::init::kaiming_uniform_(w, 0.0, nn::init::FanMode::fan_out, gen);
  check_uniform("kaiming_uniform fan_out", w, std::sqrt(2.0) * std::sqrt(3.0 / 128.0));
  nn::init::xavier_uniform_(w, 1.0, gen);
  check_uniform("xavier_uniform", w, std::sqrt(6.0 / (96.0 + 128.0)));

  nn::init::kaiming_normal_(w, 0.0, nn::init::FanMode::fan_out, gen);
  const Moments m = moments_of(w);
  const double variance = 2.0 / 128.0;  // gain^2 / fan_out
  CHECK(std::abs(m.mean) < 5.0 * std::sqrt(variance / static_cast<double>(w.numel())));
  CHECK(m.variance == Approx(variance).epsilon(0.05));
}

TEST_CASE("ShortcutA subsamples by 2 and pads planes/4 zero channels on both sides",
          "[nn][shortcut]") {
  nn::ShortcutA shortcut(8);
  const Tensor x = Tensor::arange(0, 2 * 4 * 5 * 5, 1, DType::f32).reshape({2, 4, 5, 5});
  const Tensor y = shortcut(x);
  REQUIRE(y.shape() == ds::Shape{2, 8, 3, 3});  // odd sizes keep the last row and column
  const auto v = values_of(y);
  for (std::int64_t n = 0; n < 2; ++n)
    for (std::int64_t c = 0; c < 8; ++c)
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t j = 0; j < 3; ++j) {
          const double got = v[static_cast<std::size_t>(((n * 8 + c) * 3 + i) * 3 + j)];
          const bool padding = c < 2 || c >= 6;
          const double want =
              padding ? 0.0 : static_cast<double>(((n * 4 + (c - 2)) * 5 + 2 * i) * 5 + 2 * j);
          INFO("n " << n << " c " << c << " i " << i << " j " << j);
          CHECK(got == want);
        }

  // The gradient reaches exactly the kept pixels.
  const Tensor leaf = ds::randn({1, 2, 4, 4}).requires_grad_();
  ds::sum(nn::ShortcutA(4)(leaf)).backward();
  const auto grad = values_of(leaf.grad());
  for (std::size_t k = 0; k < grad.size(); ++k) {
    const std::size_t row = (k / 4) % 4, col = k % 4;
    CHECK(grad[k] == (row % 2 == 0 && col % 2 == 0 ? 1.0 : 0.0));
  }
}

TEST_CASE("summarize reports output shapes, parameters, bytes and MACs", "[nn][summary]") {
  const auto model_ptr = summary_model();
  nn::Sequential& model = *model_ptr;
  const nn::ModelSummary summary = nn::summarize(model, {1, 3, 8, 8});
  REQUIRE(summary.layers.size() == 6);
  struct Expected {
    const char* name;
    const char* type;
    ds::Shape output;
    std::int64_t parameters, bytes, macs;
  };
  const std::vector<Expected> expected{
      // 8 outputs of 8x8, each 3*3*3 taps; weight 8*3*3*3 + bias 8.
      {"0", "Conv2d", {1, 8, 8, 8}, 224, 224 * 4, 8 * 8 * 8 * 27},
      // weight, bias, running mean and variance in f32, the i32 counter.
      {"1", "BatchNorm2d", {1, 8, 8, 8}, 16, 4 * 8 * 4 + 4, 0},
      {"2", "ReLU", {1, 8, 8, 8}, 0, 0, 0},
      {"3", "MaxPool2d", {1, 8, 4, 4}, 0, 0, 0},
      {"4", "Flatten", {1, 128}, 0, 0, 0},
      {"5", "Linear", {1, 10}, 1290, 1290 * 4, 128 * 10},
  };
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& got = summary.layers[i];
    INFO("layer " << got.name);
    CHECK(got.name == expected[i].name);
    CHECK(got.type == expected[i].type);
    CHECK(got.output == expected[i].output);
    CHECK(got.parameters == expected[i].parameters);
    CHECK(got.bytes == expected[i].bytes);
    CHECK(got.macs == expected[i].macs);
  }
  CHECK(summary.parameters == 224 + 16 + 1290);
  CHECK(summary.bytes == (224 + 16 + 1290) * 4 + 8 * 2 * 4 + 4);
  CHECK(summary.macs == 8 * 8 * 8 * 27 + 128 * 10);
  CHECK(summary.layers[0].kind == "FP32");
  CHECK(summary.layers[2].kind == "-");
  INFO(summary.table());
  for (const char* part : {"Conv2d", "BatchNorm2d", "[1, 8, 4, 4]", "1530 parameters", "15104"})
    CHECK(summary.table().find(part) != std::string::npos);

  // The summary runs in eval mode and restores the mode: no statistics were updated.
  CHECK(model.is_training());
  for (const auto& b : model.named_buffers())
    if (b.name == "1.num_batches_tracked") CHECK(b.tensor.item() == 0.0);
  CHECK(values_of(model.named_buffers()[0].tensor) == std::vector<double>(8, 0.0));
}

TEST_CASE("summarize accepts a module that no shared_ptr owns", "[nn][summary]") {
  nn::Sequential model({nn::make<nn::Linear>(6, 3), nn::make<nn::ReLU>()});
  const nn::ModelSummary summary = nn::summarize(model, {2, 6});
  REQUIRE(summary.layers.size() == 2);
  CHECK(summary.layers[0].name == "0");
  CHECK(summary.layers[1].output == ds::Shape{2, 3});
  CHECK(summary.macs == 2 * 6 * 3);
}

TEST_CASE("inputs that do not fit a layer are reported with their shapes", "[nn][errors]") {
  nn::Conv2d conv(nn::Conv2dOptions::square(3, 4, 3));
  CHECK_THROWS_MATCHES(conv(Tensor::zeros({1, 2, 5, 5})), ds::Error,
                       MessageContains({"conv2d", "[1, 2, 5, 5]", "[4, 3, 3, 3]"}));
  CHECK_THROWS_MATCHES(conv(Tensor::zeros({2, 5, 5})), ds::Error,
                       MessageContains({"conv2d", "[2, 5, 5]"}));
  CHECK_THROWS_MATCHES(nn::Conv2d(nn::Conv2dOptions::square(6, 4, 3, 1, 0, true, 4)), ds::Error,
                       MessageContains({"6", "4 groups"}));

  nn::Linear linear(4, 2);
  CHECK_THROWS_MATCHES(linear(Tensor::zeros({3, 5})), ds::Error,
                       MessageContains({"linear", "[3, 5]", "[2, 4]"}));

  const auto bn = nn::batch_norm2d(3);
  CHECK_THROWS_MATCHES((*bn)(Tensor::zeros({2, 3})), ds::Error, MessageContains({"[2, 3]"}));
  CHECK_THROWS_MATCHES((*bn)(Tensor::zeros({2, 4, 2, 2})), ds::Error,
                       MessageContains({"[2, 4, 2, 2]"}));
  CHECK_THROWS_MATCHES(nn::MaxPool2d(2)(Tensor::zeros({4, 4})), ds::Error,
                       MessageContains({"max_pool2d", "[4, 4]"}));
  CHECK_THROWS_MATCHES(F::avg_pool2d(Tensor::zeros({1, 2, 2, 3}), ds::Window{3, 3, 1, 1}),
                       ds::Error, MessageContains({"avg_pool2d", "3x3 window", "2x3 input"}));
  // A whole-image window that its dilation makes too wide is not a global pool.
  CHECK_THROWS_MATCHES(
      F::avg_pool2d(Tensor::zeros({1, 2, 4, 4}), ds::Window{4, 4, 4, 4, 0, 0, 2, 2}), ds::Error,
      MessageContains({"avg_pool2d", "dilation 2x2", "does not fit a 4x4 input"}));
  for (const ds::Window& invalid :
       {ds::Window{2, 2, 0, 2}, ds::Window{0, 2, 1, 1}, ds::Window{2, 2, 1, 1, -1, 0},
        ds::Window{2, 2, 1, 1, 0, 0, 1, 0}})
    for (const auto& pool :
         {+[](const Tensor&x, const ds::Window&w) { return F::avg_pool2d(x, w); },
          +[](const Tensor&x, const ds::Window&w) { return F::max_pool2d(x, w); }})
      CHECK_THROWS_MATCHES(pool(Tensor::zeros({1, 1, 4, 4}), invalid), ds::Error,
                           MessageContains({"invalid window"}));
}

TEST_CASE("avg_pool2d with dilation is the mean of its unfolded windows", "[nn]") {
  // PyTorch's avg_pool2d takes no dilation, so no golden values: the definition instead, the
  // mean over unfold's columns with zero padding (the direct loops replaced that composition).
  ds::manual_seed(24);
  const Tensor x = ds::randn({2, 3, 9, 8}).requires_grad_();
  const ds::Window w{3, 2, 2, 1, 1, 1, 2, 3};
  const Tensor pooled = F::avg_pool2d(x, w);
  const Tensor columns = ds::unfold(x.reshape({6, 1, 9, 8}), w, 0.0);
  const Tensor expected = ds::mean(columns, {1}).reshape(pooled.shape());
  const Tensor g = ds::randn(pooled.shape());
  pooled.backward(g);
  const std::vector<double> grad = values_of(x.grad());
  x.set_grad(Tensor());
  expected.backward(g);
  const auto close = [](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::abs(a[i] - b[i]) > 1e-6 * (1 + std::abs(b[i]))) return false;
    return true;
  };
  CHECK(close(values_of(pooled), values_of(expected)));
  CHECK(close(grad, values_of(x.grad())));
}

TEST_CASE("batch_norm of inputs without values gives empty outputs or a clear error",
          "[nn][errors]") {
  // No channels (the layers refuse 0 features; the functional form takes any shape): nothing to
  // normalise at inference, nothing to estimate in training.
  const Tensor no_channels = Tensor::zeros({2, 0, 3, 3});
  const Tensor no_statistics = Tensor::zeros({0});
  CHECK(
      F::batch_norm(no_channels, no_statistics, no_statistics, Tensor(), Tensor(), false, 0.1, 1e-5)
          .shape() == ds::Shape{2, 0, 3, 3});
  CHECK_THROWS_MATCHES(
      F::batch_norm(no_channels, no_statistics, no_statistics, Tensor(), Tensor(), true, 0.1, 1e-5),
      ds::Error, MessageContains({"more than one value per channel", "[2, 0, 3, 3]"}));
  // An empty batch normalised by its own (undefined) statistics: an empty output, no crash.
  CHECK(F::batch_norm(Tensor::zeros({0, 4, 2, 2}), Tensor(), Tensor(), Tensor(), Tensor(), false,
                      0.1, 1e-5)
            .shape() == ds::Shape{0, 4, 2, 2});
}

TEST_CASE("batch statistics of values far from zero keep their variance", "[nn]") {
  // Values a million from zero, spread by a fraction of one: a single pass of sums of x and x^2,
  // even in double, would lose the variance's low digits (a relative error near 1e-4 here).
  const std::int64_t batch = 4, channels = 2, plane = 9;
  std::vector<double> values;
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t c = 0; c < channels; ++c)
      for (std::int64_t i = 0; i < plane; ++i)
        values.push_back((c == 0 ? 1e6 : -3e5) + 0.25 * static_cast<double>((n * plane + i) % 7));
  for (const DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = Tensor::from_vector(values, {batch, channels, 3, 3}).to(dtype);
    Tensor running_mean = Tensor::zeros({channels}, DType::f64);
    Tensor running_var = Tensor::zeros({channels}, DType::f64);
    // Momentum 1: the running statistics become the batch's (the variance unbiased).
    F::batch_norm(x, running_mean, running_var, Tensor(), Tensor(), true, 1.0, 1e-5);
    const std::vector<double> means = values_of(running_mean), vars = values_of(running_var);
    for (std::int64_t c = 0; c < channels; ++c) {
      std::vector<double> of_channel;
      for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t i = 0; i < plane; ++i)
          of_channel.push_back(values[static_cast<std::size_t>((n * channels + c) * plane + i)]);
      double mean = 0, squares = 0;
      for (const double v : of_channel) mean += v;
      mean /= static_cast<double>(of_channel.size());
      for (const double v : of_channel) squares += (v - mean) * (v - mean);
      const double variance = squares / static_cast<double>(of_channel.size() - 1);
      CHECK(means[c] == Approx(mean).epsilon(1e-12));
      CHECK(vars[c] == Approx(variance).epsilon(1e-9));
    }
  }
}

TEST_CASE("batch statistics of a channel holding an infinity are not finite", "[nn]") {
  // As PyTorch: the mean is infinite, the variance (inf - inf) NaN, every output of the channel
  // NaN; the other channel is untouched.
  std::vector<double> values(2 * 2 * 4);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 5);
  values[6] = std::numeric_limits<double>::infinity();  // image 0, channel 1, not its first value
  const Tensor x = Tensor::from_vector(values, {2, 2, 2, 2}).to(DType::f32);
  const Tensor mean = Tensor::zeros({2}), var = Tensor::ones({2});
  const auto y = values_of(F::batch_norm(x, mean, var, Tensor(), Tensor(), true, 1.0, 1e-5));
  const auto means = values_of(mean), vars = values_of(var);
  CHECK(std::isinf(means[1]));
  CHECK(std::isnan(vars[1]));
  CHECK(std::isfinite(means[0]));
  CHECK(std::isfinite(vars[0]));
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(std::isnan(y[i]) == (i / 4 % 2 == 1));
}

TEST_CASE("batch_norm at inference: no gradient through 0 * an infinite input, buffers only",
          "[nn][errors]") {
  // With running statistics the input gradient is scale * g (masked by the output with relu):
  // an infinite input, clamped to 0 by the relu, gets 0, not NaN from a vanishing term times it.
  std::vector<double> values{1, -2, 3, -4, 0.5, -0.25, 2, -1};
  values[1] = -std::numeric_limits<double>::infinity();
  const Tensor x = Tensor::from_vector(values, {2, 2, 2}).reshape({2, 2, 2, 1}).requires_grad_();
  const Tensor mean = Tensor::zeros({2}), var = Tensor::ones({2});
  const Tensor y = F::batch_norm_relu(x, mean, var, Tensor(), Tensor(), false, 0.1, 1e-5);
  ds::sum(y).backward();
  for (const double g : values_of(x.grad())) CHECK(std::isfinite(g));
  CHECK(values_of(x.grad())[1] == 0.0);
  // As PyTorch: running statistics are buffers, not differentiable.
  CHECK_THROWS_MATCHES(F::batch_norm(x, Tensor::zeros({2}).requires_grad_(), var, Tensor(),
                                     Tensor(), false, 0.1, 1e-5),
                       ds::Error, MessageContains({"batch_norm", "running statistics"}));
  // One running statistic without the other would leave the back-end reading a missing tensor.
  CHECK_THROWS_MATCHES(F::batch_norm(x, mean, Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5),
                       ds::Error, MessageContains({"batch_norm", "given together"}));
}

TEST_CASE("batch_norm_relu and batch_norm_add_relu are the ops they fuse, values and gradients",
          "[nn]") {
  // The fused loops compute the same float operations in the same order as the separate ops:
  // equal, not close. Some of the 300 outputs are clamped, some not.
  for (const bool add_residual : {false, true})
    for (const DType dtype : {DType::f32, DType::f64})
      for (const bool training : {true, false}) {
        INFO((add_residual ? "add_relu, " : "relu, ")
             << (dtype == DType::f32 ? "f32" : "f64") << (training ? ", training" : ", eval"));
        ds::manual_seed(21);
        const Tensor x0 = ds::randn({4, 3, 5, 5}).to(dtype);
        const Tensor w0 = ds::randn({3}).to(dtype), b0 = ds::randn({3}).to(dtype);
        const Tensor r0 = ds::randn({4, 3, 5, 5}).to(dtype);
        const Tensor g = ds::randn({4, 3, 5, 5}).to(dtype);
        std::vector<std::vector<double>> results[2];
        for (const bool fused : {false, true}) {
          const Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(),
                       b = b0.clone().requires_grad_(), r = r0.clone().requires_grad_();
          const Tensor mean = Tensor::full({3}, 0.1, dtype), var = Tensor::full({3}, 2.0, dtype);
          Tensor y;
          if (fused && add_residual)
            y = F::batch_norm_add_relu(x, r, mean, var, w, b, training, 0.1, 1e-5);
          else if (fused)
            y = F::batch_norm_relu(x, mean, var, w, b, training, 0.1, 1e-5);
          else if (add_residual)
            y = ds::relu(F::batch_norm(x, mean, var, w, b, training, 0.1, 1e-5) + r);
          else
            y = ds::relu(F::batch_norm(x, mean, var, w, b, training, 0.1, 1e-5));
          y.backward(g);
          results[fused] = {values_of(y),        values_of(x.grad()), values_of(w.grad()),
                            values_of(b.grad()), values_of(mean),     values_of(var)};
          if (add_residual) results[fused].push_back(values_of(r.grad()));
        }
        CHECK(results[1] == results[0]);
        const auto& y = results[1][0];
        const auto clamped = std::count(y.begin(), y.end(), 0.0);
        CHECK(clamped > 10);
        CHECK(clamped < 290);
      }
}

TEST_CASE("BatchNorm::add_relu is the layer's output plus the residual through relu", "[nn]") {
  ds::manual_seed(22);
  const auto separate = nn::batch_norm2d(3), fused = nn::batch_norm2d(3);
  const Tensor x = ds::randn({2, 3, 4, 4}), r = ds::randn({2, 3, 4, 4});
  for (const bool training : {true, false}) {
    separate->train(training);
    fused->train(training);
    CHECK(values_of(fused->add_relu(x, r)) == values_of(ds::relu((*separate)(x) + r)));
    const auto buffers = fused->named_buffers(), expected = separate->named_buffers();
    for (std::size_t i = 0; i < buffers.size(); ++i)
      CHECK(values_of(buffers[i].tensor) == values_of(expected[i].tensor));
  }
  // A refused call leaves the layer as it was: no batch counted.
  fused->train();
  const auto counted = values_of(fused->named_buffers()[2].tensor);
  CHECK_THROWS_MATCHES(nn::batch_norm2d_relu(3)->add_relu(x, r), ds::Error,
                       MessageContains({"BatchNorm2d", "add_relu", "then_relu"}));
  CHECK_THROWS_MATCHES(fused->add_relu(x, Tensor()), ds::Error,
                       MessageContains({"BatchNorm2d", "add_relu", "undefined residual"}));
  CHECK_THROWS_MATCHES(fused->add_relu(x, ds::randn({2, 3, 4, 5})), ds::Error,
                       MessageContains({"batch_norm_add_relu", "[2, 3, 4, 5]", "[2, 3, 4, 4]"}));
  CHECK_THROWS_MATCHES(fused->add_relu(x, r.to(DType::f64)), ds::Error,
                       MessageContains({"batch_norm_add_relu", "residual"}));
  CHECK(values_of(fused->named_buffers()[2].tensor) == counted);
}

TEST_CASE("batch_norm_add_relu's gradients when only some inputs want them", "[nn]") {
  // The residual's gradient alone (x without one), the residual being x itself, and [N, C].
  ds::manual_seed(23);
  for (const ds::Shape& shape : {ds::Shape{4, 3, 2, 5}, ds::Shape{6, 3}}) {
    const Tensor x0 = ds::randn(shape), r0 = ds::randn(shape), g = ds::randn(shape);
    const Tensor w = ds::randn({3}), b = ds::randn({3});
    std::vector<double> residual_only[2], same_tensor[2];
    for (const bool is_fused : {false, true}) {
      const auto op = [&](const Tensor& x, const Tensor& r) {
        if (is_fused)
          return F::batch_norm_add_relu(x, r, Tensor(), Tensor(), w, b, true, 0.1, 1e-5);
        return ds::relu(F::batch_norm(x, Tensor(), Tensor(), w, b, true, 0.1, 1e-5) + r);
      };
      const Tensor r = r0.clone().requires_grad_();
      op(x0, r).backward(g);
      residual_only[is_fused] = values_of(r.grad());
      const Tensor x = x0.clone().requires_grad_();
      op(x, x).backward(g);
      same_tensor[is_fused] = values_of(x.grad());
    }
    CHECK(residual_only[1] == residual_only[0]);
    CHECK(same_tensor[1] == same_tensor[0]);
  }
}

TEST_CASE("an inference output of batch_norm keeps its gradient after a training step",
          "[nn][batchnorm]") {
  // The training step updates the running statistics in place after the inference output was
  // computed from them; its gradient must not depend on them.
  const auto bn = nn::batch_norm2d(3);
  const Tensor x = ds::randn({4, 3, 2, 2});
  bn->eval();
  const Tensor y = (*bn)(x);
  bn->train();
  (*bn)(x * 2.0 + 1.0);
  ds::sum(y).backward();
  for (const auto& p : bn->named_parameters()) CHECK(p.tensor.grad().defined());
}

TEST_CASE("loss labels outside [0, C) are reported with the label", "[nn][errors]") {
  const Tensor logits = ds::randn({3, 4});
  const Tensor too_big = Tensor::from_vector<std::int32_t>({0, 4, 1}, {3});
  CHECK_THROWS_MATCHES(F::cross_entropy(logits, too_big), ds::Error,
                       MessageContains({"label 4", "position 1", "[0, 4)"}));
  const Tensor negative = Tensor::from_vector<std::int32_t>({0, 1, -1}, {3});
  CHECK_THROWS_MATCHES(F::nll_loss(ds::log_softmax(logits, 1), negative), ds::Error,
                       MessageContains({"label -1", "position 2"}));
  const Tensor short_target = Tensor::from_vector<std::int32_t>({0, 1}, {2});
  CHECK_THROWS_MATCHES(F::cross_entropy(logits, short_target), ds::Error,
                       MessageContains({"[3]", "i32[2]"}));
}
