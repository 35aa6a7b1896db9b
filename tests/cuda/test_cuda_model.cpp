// A forward and backward pass and optimizer steps on the GPU agree with the same steps on the
// CPU: the MNIST conv model with SGD, its DeepShift-PS conversion with Adam, and resnet20 (batch
// norm) with RAdam. Skips with a message when there is no GPU.
#include <catch2/catch.hpp>

#include "device_helpers.hpp"
#include "model_step.hpp"

using namespace ds;

TEST_CASE("training steps on the GPU match the CPU", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const auto [model, optimizer] = GENERATE(table<std::string, std::string>({
      {"mnist-conv", "sgd"},
      {"mnist-conv-shift", "adam"},
      {"resnet20", "radam"},
  }));
  INFO(model << " with " << optimizer);
  const test::StepResult on_cpu = test::train_steps(model, optimizer, Device::cpu());
  const test::StepResult on_gpu = test::train_steps(model, optimizer, Device::cuda());
  // Sums run in another order on the GPU; two steps keep the drift far below these bounds.
  test::require_same_training(on_cpu, on_gpu, 2e-3, 2e-4);
}
