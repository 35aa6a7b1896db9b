// Issue 9 (a) and (b): the CUDA shift kernels against our cuBLAS float path on the same device,
// timed interleaved (median of repeats, each call followed by a device synchronisation):
// batch-1 linear 4096x4096 (cuBLAS with one row against SGEMV-sized work), batched linear
// layers, and ResNet-18 ImageNet-shape inference through the shift layers. A shift call is the
// whole float API: quantisation with its NaN check (one 4-byte copy back and a
// synchronisation), the kernel, and the conversion to f32. Figures are printed, never asserted.
// Usage: bench_cuda_shift
#include <cstdio>
#include <random>
#include <string>

#include "../kernels/random_layers.hpp"
#include "autograd/grad_mode.hpp"
#include "bench/timing.hpp"
#include "cuda/cuda.hpp"
#include "cuda/shift.hpp"
#include "nn/functional.hpp"
#include "nn/models/zoo.hpp"
#include "shiftops/convert.hpp"
#include "tensor/random.hpp"

using namespace ds;

namespace {

void bench_linear(std::int64_t batch, std::int64_t n, int weight_bits) {
  std::mt19937_64 rng(42);
  const test::LayerFormat format{weight_bits, shift::ShiftType::PS, {16, true}};
  const shift::PackedWeights packed = test::random_packed(rng, format, {n, n}, false);
  const cuda::DeviceShiftWeights weights(packed);
  const shift::ActivationBits bits{4, 12};
  const Device gpu = Device::cuda();
  const Tensor x = randn({batch, n}).to(gpu);
  const Tensor dense = shift::unpack_weights(packed).to(gpu);
  const auto t = bench::interleaved_medians({[&] {
                                               cuda::shift_linear(x, weights, bits);
                                               cuda::synchronize();
                                             },
                                             [&] {
                                               nn::functional::linear(x, dense, Tensor());
                                               cuda::synchronize();
                                             }},
                                            {15, batch == 1 ? 20 : 5});
  const std::string what = "linear b=" + std::to_string(batch) + " " + std::to_string(n) + "x" +
                           std::to_string(n) + " w" + std::to_string(weight_bits) + " a16";
  std::printf(
      "%-36s shift kernel %9.4f ms  cuBLAS f32 %9.4f ms  speed-up %6.2fx  [%.1f GB/s packed]\n",
      what.c_str(), t[0] * 1e3, t[1] * 1e3, t[1] / t[0],
      static_cast<double>(packed.codes.size()) / t[0] / 1e9);
}

// ResNet-18 at ImageNet shape (batch 32, 224x224), every convolution and the classifier as
// shift layers: the whole inference with the layers through the CUDA shift kernels (weights
// uploaded once) against the same model on our float path (im2col + cuBLAS).
void bench_resnet18(int weight_bits, int integer, int fraction) {
  manual_seed(3);
  nn::ModulePtr model = nn::models::create("imagenet", "resnet18");
  shift::ConversionOptions options;
  options.shift.weight_bits = weight_bits;
  options.shift.activation = {integer, fraction};
  options.convert_weights = true;
  shift::convert_to_shift(*model, shift::kConvertAll, options);
  shift::round_shift_weights(*model);
  model->eval();
  model->to(Device::cuda());
  const Tensor x = randn({32, 3, 224, 224}).to(Device::cuda());
  NoGradGuard no_grad;
  const auto t = bench::interleaved_medians({[&] {
                                               shift::use_kernel(*model, true);
                                               model->forward(x);
                                               cuda::synchronize();
                                             },
                                             [&] {
                                               shift::use_kernel(*model, false);
                                               model->forward(x);
                                               cuda::synchronize();
                                             }},
                                            {5, 1});
  const std::string what = "resnet18 b=32 224x224 w" + std::to_string(weight_bits) + " a" +
                           std::to_string(integer + fraction);
  std::printf("%-36s shift kernel %9.4f ms  cuBLAS f32 %9.4f ms  time ratio %5.2fx\n", what.c_str(),
              t[0] * 1e3, t[1] * 1e3, t[0] / t[1]);
}

}  // namespace

int main() {
  if (!cuda::is_available()) {
    std::printf("bench_cuda_shift: skipped, no CUDA device\n");
    return 0;
  }
  std::printf(
      "bench_cuda_shift: PS weights, 16-bit activations (4.12), f32 baseline through "
      "our cuBLAS linear\n");
  bench_linear(1, 4096, 4);
  bench_linear(1, 4096, 5);
  bench_linear(64, 1024, 4);
  bench_linear(256, 4096, 4);
  bench_resnet18(4, 4, 4);
  bench_resnet18(5, 16, 16);
  return 0;
}
