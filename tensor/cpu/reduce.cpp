// Reductions and softmax on the CPU. Both work on rows: the caller moves the reduced dims to
// the end, and a non-contiguous input is packed once so that every row is a dense block.
#include <omp.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

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

// Whether `in` (kept dims first, reduced dims last) lies in memory as a dense block with the
// reduced dims outermost: then the reduction sums whole rows of memory, with no packing.
bool reduced_dims_lead(const Tensor& in, int reduced_dims) {
  const std::size_t kept = in.dim() - static_cast<std::size_t>(reduced_dims);
  std::int64_t expected = 1;
  const auto check = [&](std::size_t begin, std::size_t end) {
    for (std::size_t d = end; d-- > begin;) {
      if (in.shape()[d] != 1 && in.strides()[d] != expected) return false;
      expected *= in.shape()[d];
    }
    return true;
  };
  return check(0, kept) && check(kept, in.dim());
}

// out[j] = sum over r of src[r * width + j], in double per column, vectorised across columns.
template <typename T>
void sum_leading(const T* src, std::int64_t rows, std::int64_t width, T* dst) {
  const int chunks = rows * width >= kParallelGrain && width >= 64 ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int c = 0; c < chunks; ++c) {
    const std::int64_t begin = width * c / chunks, end = width * (c + 1) / chunks;
    std::vector<double> total(static_cast<std::size_t>(end - begin), 0.0);
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = src + r * width + begin;
#pragma omp simd
      for (std::int64_t j = 0; j < end - begin; ++j) total[j] += static_cast<double>(row[j]);
    }
    for (std::int64_t j = begin; j < end; ++j) dst[j] = static_cast<T>(total[j - begin]);
  }
}

void CpuBackend::reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) {
  if (op == ReduceOp::sum && is_floating(in.dtype()) && in.numel() > 0 &&
      reduced_dims_lead(in, reduced_dims)) {
    const std::int64_t width = out.numel();
    dispatch_floating(in.dtype(), "sum", [&](auto tag) {
      using T = typename decltype(tag)::type;
      sum_leading(in.data<T>(), in.numel() / width, width, out.data<T>());
    });
    return;
  }
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
