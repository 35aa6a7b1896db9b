// Batch normalisation on the GPU in four kernels (two for the forward, two for the backward)
// instead of the few dozen a composition of elementwise ops and reductions launches: a training
// step of a small network is bound by launches, not by arithmetic. The per-channel sums run one
// block per channel and accumulate in double, as the CPU's loops do; the elementwise passes
// compute each channel's coefficients from the sums as they go.
#include <cuda_runtime.h>

#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"

namespace ds::cuda {

namespace {

constexpr int kChannelThreads = 512;

// The block's sum of each thread's `values[k]`, returned to thread 0 (shuffles within each warp,
// then one value per warp through shared memory).
template <int K>
__device__ void block_sums(double (&values)[K]) {
  __shared__ double partial[K][kChannelThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    for (int offset = 16; offset > 0; offset >>= 1)
      values[k] += __shfl_down_sync(0xFFFFFFFFu, values[k], offset);
    if (lane == 0) partial[k][warp] = values[k];
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    values[k] = 0;
    for (int w = 0; w < kChannelThreads / 32; ++w) values[k] += partial[k][w];
  }
}

// Element `j` of channel c's values, j in [0, batch * inner).
__device__ inline std::int64_t channel_element(const BatchNormLayout& l, std::int64_t c,
                                               std::int64_t j) {
  return (j / l.inner * l.channels + c) * l.inner + j % l.inner;
}

// One block per channel: the mean and biased variance from the sums of d = x - x0 and d^2 (x0
// the channel's first value, as on the CPU), or the given statistics.
template <typename T>
__global__ void __launch_bounds__(kChannelThreads)
    statistics_kernel(const T* x, BatchNormLayout l, const double* given_mean,
                      const double* given_var, double eps, double* stats) {
  const std::int64_t c = blockIdx.x;
  const std::int64_t count = l.batch * l.inner;
  double mean, var;
  if (given_mean) {
    if (threadIdx.x != 0) return;
    mean = given_mean[c];
    var = given_var[c];
  } else {
    const double reference = count > 0 ? static_cast<double>(x[c * l.inner]) : 0.0;
    double sums[2] = {0, 0};
    for (std::int64_t j = threadIdx.x; j < count; j += kChannelThreads) {
      const double d = static_cast<double>(x[channel_element(l, c, j)]) - reference;
      sums[0] += d;
      sums[1] += d * d;
    }
    block_sums(sums);
    if (threadIdx.x != 0) return;
    const double shift_mean = sums[0] / static_cast<double>(count);
    mean = reference + shift_mean;
    var = fmax(sums[1] / static_cast<double>(count) - shift_mean * shift_mean, 0.0);
  }
  stats[c] = mean;
  stats[l.channels + c] = 1.0 / sqrt(var + eps);
  stats[2 * l.channels + c] = var;
}

// y = x * scale + shift per channel, + residual, then a relu.
template <typename T>
__global__ void output_kernel(const T* x, BatchNormLayout l, const double* stats, const T* weight,
                              const T* bias, const T* residual, bool relu, T* y) {
  const std::int64_t total = l.batch * l.channels * l.inner;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const std::int64_t c = i / l.inner % l.channels;
    const double invstd = stats[l.channels + c];
    const double w = weight ? static_cast<double>(weight[c]) : 1.0;
    const T scale = static_cast<T>(invstd * w);
    const T shift =
        static_cast<T>((bias ? static_cast<double>(bias[c]) : 0.0) - stats[c] * invstd * w);
    T z = x[i] * scale + shift;
    if (residual) z = z + residual[i];
    if (relu && z < T(0)) z = T(0);
    y[i] = z;
  }
}

// The gradient that reaches the normalisation: g, masked by the output after a relu.
template <typename T>
__device__ inline T gradient_in(const T* g, const T* output, std::int64_t i) {
  return output && !(output[i] > T(0)) ? T(0) : g[i];
}

// One block per channel: sum(g * xhat) and sum(g) of the gradient that reaches the
// normalisation, which is written out as the residual's gradient when there is one.
template <typename T>
__global__ void __launch_bounds__(kChannelThreads)
    gradient_sums_kernel(const T* g, const T* x, const T* output, BatchNormLayout l,
                         const double* stats, T* grad_residual, double* sums) {
  const std::int64_t c = blockIdx.x;
  const std::int64_t count = l.batch * l.inner;
  const double mean = stats[c];
  double dot_and_total[2] = {0, 0};  // sum(g * (x - mean)) and sum(g)
  for (std::int64_t j = threadIdx.x; j < count; j += kChannelThreads) {
    const std::int64_t i = channel_element(l, c, j);
    const T gv = gradient_in(g, output, i);
    if (grad_residual) grad_residual[i] = gv;
    dot_and_total[0] += static_cast<double>(gv) * (static_cast<double>(x[i]) - mean);
    dot_and_total[1] += static_cast<double>(gv);
  }
  block_sums(dot_and_total);
  if (threadIdx.x != 0) return;
  sums[c] = dot_and_total[0] * stats[l.channels + c];
  sums[l.channels + c] = dot_and_total[1];
}

// dx = w * invstd / M * (M g - sum(g) - xhat * sum(g * xhat)) with the batch's statistics (as
// a * g + b * x + k per channel, the CPU's form), w * invstd * g with given ones.
template <typename T>
__global__ void input_gradient_kernel(const T* g, const T* x, const T* output, BatchNormLayout l,
                                      const double* stats, const T* weight, const double* sums,
                                      bool given_statistics, T* grad_x) {
  const std::int64_t total = l.batch * l.channels * l.inner;
  const double count = static_cast<double>(l.batch * l.inner);
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const std::int64_t c = i / l.inner % l.channels;
    const double invstd = stats[l.channels + c];
    const double scale = (weight ? static_cast<double>(weight[c]) : 1.0) * invstd;
    const T gv = gradient_in(g, output, i);
    if (given_statistics) {
      grad_x[i] = static_cast<T>(scale) * gv;
      continue;
    }
    const double mean_g = sums[l.channels + c] / count;
    const double proj = sums[c] * invstd / count;
    const T a = static_cast<T>(scale), b = static_cast<T>(-scale * proj);
    const T k = static_cast<T>(-scale * mean_g + scale * proj * stats[c]);
    grad_x[i] = a * gv + b * x[i] + k;
  }
}

}  // namespace

