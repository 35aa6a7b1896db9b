// Results that must not depend on how the work is shared among threads. A convolution's items
// (images or bands of one) and batch norm's channels are split over the threads, differently for
// one thread and for two; the outputs must be the same bits either way, and run after run, so
// that the split can change (to hand items out as threads come free, say) without changing a
// result. A scratch buffer that leaked one item's values into another's would show here. The weight
// gradient of a convolution is summed in per-thread partials, in thread order: equal run after
// run for a given thread count.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "nn/functional.hpp"
#include "support/golden.hpp"
#include "support/thread_count.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::Tensor;
using ds::test::values_of;
namespace F = ds::nn::functional;

struct ConvCase {
  std::string name;
  ds::Shape input;
  std::int64_t out_channels, kernel;
  F::Conv2dParams params;
};

// The forward's output and, after a backward from a fixed output gradient, the input's and the
// weight's gradients.
struct ConvResults {
  std::vector<double> output, input_gradient, weight_gradient;
};

ConvResults convolve(const ConvCase& c, int threads) {
  const ds::test::ThreadCount count(threads);
  ds::manual_seed(5);
  const Tensor x = ds::randn(c.input).requires_grad_();
  const Tensor w = ds::randn({c.out_channels, c.input[1], c.kernel, c.kernel}).requires_grad_();
  const Tensor y = F::conv2d(x, w, Tensor(), c.params);
  y.backward(ds::randn(y.shape()));
  return {values_of(y), values_of(x.grad()), values_of(w.grad())};
}

}  // namespace

TEST_CASE("convolutions give the same bits whichever thread takes an item", "[nn][threads]") {
  // Several images per thread (direct convolutions, strided or not, a 5x5 window without
  // padding, a pointwise product) and one large image in bands of rows.
  const std::vector<ConvCase> cases{
      {"3x3 same, 16 -> 16 on 32x32", {6, 16, 32, 32}, 16, 3, {1, 1, 1, 1}},
      {"3x3 stride 2, 16 -> 32 on 32x32", {5, 16, 32, 32}, 32, 3, {2, 2, 1, 1}},
      {"5x5 without padding, 20 -> 50 on 12x12", {7, 20, 12, 12}, 50, 5, {}},
      {"1x1, 16 -> 32 on 16x16", {4, 16, 16, 16}, 32, 1, {}},
      // 37 MB of columns: over the 8 MiB a band's scratch may take, so bands even on one thread.
      {"3x3 same on one 16-channel 256x256 image", {1, 16, 256, 256}, 8, 3, {1, 1, 1, 1}},
  };
  for (const ConvCase& c : cases) {
    INFO(c.name);
    const ConvResults one = convolve(c, 1), two = convolve(c, 2), again = convolve(c, 2);
    CHECK(two.output == one.output);
    CHECK(again.output == two.output);
    CHECK(again.input_gradient == two.input_gradient);
    CHECK(again.weight_gradient == two.weight_gradient);
  }
}

TEST_CASE("batch norm gives the same bits whichever thread takes a channel", "[nn][threads]") {
  const auto run = [](int threads) {
    const ds::test::ThreadCount count(threads);
    ds::manual_seed(6);
    const Tensor x = ds::randn({8, 24, 16, 16}).requires_grad_();
    const Tensor weight = ds::randn({24}).requires_grad_(), bias = ds::randn({24}).requires_grad_();
    const Tensor mean = Tensor::zeros({24}), var = Tensor::ones({24});
    const Tensor y = F::batch_norm_relu(x, mean, var, weight, bias, true, 0.1, 1e-5);
    y.backward(ds::randn(y.shape()));
    return std::vector<std::vector<double>>{
        values_of(y),           values_of(x.grad()), values_of(weight.grad()),
        values_of(bias.grad()), values_of(mean),     values_of(var)};
  };
  const auto one = run(1), two = run(2), again = run(2);
  CHECK(two == one);
  CHECK(again == two);
}
