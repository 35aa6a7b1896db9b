// The layers above the device back-end keep every tensor of a model, its gradients, its
// buffers and its optimizer state on the model's device. Checked on a host-memory stand-in
// for the GPU (device_helpers.hpp), so it runs on every machine; any CPU tensor that reaches
// the device back-end fails the test. The CPU has direct kernels of its own for a few layers
// (max pooling, batch norm, optimizer moments) that the device path builds from primitives,
// so results agree to f32 rounding rather than bit for bit.
#include <catch2/catch.hpp>

#include "device_helpers.hpp"
#include "model_step.hpp"
#include "tensor/ops.hpp"

using namespace ds;

TEST_CASE("training steps on a non-CPU device match the CPU", "[cuda][plumbing]") {
  const auto [model, optimizer] = GENERATE(table<std::string, std::string>({
      {"mnist-conv", "sgd"},
      {"mnist-conv-shift", "adam"},
      {"resnet20", "radam"},
  }));
  INFO(model << " with " << optimizer);
  const test::StepResult on_cpu = test::train_steps(model, optimizer, Device::cpu());
  test::HostAliasBackend stand_in;
  const test::StepResult on_device = test::train_steps(model, optimizer, Device::cuda());
  test::require_same_training(on_cpu, on_device, 1e-4, 1e-6);
}

TEST_CASE("moving tensors between devices keeps values and records the move", "[cuda][plumbing]") {
  test::HostAliasBackend stand_in;
  Tensor x = Tensor::from_vector<float>({1, -2, 3, 4, 5, -6}, {2, 3});
  x.requires_grad_();
  const Tensor on_device = x.t().to(Device::cuda());  // a transposed view goes over packed
  REQUIRE(on_device.device() == Device::cuda());
  REQUIRE(on_device.to_vector<float>() == std::vector<float>{1, 4, -2, 5, 3, -6});
  (on_device * on_device).sum().backward();
  REQUIRE(x.grad().device() == Device::cpu());
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{2, -4, 6, 8, 10, -12});
}

TEST_CASE("mixing devices in one op is refused with both devices named", "[cuda][plumbing]") {
  test::HostAliasBackend stand_in;
  const Tensor a = Tensor::ones({3});
  const Tensor b = Tensor::ones({3}, DType::f32, Device::cuda());
  REQUIRE_THROWS_WITH(a + b, Catch::Contains("cpu") && Catch::Contains("cuda:0"));
}
