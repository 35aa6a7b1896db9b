// depthwise_convolve (a convolution with one group per input channel, M output channels each)
// against the convolution by definition, in f64 on small integers so that every sum is exact,
// and the CPU kernels against the back-end's composed default (unfolded images and a product
// batched over the channels), over the geometries whose index arithmetic differs: "same"
// padding, strides on odd and even maps, dilation, non-square windows, padding wider than the
// image, multipliers above 1, and empty batches and channels. nn's gradcheck covers the
// gradients by finite differences through conv2d with groups.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "deepshift.hpp"
#include "default_agreement.hpp"
#include "support/golden.hpp"
#include "support/thread_count.hpp"

using namespace ds;

namespace {

struct Geometry {
  const char* name;
  Shape input;  // [C, H, W]; the tests vary the batch
  std::int64_t multiplier;
  Window window;
};

const std::vector<Geometry> kGeometries{
    {"3x3 same", {4, 6, 5}, 1, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"3x3 same on a 32x32 map", {3, 32, 32}, 1, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"3x3 stride 2", {3, 7, 7}, 1, {3, 3, 2, 2, 1, 1, 1, 1}},
    {"3x3 stride 2 on an even map", {2, 8, 8}, 1, {3, 3, 2, 2, 1, 1, 1, 1}},
    {"5x5 dilation 2", {2, 9, 8}, 1, {5, 5, 1, 1, 4, 4, 2, 2}},
    {"2x3 stride (2, 1), multiplier 2", {3, 7, 8}, 2, {2, 3, 2, 1, 1, 0, 1, 2}},
    {"3x3 multiplier 3", {2, 5, 5}, 3, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"1x1", {3, 4, 3}, 1, {1, 1, 1, 1, 0, 0, 1, 1}},
    {"padding wider than the image", {2, 2, 3}, 1, {3, 3, 1, 1, 4, 4, 1, 1}},
    {"no channels", {0, 5, 5}, 2, {3, 3, 1, 1, 1, 1, 1, 1}},
};

Tensor small_integers(const Shape& shape, std::mt19937& rng) {
  std::uniform_int_distribution<int> value(-3, 3);
  std::vector<double> values(static_cast<std::size_t>(numel_of(shape)));
  for (double& v : values) v = value(rng);
  return Tensor::from_vector(values, shape);
}

// The convolution and its gradients by definition, every term visited once:
// out[n, o, p] = sum over taps of weight[o, t] * x[n, o / M, the tap's pixel of p].
struct ByDefinition {
  std::vector<double> out, grad_x, grad_weight;
};
ByDefinition by_definition(const Tensor& x, const Tensor& weight, const Tensor& g,
                           std::int64_t multiplier, const Window& w) {
  const auto& s = x.shape();
  const std::int64_t batch = s[0], channels = s[1], height = s[2], width = s[3];
  const std::int64_t out_h = w.out_h(height), out_w = w.out_w(width);
  const std::int64_t outputs = channels * multiplier, taps = w.kernel_h * w.kernel_w;
  const auto xs = x.to_vector<double>(), ws = weight.to_vector<double>();
  const auto gs = g.to_vector<double>();
  ByDefinition r{std::vector<double>(gs.size()), std::vector<double>(xs.size()),
                 std::vector<double>(ws.size())};
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t o = 0; o < outputs; ++o)
      for (std::int64_t oy = 0; oy < out_h; ++oy)
        for (std::int64_t ox = 0; ox < out_w; ++ox)
          for (std::int64_t ky = 0; ky < w.kernel_h; ++ky)
            for (std::int64_t kx = 0; kx < w.kernel_w; ++kx) {
              const std::int64_t iy = oy * w.stride_h - w.pad_h + ky * w.dilation_h;
              const std::int64_t ix = ox * w.stride_w - w.pad_w + kx * w.dilation_w;
              if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
              const auto out =
                  static_cast<std::size_t>((n * outputs + o) * out_h * out_w + oy * out_w + ox);
              const auto in = static_cast<std::size_t>(
                  ((n * channels + o / multiplier) * height + iy) * width + ix);
              const auto tap = static_cast<std::size_t>(o * taps + ky * w.kernel_w + kx);
              r.out[out] += ws[tap] * xs[in];
              r.grad_x[in] += ws[tap] * gs[out];
              r.grad_weight[tap] += gs[out] * xs[in];
            }
  return r;
}

Shape out_shape(std::int64_t batch, const Geometry& geometry) {
  const Window& w = geometry.window;
  return {batch, geometry.input[0] * geometry.multiplier,
          w.out_h(geometry.input[1]) * w.out_w(geometry.input[2])};
}

}  // namespace

TEST_CASE("depthwise_convolve and its gradients equal the convolution by definition",
          "[tensor][convolve]") {
  std::mt19937 rng(7);
  for (const Geometry& geometry : kGeometries)
    for (const std::int64_t batch : {0, 1, 3}) {
      const Window& w = geometry.window;
      const Tensor x =
          small_integers({batch, geometry.input[0], geometry.input[1], geometry.input[2]}, rng)
              .requires_grad_();
      const Tensor weight =
          small_integers({geometry.input[0] * geometry.multiplier, w.kernel_h * w.kernel_w}, rng)
              .requires_grad_();
      const Tensor g = small_integers(out_shape(batch, geometry), rng);
      const ByDefinition expected = by_definition(x, weight, g, geometry.multiplier, w);
      const Tensor out = depthwise_convolve(x, weight, w);
      INFO(geometry.name << ", batch " << batch);
      REQUIRE(out.shape() == out_shape(batch, geometry));
      CHECK(out.to_vector<double>() == expected.out);
      out.backward(g);
      CHECK(x.grad().to_vector<double>() == expected.grad_x);
      CHECK(weight.grad().to_vector<double>() == expected.grad_weight);
    }
}

