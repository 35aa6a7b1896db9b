// Reductions and softmax on the CPU. Both work on rows: the caller moves the reduced dims to
// the end, and a non-contiguous input is packed once so that every row is a dense block.
#include <omp.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/strided_loop.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

Tensor dense(const Tensor& t, Backend& backend) {
  if (t.is_contiguous()) return t;
  Tensor packed = Tensor::empty(t.shape(), t.dtype());
  backend.copy(t, packed);
  return packed;
}

template <typename Fn>
void for_each_row(std::int64_t rows, std::int64_t row_length, Fn fn) {
  const bool parallel = rows > 1 && rows * row_length >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t r = 0; r < rows; ++r) fn(r);
}

// Integer sums accumulate in 64 bits, floating sums in double, then convert once.
template <typename T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, std::int64_t>;

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) {
  const Tensor rows_in = dense(in, *this);
  std::int64_t row_length = 1;
  for (std::size_t d = in.dim() - static_cast<std::size_t>(reduced_dims); d < in.dim(); ++d)
    row_length *= in.shape()[d];
  const std::int64_t rows = out.numel();

  dispatch_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = rows_in.data<T>();
    switch (op) {
      case ReduceOp::sum: {
        T* dst = out.data<T>();
        for_each_row(rows, row_length, [&](std::int64_t r) {
          const T* row = src + r * row_length;
          Accumulator<T> total = 0;
          for (std::int64_t i = 0; i < row_length; ++i) total += row[i];
          dst[r] = static_cast<T>(total);
        });
        return;
      }
      case ReduceOp::max:
      case ReduceOp::min: {
        const bool is_max = op == ReduceOp::max;
        T* dst = out.data<T>();
        for_each_row(rows, row_length, [&](std::int64_t r) {
          const T* row = src + r * row_length;
          T best = row[0];
          for (std::int64_t i = 1; i < row_length; ++i) {
            const T v = row[i];
            if (best != best) break;  // NaN wins, as in PyTorch
            if (v != v || (is_max ? v > best : v < best)) best = v;
          }
          dst[r] = best;
        });
        return;
      }
      case ReduceOp::argmax:
      case ReduceOp::argmin: {
        const bool is_max = op == ReduceOp::argmax;
        std::int32_t* dst = out.data<std::int32_t>();
        for_each_row(rows, row_length, [&](std::int64_t r) {
          const T* row = src + r * row_length;
          std::int64_t best = 0;
          for (std::int64_t i = 1; i < row_length; ++i) {
            if (row[best] != row[best]) break;
            const T v = row[i];
            if (v != v || (is_max ? v > row[best] : v < row[best])) best = i;
          }
          dst[r] = static_cast<std::int32_t>(best);
        });
        return;
      }
    }
  });
}

void CpuBackend::softmax(const Tensor& in, bool log, const Tensor& out) {
  const std::int64_t n = in.shape().back();
  const std::int64_t rows = n == 0 ? 0 : in.numel() / n;
  dispatch_floating(in.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    for_each_row(rows, n, [&](std::int64_t r) {
      const T* x = src + r * n;
      T* y = dst + r * n;
      T peak = -std::numeric_limits<T>::infinity();
      for (std::int64_t i = 0; i < n; ++i) peak = x[i] > peak ? x[i] : peak;
      if (std::isinf(peak)) peak = 0;  // all -inf (or +inf) rows: avoid inf - inf
      double total = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        y[i] = std::exp(x[i] - peak);
        total += y[i];
      }
      if (log) {
        const T log_total = static_cast<T>(std::log(total));
        for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] - peak - log_total;
      } else {
        const T scale = static_cast<T>(1.0 / total);
        for (std::int64_t i = 0; i < n; ++i) y[i] *= scale;
      }
    });
  });
}

}  // namespace ds::cpu