void launch_batch_norm(DType type, const BatchNormLayout& shape, const void* x,
                       const double* given_mean, const double* given_var, double eps,
                       const void* weight, const void* bias, const void* residual, bool relu,
                       double* stats, void* y, cudaStream_t stream) {
  if (shape.channels == 0) return;
  dispatch_floating(type, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    statistics_kernel<T><<<static_cast<unsigned>(shape.channels), kChannelThreads, 0, stream>>>(
        static_cast<const T*>(x), shape, given_mean, given_var, eps, stats);
    check_launch("batch norm statistics_kernel");
    const std::int64_t total = shape.batch * shape.channels * shape.inner;
    if (total == 0) return;
    output_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<const T*>(x), shape, stats, static_cast<const T*>(weight),
        static_cast<const T*>(bias), static_cast<const T*>(residual), relu, static_cast<T*>(y));
    check_launch("batch norm output_kernel");
  });
}

void launch_batch_norm_backward(DType type, const BatchNormLayout& shape, const void* grad,
                                const void* x, const void* output, const double* stats,
                                const void* weight, bool given_statistics, void* grad_x,
                                void* grad_residual, double* sums, cudaStream_t stream) {
  if (shape.channels == 0) return;
  dispatch_floating(type, "batch_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (sums) {
      gradient_sums_kernel<T>
          <<<static_cast<unsigned>(shape.channels), kChannelThreads, 0, stream>>>(
              static_cast<const T*>(grad), static_cast<const T*>(x), static_cast<const T*>(output),
              shape, stats, static_cast<T*>(grad_residual), sums);
      check_launch("batch norm gradient_sums_kernel");
    }
    const std::int64_t total = shape.batch * shape.channels * shape.inner;
    if (!grad_x || total == 0) return;
    // After a residual's gradient was written, it is the masked gradient to read.
    const T* g = static_cast<const T*>(grad_residual ? grad_residual : grad);
    input_gradient_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
        g, static_cast<const T*>(x), grad_residual ? nullptr : static_cast<const T*>(output), shape,
        stats, static_cast<const T*>(weight), sums, given_statistics, static_cast<T*>(grad_x));
    check_launch("batch norm input_gradient_kernel");
  });
}

}  // namespace ds::cuda
