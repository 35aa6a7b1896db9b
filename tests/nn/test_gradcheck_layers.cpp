// Finite-difference gradient checks (f64, full Jacobian) of the nn functional ops, covering the
// configurations whose backward is easiest to get wrong: strides, padding, dilation and groups
// in conv2d, overlapping and padded pooling windows, batch statistics in batch norm.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Tensor;
namespace F = ds::nn::functional;
using Inputs = std::vector<Tensor>;

Tensor leaf(const ds::Shape& shape, ds::Generator& gen) {
  return ds::randn(shape, DType::f64, gen).requires_grad_();
}

void check_gradients(const std::string& what, const std::function<Tensor(const Inputs&)>& fn,
                     const Inputs& inputs) {
  const auto result = ds::autograd::gradcheck(fn, inputs);
  INFO(what << ": " << result.message);
  CHECK(result.ok);
}

struct ConvConfig {
  const char* name;
  ds::Shape input, weight;
  F::Conv2dParams params;
  bool bias;
};

}  // namespace

TEST_CASE("conv2d gradients match finite differences", "[nn][gradcheck]") {
  ds::Generator gen(11);
  const std::vector<ConvConfig> configs{
      {"plain", {2, 2, 5, 4}, {3, 2, 3, 3}, {}, true},
      {"stride 2, padding 1", {1, 2, 5, 5}, {2, 2, 3, 3}, {2, 2, 1, 1, 1, 1, 1}, true},
      {"dilation 2, non-square kernel", {1, 2, 6, 6}, {2, 2, 2, 3}, {1, 2, 1, 0, 2, 2, 1}, false},
      {"groups 2", {1, 4, 4, 4}, {4, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 2}, true},
      {"depthwise", {2, 3, 4, 4}, {3, 1, 3, 3}, {2, 2, 1, 1, 1, 1, 3}, false},
      {"depthwise same", {2, 2, 5, 4}, {2, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 2}, true},
      {"depthwise, multiplier 2, dilation 2",
       {1, 2, 6, 5},
       {4, 1, 2, 3},
       {1, 2, 2, 1, 2, 2, 2},
       true},
  };
  for (const auto& c : configs) {
    Inputs inputs{leaf(c.input, gen), leaf(c.weight, gen)};
    if (c.bias) inputs.push_back(leaf({c.weight[0]}, gen));
    const F::Conv2dParams params = c.params;
    check_gradients(
        c.name,
        [params](const Inputs& in) {
          return F::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), params);
        },
        inputs);
  }
}

TEST_CASE("linear gradients match finite differences", "[nn][gradcheck]") {
  ds::Generator gen(12);
  check_gradients("with bias", [](const Inputs& in) { return F::linear(in[0], in[1], in[2]); },
                  {leaf({2, 3, 4}, gen), leaf({5, 4}, gen), leaf({5}, gen)});
  check_gradients("without bias", [](const Inputs& in) { return F::linear(in[0], in[1]); },
                  {leaf({3, 4}, gen), leaf({2, 4}, gen)});
}

TEST_CASE("pooling gradients match finite differences", "[nn][gradcheck]") {
  ds::Generator gen(13);
  // Random inputs have no ties, so max pooling is differentiable at them.
  const ds::Window overlapping{3, 3, 2, 2, 1, 1};
  check_gradients("max_pool2d overlapping, padded",
                  [&](const Inputs& in) { return F::max_pool2d(in[0], overlapping); },
                  {leaf({1, 2, 7, 6}, gen)});
  check_gradients("max_pool2d ceil mode",
                  [](const Inputs& in) {
                    return F::max_pool2d(in[0], {2, 2, 2, 2}, true);
                  },
                  {leaf({1, 2, 5, 5}, gen)});
  check_gradients("avg_pool2d padded",
                  [&](const Inputs& in) { return F::avg_pool2d(in[0], overlapping); },
                  {leaf({2, 2, 5, 6}, gen)});
  check_gradients("avg_pool2d over the whole image",
                  [](const Inputs& in) {
                    return F::avg_pool2d(in[0], ds::Window{5, 6, 5, 6});
                  },
                  {leaf({2, 3, 5, 6}, gen)});
  check_gradients("adaptive_avg_pool2d non-divisible",
                  [](const Inputs& in) { return F::adaptive_avg_pool2d(in[0], 3, 2); },
                  {leaf({1, 2, 7, 5}, gen)});
  check_gradients("adaptive_avg_pool2d divisible",
                  [](const Inputs& in) { return F::adaptive_avg_pool2d(in[0], 2, 2); },
                  {leaf({1, 2, 4, 6}, gen)});
}

TEST_CASE("batch norm gradients match finite differences", "[nn][gradcheck]") {
  ds::Generator gen(14);
  for (const bool then_relu : {false, true})
    for (const bool training : {true, false}) {
      for (const ds::Shape& shape : {ds::Shape{5, 3}, ds::Shape{2, 3, 2, 3}}) {
        // Fresh running statistics per evaluation: training updates them in place.
        const auto fn = [training, then_relu](const Inputs& in) {
          const Tensor mean = Tensor::full({3}, 0.2, DType::f64);
          const Tensor var = Tensor::full({3}, 1.5, DType::f64);
          return (then_relu ? F::batch_norm_relu : F::batch_norm)(in[0], mean, var, in[1], in[2],
                                                                  training, 0.1, 1e-5);
        };
        check_gradients(ds::concat(then_relu ? "with relu, " : "", training ? "training " : "eval ",
                                   ds::shape_str(shape)),
                        fn, {leaf(shape, gen), leaf({3}, gen), leaf({3}, gen)});
      }
    }
  for (const bool training : {true, false}) {
    const auto fn = [training](const Inputs& in) {
      const Tensor mean = Tensor::full({3}, 0.2, DType::f64);
      const Tensor var = Tensor::full({3}, 1.5, DType::f64);
      return F::batch_norm_add_relu(in[0], in[3], mean, var, in[1], in[2], training, 0.1, 1e-5);
    };
    check_gradients(
        ds::concat("with a residual and relu, ", training ? "training" : "eval"), fn,
        {leaf({2, 3, 2, 3}, gen), leaf({3}, gen), leaf({3}, gen), leaf({2, 3, 2, 3}, gen)});
  }
}

TEST_CASE("loss gradients match finite differences", "[nn][gradcheck]") {
  ds::Generator gen(15);
  const Tensor target = Tensor::from_vector<std::int32_t>({2, 0, 3, 3}, {4});
  for (const auto reduction : {F::Reduction::mean, F::Reduction::sum}) {
    const auto name = reduction == F::Reduction::mean ? "mean" : "sum";
    check_gradients(ds::concat("cross_entropy ", name),
                    [&](const Inputs& in) { return F::cross_entropy(in[0], target, reduction); },
                    {leaf({4, 5}, gen)});
    check_gradients(ds::concat("nll_loss ", name),
                    [&](const Inputs& in) { return F::nll_loss(in[0], target, reduction); },
                    {leaf({4, 5}, gen)});
  }
  check_gradients(
      "relu6 away from its kinks", [](const Inputs& in) { return F::relu6(in[0]); },
      {Tensor::from_vector<double>({-1.0, 0.5, 3.0, 5.5, 6.5, 9.0}, {2, 3}).requires_grad_()});
}
