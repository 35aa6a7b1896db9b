// A forward and backward pass and optimizer steps on the GPU agree with the same steps on the
// CPU: the MNIST conv model with SGD, its DeepShift-PS conversion with Adam, and resnet20 (batch
// norm) with RAdam; and the SGD kernel alone, for every option. Skips with a message when there
// is no GPU.
#include <catch2/catch.hpp>

#include "device_helpers.hpp"
#include "model_step.hpp"
#include "tensor/backend.hpp"
#include "tensor/random.hpp"

using namespace ds;

TEST_CASE("the SGD step on the GPU equals the CPU's fused loop for every option", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  struct Case {
    const char* name;
    SgdUpdate update;
    bool buffer;
  };
  const Case cases[] = {
      {"momentum, first step", {0.1, 0.1, 0.9, 0.0, false, true}, true},
      {"momentum, later step", {0.1, 0.1, 0.9, 0.0, false, false}, true},
      {"nesterov", {0.05, 0.01, 0.9, 0.0, true, false}, true},
      {"dampening", {0.05, 0.0, 0.8, 0.5, false, false}, true},
      {"no momentum", {0.2, 0.1, 0.0, 0.0, false, false}, false},
  };
  const DType dtype = GENERATE(DType::f32, DType::f64);
  for (const Case& c : cases) {
    INFO(c.name << ", " << dtype_name(dtype));
    const Tensor param = uniform({1000, 37}, -2, 2, DType::f64).to(dtype);
    const Tensor grad = uniform({1000, 37}, -1, 1, DType::f64).to(dtype);
    const Tensor buffer = c.buffer ? uniform({1000, 37}, -1, 1, DType::f64).to(dtype) : Tensor();
    const Tensor gpu_param = param.to(Device::cuda()), gpu_grad = grad.to(Device::cuda());
    const Tensor gpu_buffer = c.buffer ? buffer.to(Device::cuda()) : Tensor();
    backend_for(Device::cpu()).sgd_step(param, grad, buffer, c.update);
    backend_for(Device::cuda()).sgd_step(gpu_param, gpu_grad, gpu_buffer, c.update);
    // One update's rounding: the two sides may contract a product and a sum differently.
    test::require_close(param, gpu_param, 1e-6, 1e-7);
    if (c.buffer) test::require_close(buffer, gpu_buffer, 1e-6, 1e-7);
  }
}

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
