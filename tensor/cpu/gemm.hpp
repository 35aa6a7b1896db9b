#pragma once
// One matrix product on the calling thread through Eigen's GEMM kernel, in the row-major terms
// of our tensors. Callers choose the threading, not Eigen's OpenMP layer: waking the other cores
// costs more than it saves on small products, more so on a busy machine. matmul.cpp defines it
// (for float and double) so that callers need not include Eigen.
#include <cstdint>

namespace ds::cpu {

// A matrix in memory: element (i, j) is data[i * stride + j], or data[i + j * stride] when
// column_major (a transposed view of a row-major matrix).
template <typename T>
struct MatrixRef {
  const T* data;
  std::int64_t stride;
  bool column_major;
};

// out (rows x cols, row-major with row stride out_stride) = a (rows x depth) * b (depth x cols),
// or += when accumulate.
template <typename T>
void gemm_serial(std::int64_t rows, std::int64_t cols, std::int64_t depth, MatrixRef<T> a,
                 MatrixRef<T> b, T* out, std::int64_t out_stride, bool accumulate);

}  // namespace ds::cpu
