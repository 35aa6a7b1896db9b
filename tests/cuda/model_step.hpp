#pragma once
// Two training steps of a small model on a given device, for comparing devices: forward,
// cross-entropy loss, backward and an optimizer update, all on `device`; the results come back
// to the host for comparison.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "nn/functional.hpp"
#include "nn/models/mnist.hpp"
#include "nn/models/zoo.hpp"
#include "optim/adam.hpp"
#include "optim/radam.hpp"
#include "optim/sgd.hpp"
#include "shiftops/convert.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace ds::test {

struct StepResult {
  std::vector<double> losses;
  std::vector<Tensor> parameters;  // after the steps, on the host
  std::vector<Tensor> gradients;   // of the last step, on the host
};

// model: "mnist-conv", "mnist-conv-shift" (DeepShift-PS) or "resnet20" (batch norm);
// optimizer: "sgd" (momentum, weight decay), "adam" or "radam".
inline StepResult train_steps(const std::string& model_name, const std::string& optimizer,
                              Device device) {
  manual_seed(11);
  const bool cifar = model_name == "resnet20";
  nn::ModulePtr model =
      cifar ? nn::models::create("cifar10", "resnet20") : nn::models::conv_mnist();
  if (model_name == "mnist-conv-shift") shift::convert_to_shift(*model, shift::kConvertAll, {});
  model->train();
  const Shape input = cifar ? Shape{4, 3, 32, 32} : Shape{8, 1, 28, 28};
  const Tensor images = randn(input).to(device);
  const Tensor labels = (rand({input[0]}) * 10.0).to(DType::i32).to(device);
  model->to(device);

  std::vector<optim::NamedParameter> params;
  for (const auto& [name, tensor] : model->named_parameters()) params.push_back({name, tensor});
  std::unique_ptr<optim::Optimizer> opt;
  if (optimizer == "sgd")
    opt = std::make_unique<optim::SGD>(
        params, optim::SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4});
  else if (optimizer == "adam")
    opt = std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = 1e-3});
  else
    opt = std::make_unique<optim::RAdam>(params, optim::RAdamOptions{.lr = 1e-3});

  StepResult result;
  for (int step = 0; step < 2; ++step) {
    opt->zero_grad();
    const Tensor logits = model->forward(images);
    REQUIRE(logits.device() == device);
    const Tensor loss = nn::functional::cross_entropy(logits, labels);
    loss.backward();
    opt->step();
    result.losses.push_back(loss.item());
  }
  for (const auto& p : params) {
    REQUIRE(p.tensor.device() == device);
    REQUIRE(p.tensor.grad().defined());
    REQUIRE(p.tensor.grad().device() == device);
    result.parameters.push_back(p.tensor.detach().to(Device::cpu()));
    result.gradients.push_back(p.tensor.grad().to(Device::cpu()));
  }
  for (const auto& [name, buffer] : model->named_buffers()) REQUIRE(buffer.device() == device);
  return result;
}

inline void require_same_training(const StepResult& expected, const StepResult& actual, double rtol,
                                  double atol) {
  REQUIRE(expected.losses.size() == actual.losses.size());
  for (std::size_t i = 0; i < expected.losses.size(); ++i)
    REQUIRE(actual.losses[i] == Approx(expected.losses[i]).epsilon(rtol).margin(atol));
  REQUIRE(expected.parameters.size() == actual.parameters.size());
  for (std::size_t i = 0; i < expected.parameters.size(); ++i) {
    INFO("parameter " << i);
    // A gradient's rounding error is relative to the terms summed into it, not to the sum: an
    // element near zero after cancelling terms (batch norm's backward, through resnet20's 19
    // layers) is off by about the tensor's own scale times the relative error. Different
    // summation orders (AVX2 against AVX-512 builds, the device's primitives against the CPU's
    // direct kernels) thus need a tolerance that grows with the tensor's largest magnitude.
    const double scale = max(abs(expected.gradients[i])).item();
    require_close(expected.gradients[i], actual.gradients[i], rtol, atol + rtol * scale);
    require_close(expected.parameters[i], actual.parameters[i], rtol, atol);
  }
}

}  // namespace ds::test
