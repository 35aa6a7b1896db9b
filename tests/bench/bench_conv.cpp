// conv2d throughput on resnet20's layer shapes (CIFAR, batch 128), forward and forward+backward,
// next to our matmul's GFLOP/s on a square product of about the same work: the ceiling a
// convolution lowered to im2col + GEMM can approach. Figures are printed, never asserted.
//   bench_conv [--batch N]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"
#include "timing.hpp"

namespace {

struct ConvShape {
  const char* where;
  std::int64_t channels_in, channels_out, size, stride;
};

// The distinct 3x3 convolutions of resnet20 (He et al.'s CIFAR ResNet, 16-32-64 channels).
const std::vector<ConvShape> kResnet20Shapes = {
    {"stem / layer1", 16, 16, 32, 1},  {"layer2.0.conv1", 16, 32, 32, 2}, {"layer2", 32, 32, 16, 1},
    {"layer3.0.conv1", 32, 64, 16, 2}, {"layer3", 64, 64, 8, 1},
};

double gflops(double flop, double seconds) { return flop / seconds * 1e-9; }

}  // namespace

int main(int argc, char** argv) {
  std::int64_t batch = 128;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--batch" && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr, "bench_conv: unknown argument '%s' (usage: bench_conv [--batch N])\n",
                   arg.c_str());
      return 2;
    }
  }
  ds::manual_seed(0);
  std::printf("conv2d 3x3 on resnet20 shapes, batch %lld (GFLOP/s, medians)\n",
              static_cast<long long>(batch));
  std::printf("%-16s %-18s %10s %10s %12s %10s\n", "layer", "in -> out", "fwd", "fwd+bwd",
              "matmul same", "fwd/matmul");
  for (const ConvShape& shape : kResnet20Shapes) {
    const std::int64_t out_size = shape.size / shape.stride;
    const ds::Tensor x = ds::randn({batch, shape.channels_in, shape.size, shape.size});
    const ds::Tensor weight =
        ds::randn({shape.channels_out, shape.channels_in, 3, 3}).requires_grad_();
    const ds::Tensor x_grad = x.detach().requires_grad_();
    ds::nn::functional::Conv2dParams params;
    params.stride_h = params.stride_w = shape.stride;
    params.pad_h = params.pad_w = 1;

    // The GEMM a lowered convolution performs: [O, C*9] x [C*9, N*L].
    const std::int64_t gemm_m = shape.channels_out, gemm_k = shape.channels_in * 9,
                       gemm_n = batch * out_size * out_size;
    const double flop = 2.0 * gemm_m * gemm_k * gemm_n;
    const ds::Tensor a = ds::randn({gemm_m, gemm_k}), b = ds::randn({gemm_k, gemm_n});

    const auto medians = ds::bench::interleaved_medians(
        {[&] {
           ds::NoGradGuard no_grad;
           ds::nn::functional::conv2d(x, weight, {}, params);
         },
         [&] {
           const ds::Tensor y = ds::nn::functional::conv2d(x_grad, weight, {}, params);
           y.sum().backward();
         },
         [&] { ds::matmul(a, b); }},
        {9, 1});
    const std::string channels = std::to_string(shape.channels_in) + " -> " +
                                 std::to_string(shape.channels_out) + " @" +
                                 std::to_string(out_size);
    // Backward computes two more products of the forward's size (input and weight gradients).
    std::printf("%-16s %-18s %10.1f %10.1f %12.1f %10.2f\n", shape.where, channels.c_str(),
                gflops(flop, medians[0]), gflops(3 * flop, medians[1]), gflops(flop, medians[2]),
                medians[2] / medians[0]);
  }
  return 0;
}