TEST_CASE("the CPU depthwise convolution agrees with the back-end's composed default",
          "[tensor][convolve]") {
  const test::ThreadCount two_threads(2);
  Generator gen(8);
  Backend& cpu = backend_for(Device::cpu());
  for (const Geometry& geometry : kGeometries) {
    const Window& w = geometry.window;
    const Tensor x =
        randn({7, geometry.input[0], geometry.input[1], geometry.input[2]}, DType::f32, gen);
    const Tensor weight =
        randn({geometry.input[0] * geometry.multiplier, w.kernel_h * w.kernel_w}, DType::f32, gen);
    INFO(geometry.name);
    test::require_default_agreement(
        {[&](const Tensor& out) { cpu.depthwise_conv2d(x, weight, w, out); },
         [&](const Tensor& out) { cpu.Backend::depthwise_conv2d(x, weight, w, out); },
         [&](const Tensor& g, const Tensor& gx, const Tensor& gw) {
           cpu.depthwise_conv2d_backward(x, weight, g, w, gx, gw);
         },
         [&](const Tensor& g, const Tensor& gx, const Tensor& gw) {
           cpu.Backend::depthwise_conv2d_backward(x, weight, g, w, gx, gw);
         }},
        x, weight, out_shape(7, geometry), gen);
  }
}

TEST_CASE("an infinite input reaches only the weight gradients of the taps that read it",
          "[tensor][convolve]") {
  // A 1x2 window on 2x3 planes: the first tap reads columns 0 and 1, the second 1 and 2, so an
  // infinite value in column 2 leaves the first tap's gradient finite (the stride-1 kernel's
  // rows laid out with gaps multiply that value by the gaps' zeros, which must not be summed).
  std::vector<double> values{1, 2, std::numeric_limits<double>::infinity(), 3, 4, 5};
  const Tensor x = Tensor::from_vector(values, {1, 1, 2, 3}).requires_grad_();
  const Tensor weight = Tensor::from_vector(std::vector<double>{1, 1}, {1, 2}).requires_grad_();
  depthwise_convolve(x, weight, Window{1, 2, 1, 1, 0, 0, 1, 1}).sum().backward();
  const auto grad = weight.grad().to_vector<double>();
  CHECK(grad[0] == 1 + 2 + 3 + 4);
  CHECK(std::isinf(grad[1]));
}

TEST_CASE("conv2d with a group per input channel is one depthwise_convolve node",
          "[tensor][convolve]") {
  Generator gen(9);
  const Tensor x = randn({2, 3, 5, 5}, DType::f64, gen).requires_grad_();
  const Tensor weight = randn({6, 1, 3, 3}, DType::f64, gen).requires_grad_();
  const nn::functional::Conv2dParams params{1, 1, 1, 1, 1, 1, 3};
  const Tensor out = nn::functional::conv2d(x, weight, Tensor(), params);
  // The node below the result's reshape to [N, O, H, W].
  REQUIRE(out.grad_fn()->next().size() == 1);
  CHECK(out.grad_fn()->next()[0]->name() == "depthwise_convolve");
  const Tensor g = randn(out.shape(), DType::f64, gen);
  out.backward(g);
  // conv2d_gradients (the shift layers' backward) gives the same gradients.
  const auto grads = nn::functional::conv2d_gradients(x, weight, g, params, {true, true});
  CHECK(grads[0].to_vector<double>() == x.grad().to_vector<double>());
  CHECK(grads[1].to_vector<double>() == weight.grad().to_vector<double>());
}

TEST_CASE("depthwise_convolve refuses operands that do not fit", "[tensor][convolve][errors]") {
  const Window w{3, 3, 1, 1, 1, 1, 1, 1};
  CHECK_THROWS_WITH(depthwise_convolve(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({3, 9}), w),
                    Catch::Contains("[3, 9]") && Catch::Contains("[C * M, 9]"));
  CHECK_THROWS_WITH(depthwise_convolve(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({2, 4}), w),
                    Catch::Contains("depthwise_convolve"));
  CHECK_THROWS_WITH(
      depthwise_convolve(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({2, 9}, DType::f64), w),
      Catch::Contains("depthwise_convolve"));
  CHECK_THROWS_WITH(depthwise_convolve(Tensor::zeros({1, 2, 1, 1}), Tensor::zeros({2, 9}),
                                       Window{3, 3, 1, 1, 0, 0, 1, 1}),
                    Catch::Contains("does not fit a 1x1 input"));
  // Wider than the input by less than the stride: no position (the kernel's taps would read past
  // its padded plane).
  CHECK_THROWS_WITH(depthwise_convolve(Tensor::zeros({1, 2, 2, 2}), Tensor::zeros({2, 9}),
                                       Window{3, 3, 2, 2, 0, 0, 1, 1}),
                    Catch::Contains("does not fit a 2x2 input"));
}
