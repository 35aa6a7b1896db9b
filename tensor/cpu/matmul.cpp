// Matrix products through Eigen's GEMM, on the tensors' own memory. A row- or column-major
// operand (including a transposed view) is mapped without a copy; only an operand strided in
// both dims is packed first.
// GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsics when
// Eigen's packet code is inlined here; they are not about this file's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

template <typename T>
using ColMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>,
                          Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>,
                          Eigen::Unaligned, Eigen::OuterStride<>>;

// One matrix operand seen as a column-major map, transposed or not.
template <typename T>
struct Operand {
  const T* data;
  std::int64_t batch_stride;
  std::int64_t rows, cols;
  std::int64_t outer_stride;
  bool transposed;  // the map holds the operand's transpose (the operand is row-major)

  ColMap<T> map(std::int64_t batch) const {
    const T* p = data + batch * batch_stride;
    return transposed ? ColMap<T>(p, cols, rows, Eigen::OuterStride<>(outer_stride))
                      : ColMap<T>(p, rows, cols, Eigen::OuterStride<>(outer_stride));
  }
};

template <typename T>
Operand<T> as_operand(const Tensor& t) {
  const std::int64_t rows = t.shape()[1], cols = t.shape()[2];
  const std::int64_t row_stride = t.strides()[1], col_stride = t.strides()[2];
  const std::int64_t batch_stride = t.strides()[0];
  if ((cols == 1 || col_stride == 1) && (rows == 1 || row_stride >= cols))
    return {t.data<T>(),
            batch_stride,
            rows,
            cols,
            rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride,
            true};
  if ((rows == 1 || row_stride == 1) && (cols == 1 || col_stride >= rows))
    return {t.data<T>(),
            batch_stride,
            rows,
            cols,
            cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride,
            false};
  return {};  // strided in both dims: caller packs it
}

template <typename T>
void gemm(const Operand<T>& a, const Operand<T>& b, T* out, std::int64_t batch) {
  // out (n x m, row-major) is out^T (m x n) column-major: out^T = b^T a^T.
  OutMap<T> result(out, b.cols, a.rows, Eigen::OuterStride<>(b.cols));
  const auto ma = a.map(batch);
  const auto mb = b.map(batch);
  if (a.transposed && b.transposed)
    result.noalias() = mb * ma;
  else if (a.transposed)
    result.noalias() = mb.transpose() * ma;
  else if (b.transposed)
    result.noalias() = mb * ma.transpose();
  else
    result.noalias() = mb.transpose() * ma.transpose();
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_floating(a.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor a_packed = a, b_packed = b;
    Operand<T> oa = as_operand<T>(a);
    if (!oa.data) {
      a_packed = a.contiguous();
      oa = as_operand<T>(a_packed);
    }
    Operand<T> ob = as_operand<T>(b);
    if (!ob.data) {
      b_packed = b.contiguous();
      ob = as_operand<T>(b_packed);
    }
    const std::int64_t batches = out.shape()[0];
    const std::int64_t n = out.shape()[1], m = out.shape()[2], k = a.shape()[2];
    T* result = out.data<T>();
    if (n == 0 || m == 0) return;
    if (k == 0) {
      std::fill(result, result + out.numel(), T(0));
      return;
    }
    // Large products use Eigen's own threading; many small ones are spread over the cores.
    // The two loops stay separate: an inactive OpenMP region (if(false)) around Eigen's GEMM
    // still makes Eigen open a nested region, which starts fresh threads on every call.
    if (batches > 1 && n * m * k < 128 * 128 * 128) {
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < batches; ++i) gemm(oa, ob, result + i * n * m, i);
    } else {
      for (std::int64_t i = 0; i < batches; ++i) gemm(oa, ob, result + i * n * m, i);
    }
  });
}

}  // namespace ds::cpu
