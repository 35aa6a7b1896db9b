// Issue 9 (c): training throughput on the GPU (images/s, forward + loss + backward + SGD step)
// of the MNIST conv model (batch 64) and CIFAR resnet20 (batch 128), next to PyTorch's figures
// for the same models measured in the same session by bench_pytorch_train.py. Usage:
//   bench_cuda_train [--pytorch FILE] [--steps N]
// FILE holds "<model> <images/s>" lines; without it the PyTorch column reads n/a. Figures are
// printed, never asserted.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cuda/cuda.hpp"
#include "nn/functional.hpp"
#include "nn/models/mnist.hpp"
#include "nn/models/zoo.hpp"
#include "optim/sgd.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

struct Case {
  std::string name;
  std::string description;
  ds::Shape input;
};

std::map<std::string, double> read_pytorch(const std::string& path) {
  std::map<std::string, double> figures;
  std::ifstream file(path);
  std::string model;
  double rate = 0;
  while (file >> model >> rate) figures[model] = rate;
  return figures;
}

struct Throughput {
  double images_per_second;
  // Of the timed wall time, the share the host took to queue the steps: near 1, the host's
  // work per op (autograd, allocation, launches) bounds the step, not the GPU.
  double host_share;
  double launches_per_step;  // kernels and cuBLAS products
};

Throughput measure(const Case& c, int steps) {
  const ds::Device gpu = ds::Device::cuda();
  ds::manual_seed(1);
  const auto model = c.name == "conv" ? ds::nn::models::conv_mnist()
                                      : ds::nn::models::create("cifar10", "resnet20");
  model->train();
  model->to(gpu);
  std::vector<ds::optim::NamedParameter> params;
  for (const auto& [name, tensor] : model->named_parameters()) params.push_back({name, tensor});
  ds::optim::SGD sgd(params, {.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4});
  const ds::Tensor images = ds::randn(c.input).to(gpu);
  const ds::Tensor labels = (ds::rand({c.input[0]}) * 10.0).to(ds::DType::i32).to(gpu);
  const auto step = [&] {
    sgd.zero_grad(/*set_to_none=*/true);  // PyTorch's default, as its side of the comparison
    ds::nn::functional::cross_entropy(model->forward(images), labels).backward();
    sgd.step();
  };
  for (int i = 0; i < 3; ++i) step();  // optimizer state, allocator cache, cuBLAS heuristics
  ds::cuda::synchronize();
  const std::size_t launches_before = ds::cuda::kernel_launches();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const std::chrono::duration<double> queued = std::chrono::steady_clock::now() - start;
  ds::cuda::synchronize();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return {static_cast<double>(steps * c.input[0]) / elapsed.count(),
          queued.count() / elapsed.count(),
          static_cast<double>(ds::cuda::kernel_launches() - launches_before) / steps};
}

// Host time per op: `count` ops on one-element tensors queued back to back, then one wait; the
// GPU finishes each long before the host has queued the next, so this is the host's cost.
template <typename Op>
double host_microseconds_per_op(Op op) {
  constexpr int count = 2000;
  op();
  ds::cuda::synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) op();
  ds::cuda::synchronize();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / count * 1e6;
}

void print_host_costs() {
  const ds::Device gpu = ds::Device::cuda();
  const ds::Tensor a = ds::randn({1}).to(gpu), b = ds::randn({1}).to(gpu);
  ds::Tensor tracked = ds::randn({1}).to(gpu);
  tracked.requires_grad_();
  ds::Tensor out = ds::Tensor::empty({1}, ds::DType::f32, gpu);
  std::printf(
      "host cost per op (us): empty %.1f  fill_ %.1f  add %.1f  add recorded for "
      "autograd %.1f\n",
      host_microseconds_per_op([&] { ds::Tensor::empty({1}, ds::DType::f32, gpu); }),
      host_microseconds_per_op([&] { out.fill_(1.0); }),
      host_microseconds_per_op([&] { ds::add(a, b); }),
      host_microseconds_per_op([&] { ds::add(tracked, b); }));
}

}  // namespace

int main(int argc, char** argv) {
  std::string pytorch_file;
  int steps = 30;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--pytorch" && value) {
      pytorch_file = value;
    } else if (arg == "--steps" && value && std::atoi(value) >= 1) {
      steps = std::atoi(value);
    } else {
      std::fprintf(stderr,
                   "bench_cuda_train: bad argument '%s' (usage: bench_cuda_train [--pytorch FILE] "
                   "[--steps N], N >= 1)\n",
                   arg.c_str());
      return 2;
    }
  }
  if (!ds::cuda::is_available()) {
    std::printf("bench_cuda_train: skipped, no CUDA device\n");
    return 0;
  }
  const auto pytorch = read_pytorch(pytorch_file);
  std::printf("bench_cuda_train: f32, SGD momentum 0.9, %d timed steps per model\n", steps);
  std::printf("%-44s %12s %12s %8s %8s %11s %9s\n", "training throughput", "ours img/s", "PyTorch",
              "ratio", "target", "host share", "launches");
  const std::vector<Case> cases = {
      {"conv", "MNIST conv (20@5x5, 50@5x5, 800-500-10), b64", {64, 1, 28, 28}},
      {"resnet20", "CIFAR resnet20, batch 128", {128, 3, 32, 32}},
  };
  for (const Case& c : cases) {
    const Throughput ours = measure(c, steps);
    const auto found = pytorch.find(c.name);
    if (found == pytorch.end())
      std::printf("%-44s %12.0f %12s %8s %8s %11.2f %9.0f\n", c.description.c_str(),
                  ours.images_per_second, "n/a", "n/a", ">= 1", ours.host_share,
                  ours.launches_per_step);
    else
      std::printf("%-44s %12.0f %12.0f %8.2f %8s %11.2f %9.0f\n", c.description.c_str(),
                  ours.images_per_second, found->second, ours.images_per_second / found->second,
                  ">= 1", ours.host_share, ours.launches_per_step);
  }
  print_host_costs();
  return 0;
}
