// Batch normalisation's GPU kernels (cuda/batch_norm.cu) against the CPU's loops: outputs,
// every gradient and the running statistics, for each ending (none, relu, residual and relu),
// with batch and with given statistics, [N, C] and [N, C, H, W], with and without the affine
// parameters, in f32 and f64. Sums run in another order, so results agree to rounding.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "device_helpers.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

using namespace ds;
namespace F = ds::nn::functional;

namespace {

enum class Ending { none, relu, add_relu };

struct Inputs {
  Tensor x, weight, bias, residual, running_mean, running_var;

  Inputs on(Device device, bool affine, bool with_residual) const {
    const auto leaf = [&](const Tensor& t, bool wanted) {
      return wanted ? t.to(device).detach().requires_grad_() : Tensor();
    };
    return {leaf(x, true),
            leaf(weight, affine),
            leaf(bias, affine),
            leaf(residual, with_residual),
            running_mean.to(device).detach(),
            running_var.to(device).detach()};
  }
};

Tensor forward(const Inputs& in, Ending ending, bool training) {
  const double momentum = 0.1, eps = 1e-5;
  switch (ending) {
    case Ending::relu:
      return F::batch_norm_relu(in.x, in.running_mean, in.running_var, in.weight, in.bias, training,
                                momentum, eps);
    case Ending::add_relu:
      return F::batch_norm_add_relu(in.x, in.residual, in.running_mean, in.running_var, in.weight,
                                    in.bias, training, momentum, eps);
    case Ending::none:
      break;
  }
  return F::batch_norm(in.x, in.running_mean, in.running_var, in.weight, in.bias, training,
                       momentum, eps);
}

}  // namespace

TEST_CASE("batch norm on the GPU agrees with the CPU, forward and backward", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  manual_seed(17);
  for (const DType dtype : {DType::f32, DType::f64})
    for (const Shape& shape : {Shape{6, 5, 7, 9}, Shape{16, 4}})
      for (const Ending ending : {Ending::none, Ending::relu, Ending::add_relu})
        for (const bool training : {true, false})
          for (const bool affine : {true, false}) {
            const std::int64_t channels = shape[1];
            const Inputs drawn{
                (randn(shape) * 3.0 + 1.5).to(dtype), (rand({channels}) + 0.5).to(dtype),
                randn({channels}).to(dtype),          randn(shape).to(dtype),
                randn({channels}).to(dtype),          (rand({channels}) + 0.5).to(dtype)};
            const bool with_residual = ending == Ending::add_relu;
            const Inputs cpu = drawn.on(Device::cpu(), affine, with_residual);
            const Inputs gpu = drawn.on(Device::cuda(), affine, with_residual);
            INFO(dtype_name(dtype)
                 << " " << shape << " ending " << static_cast<int>(ending)
                 << (training ? " training" : " given statistics") << (affine ? " affine" : ""));
            const Tensor y_cpu = forward(cpu, ending, training);
            const Tensor y_gpu = forward(gpu, ending, training);
            REQUIRE(y_gpu.device() == Device::cuda());
            test::require_close(y_cpu, y_gpu, 1e-5, 1e-5);
            test::require_close(cpu.running_mean, gpu.running_mean, 1e-6, 1e-6);
            test::require_close(cpu.running_var, gpu.running_var, 1e-6, 1e-6);
            const Tensor g = randn(shape).to(dtype);
            y_cpu.backward(g);
            y_gpu.backward(g.to(Device::cuda()));
            std::vector<std::pair<Tensor, Tensor>> leaves = {{cpu.x, gpu.x}};
            if (affine)
              leaves.insert(leaves.end(), {{cpu.weight, gpu.weight}, {cpu.bias, gpu.bias}});
            if (with_residual) leaves.push_back({cpu.residual, gpu.residual});
            for (const auto& [on_cpu, on_gpu] : leaves) {
              REQUIRE(on_gpu.grad().defined());
              REQUIRE(on_gpu.grad().device() == Device::cuda());
              // Relative to the gradient's scale: the sums through the statistics cancel.
              const double scale = max(abs(on_cpu.grad())).item();
              test::require_close(on_cpu.grad(), on_gpu.grad(), 1e-5, 1e-5 * (1 + scale));
            }
          }
}
