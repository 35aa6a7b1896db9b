#pragma once
// Walks N operands of one shape (strides in elements, 0 for broadcast dims) as a sequence of
// innermost runs, so that kernels only write a 1-D loop. Dims that are laid out as one block in
// every operand are merged first, so contiguous tensors become a single run that the compiler
// vectorises; long runs and many runs are split over the cores with OpenMP.
#include <omp.h>

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/shape.hpp"

namespace ds::cpu {

// Below this many elements a loop is not worth waking the second core for.
inline constexpr std::int64_t kParallelGrain = 1 << 15;

template <std::size_t N>
struct Run {
  std::array<std::int64_t, N> offset;  // element offset of the run's first element per operand
  std::array<std::int64_t, N> stride;  // element stride within the run per operand
  std::int64_t length;
};

template <std::size_t N, typename Body>
void for_each_run(const Shape& full_shape, const std::array<const Shape*, N>& full_strides,
                  Body&& body) {
  // Drop size-1 dims, then merge dim d into d+1 where every operand is contiguous across them.
  Shape shape;
  std::array<Shape, N> strides;
  for (std::size_t d = 0; d < full_shape.size(); ++d) {
    if (full_shape[d] == 1) continue;
    if (full_shape[d] == 0) return;
    shape.push_back(full_shape[d]);
    for (std::size_t k = 0; k < N; ++k) strides[k].push_back((*full_strides[k])[d]);
  }
  for (std::size_t d = shape.size(); d-- > 1;) {
    bool mergeable = true;
    for (std::size_t k = 0; k < N; ++k)
      mergeable = mergeable && strides[k][d - 1] == strides[k][d] * shape[d];
    if (!mergeable) continue;
    shape[d - 1] *= shape[d];
    shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(d));
    for (std::size_t k = 0; k < N; ++k) {
      strides[k][d - 1] = strides[k][d];  // the merged dim steps like the inner one
      strides[k].erase(strides[k].begin() + static_cast<std::ptrdiff_t>(d));
    }
  }

  Run<N> run{};
  if (shape.empty()) {  // a single element
    run.length = 1;
    body(run);
    return;
  }
  const std::size_t nd = shape.size();
  const std::int64_t inner = shape.back();
  for (std::size_t k = 0; k < N; ++k) run.stride[k] = strides[k].back();
  const std::int64_t outer = numel_of(shape) / inner;
  const std::int64_t total = outer * inner;

  if (nd == 1) {  // one long run: split it into chunks
    const int chunks = total >= kParallelGrain ? omp_get_max_threads() : 1;
    const std::int64_t per_chunk = (inner + chunks - 1) / chunks;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int c = 0; c < chunks; ++c) {
      Run<N> part = run;
      const std::int64_t begin = c * per_chunk;
      part.length = std::min(inner, begin + per_chunk) - begin;
      if (part.length <= 0) continue;
      for (std::size_t k = 0; k < N; ++k) part.offset[k] = begin * run.stride[k];
      body(part);
    }
    return;
  }

  const auto run_rows = [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int64_t> index(nd - 1);
    Run<N> row = run;
    row.length = inner;
    row.offset.fill(0);
    std::int64_t rest = begin;
    for (std::size_t d = nd - 1; d-- > 0;) {
      index[d] = rest % shape[d];
      rest /= shape[d];
      for (std::size_t k = 0; k < N; ++k) row.offset[k] += index[d] * strides[k][d];
    }
    for (std::int64_t r = begin; r < end; ++r) {
      body(row);
      for (std::size_t d = nd - 1; d-- > 0;) {  // odometer increment
        for (std::size_t k = 0; k < N; ++k) row.offset[k] += strides[k][d];
        if (++index[d] < shape[d]) break;
        for (std::size_t k = 0; k < N; ++k) row.offset[k] -= shape[d] * strides[k][d];
        index[d] = 0;
      }
    }
  };
  const int threads = total >= kParallelGrain ? omp_get_max_threads() : 1;
  if (threads == 1 || outer == 1) {
    run_rows(0, outer);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int n = omp_get_num_threads();
    run_rows(outer * t / n, outer * (t + 1) / n);
  }
}

}  // namespace ds::cpu
