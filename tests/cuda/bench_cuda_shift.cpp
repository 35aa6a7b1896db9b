// Issue 9 (a) and (b): the CUDA shift kernels against our cuBLAS float path on the same device,
// timed interleaved (median of repeats; linear layers as back-to-back calls and one wait,
// convolutions and whole networks each followed by a wait):
// batch-1 linear 4096x4096 (cuBLAS with one row against SGEMV-sized work), batched linear
// layers, and ResNet-18 ImageNet-shape inference through the shift layers. A shift call is the
// whole float API: quantisation with its NaN check (one 4-byte copy back and a
// synchronisation), the kernel, and the conversion to f32; the linear layers are also timed as
// the kernel alone on fixed-point device inputs. Figures are printed, never asserted.
// Usage: bench_cuda_shift
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../kernels/random_layers.hpp"
#include "autograd/grad_mode.hpp"
#include "bench/timing.hpp"
#include "cuda/cuda.hpp"
#include "cuda/shift.hpp"
#include "nn/functional.hpp"
#include "nn/models/zoo.hpp"
#include "shiftops/convert.hpp"
#include "tensor/ops.hpp"
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
  // The kernel alone, on inputs already in the 4.12 fixed-point format on the device (what a
  // network of shift layers that kept its activations as integers would launch).
  const Tensor fixed = (randn({batch, n}) * 1000.0).to(DType::i32).to(gpu);
  // Each sample queues `calls` calls and then waits once: the time per call a network of such
  // layers sees, where launches overlap the work before them (a wait after every call would
  // time the launch and the wait, some 20 us here, more than the work of a batch-1 layer).
  const int calls = batch == 1 ? 50 : 10;
  const auto queued = [&](const auto& call) {
    return [&, call] {
      for (int i = 0; i < calls; ++i) call();
      cuda::synchronize();
    };
  };
  std::vector<double> t = bench::interleaved_medians(
      {queued([&] { cuda::shift_linear(x, weights, bits); }),
       queued([&] { cuda::shift_linear_fixed(fixed, weights, format.activation, bits.fraction); }),
       queued([&] { nn::functional::linear(x, dense, Tensor()); })},
      {15, 1});
  for (double& seconds : t) seconds /= calls;
  const std::string what = "linear b=" + std::to_string(batch) + " " + std::to_string(n) + "x" +
                           std::to_string(n) + " w" + std::to_string(weight_bits) + " a16";
  std::printf(
      "%-32s call %8.4f ms  kernel %8.4f ms  cuBLAS f32 %8.4f ms  speed-up call %5.2fx  "
      "kernel %5.2fx  [kernel %.0f GB/s of codes]\n",
      what.c_str(), t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, t[2] / t[0], t[2] / t[1],
      static_cast<double>(packed.codes.size()) / t[1] / 1e9);
}

// The convolutions of ResNet-18 at batch 32, one at a time: the shift call (4-bit weights,
// 8-bit activations) against our float convolution (im2col + cuBLAS) on the same weights.
void bench_conv_layers() {
  struct Layer {
    const char* name;
    std::int64_t channels, out_channels, size, kernel, stride;
  };
  const Layer layers[] = {{"conv1 7x7/2 3->64 @224", 3, 64, 224, 7, 2},
                          {"layer1 3x3 64->64 @56", 64, 64, 56, 3, 1},
                          {"layer2 3x3 128->128 @28", 128, 128, 28, 3, 1},
                          {"layer3 3x3 256->256 @14", 256, 256, 14, 3, 1},
                          {"layer4 3x3 512->512 @7", 512, 512, 7, 3, 1},
                          {"downsample 1x1/2 64->128 @56", 64, 128, 56, 1, 2}};
  std::mt19937_64 rng(5);
  const shift::ActivationBits bits{4, 4};
  const test::LayerFormat format{4, shift::ShiftType::PS, {8, true}};
  for (const Layer& layer : layers) {
    const shift::PackedWeights packed = test::random_packed(
        rng, format, {layer.out_channels, layer.channels, layer.kernel, layer.kernel}, false);
    const cuda::DeviceShiftWeights weights(packed);
    const Tensor dense =
        shift::unpack_weights(packed)
            .reshape({layer.out_channels, layer.channels, layer.kernel, layer.kernel})
            .to(Device::cuda());
    nn::functional::Conv2dParams params;
    params.stride_h = params.stride_w = layer.stride;
    params.pad_h = params.pad_w = layer.kernel / 2;
    const Tensor x = randn({32, layer.channels, layer.size, layer.size}).to(Device::cuda());
    const auto t = bench::interleaved_medians({[&] {
                                                 cuda::shift_conv2d(x, weights, layer.kernel,
                                                                    layer.kernel, params, bits);
                                                 cuda::synchronize();
                                               },
                                               [&] {
                                                 nn::functional::conv2d(x, dense, Tensor(), params);
                                                 cuda::synchronize();
                                               }},
                                              {5, 1});
    std::printf("%-36s shift kernel %9.4f ms  cuBLAS f32 %9.4f ms  time ratio %5.2fx\n", layer.name,
                t[0] * 1e3, t[1] * 1e3, t[0] / t[1]);
  }
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
  bench_conv_layers();
  bench_resnet18(4, 4, 4);
  bench_resnet18(5, 16, 16);
  return 0;
}
