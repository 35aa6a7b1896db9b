// The SGD update in one kernel: composed, it takes up to eight launches per parameter (a
// resnet20 step has 65 parameters), and a small network's step is bound by launches. The
// arithmetic is the CPU loop's (optim/sgd.cpp), in the parameter's dtype; as there, the
// compiler may contract a multiply and an add into one FMA, so the result can differ from the
// composed ops' in the last bit.
#include <cuda_runtime.h>

#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"

namespace ds::cuda {

namespace {

template <typename T>
__global__ void sgd_kernel(T* param, const T* grad, T* buffer, std::int64_t n, T weight_decay,
                           T momentum, T keep, T step, bool first, bool nesterov) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    T d = weight_decay != T(0) ? grad[i] + param[i] * weight_decay : grad[i];
    if (buffer) {
      const T b = first ? d : buffer[i] * momentum + d * keep;
      buffer[i] = b;
      d = nesterov ? d + b * momentum : b;
    }
    param[i] = param[i] + d * step;
  }
}

}  // namespace

void launch_sgd(DType type, void* param, const void* grad, void* buffer, std::int64_t n,
                const SgdUpdate& update, cudaStream_t stream) {
  if (n == 0) return;
  dispatch_floating(type, "SGD", [&](auto tag) {
    using T = typename decltype(tag)::type;
    sgd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(buffer), n,
        static_cast<T>(update.weight_decay), static_cast<T>(update.momentum),
        static_cast<T>(1.0 - update.dampening), static_cast<T>(-update.lr), update.first_step,
        update.nesterov);
    check_launch("sgd_kernel");
  });
}

}  // namespace ds::cuda
