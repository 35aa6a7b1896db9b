// Matrix products through Eigen's GEMM kernel, on the tensors' own memory. A row- or
// column-major operand (including a transposed view) is used without a copy; only an operand
// strided in both dims is packed first. Threading is ours, not Eigen's (see gemm_parallel).
// GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsics when
// Eigen's packet code is inlined here; they are not about this file's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/gemm.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

// One batch of matrix operands: row-major or column-major (a transposed view) matrices
// batch_stride apart; data is null when the operand is strided in both dims.
template <typename T>
struct Operand {
  MatrixRef<T> matrix;
  std::int64_t batch_stride;
  std::int64_t rows, cols;
};

template <typename T>
Operand<T> as_operand(const Tensor& t) {
  const std::int64_t rows = t.shape()[1], cols = t.shape()[2];
  const std::int64_t row_stride = t.strides()[1], col_stride = t.strides()[2];
  const std::int64_t batch_stride = t.strides()[0];
  if ((cols == 1 || col_stride == 1) && (rows == 1 || row_stride >= cols))
    return {{t.data<T>(), rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride, false},
            batch_stride,
            rows,
            cols};
  if ((rows == 1 || row_stride == 1) && (cols == 1 || col_stride >= rows))
    return {{t.data<T>(), cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride, true},
            batch_stride,
            rows,
            cols};
  return {{nullptr, 0, false}, 0, rows, cols};  // strided in both dims: caller packs it
}

// Eigen's blocking sizes, with its packed blocks from the tensor allocator where Eigen would
// take them from malloc (blocks above its stack limit, which it allocates and frees at every
// product): freed to the system and faulted in again, they were a fifth of a resnet20 step's
// page faults. Smaller blocks stay on the stack, which costs less than any allocator.
template <typename T>
class CachedBlocking
    : public Eigen::internal::gemm_blocking_space<Eigen::ColMajor, T, T, Eigen::Dynamic,
                                                  Eigen::Dynamic, Eigen::Dynamic> {
 public:
  CachedBlocking(std::int64_t rows, std::int64_t cols, std::int64_t depth)
      : CachedBlocking::gemm_blocking_space(rows, cols, depth, 1, true) {
    const auto on_heap = [](std::int64_t size) {
      return size * static_cast<std::int64_t>(sizeof(T)) > EIGEN_STACK_ALLOCATION_LIMIT ? size : 0;
    };
    // Block B starts on a cache line, as Eigen's own allocations do.
    constexpr std::int64_t line = 64 / sizeof(T);
    const std::int64_t size_a = (on_heap(this->mc() * this->kc()) + line - 1) / line * line;
    const std::int64_t size_b = on_heap(this->kc() * this->nc());
    if (size_a + size_b == 0) return;
    memory_ = Tensor::empty({size_a + size_b}, dtype_of<T>());
    if (size_a) this->m_blockA = memory_.data<T>();
    if (size_b) this->m_blockB = memory_.data<T>() + size_a;
  }
  // Eigen's destructor frees the blocks it holds: these are the tensor's.
  ~CachedBlocking() { this->m_blockA = this->m_blockB = nullptr; }
  CachedBlocking(const CachedBlocking&) = delete;
  CachedBlocking& operator=(const CachedBlocking&) = delete;

 private:
  Tensor memory_;
};

// Eigen's GEMM kernel without its OpenMP layer (see gemm.hpp): res += lhs * rhs, column-major.
template <typename T, int LhsOrder, int RhsOrder>
void eigen_product(std::int64_t rows, std::int64_t cols, std::int64_t depth, const T* lhs,
                   std::int64_t lhs_stride, const T* rhs, std::int64_t rhs_stride, T* res,
                   std::int64_t res_stride) {
  using namespace Eigen::internal;
  CachedBlocking<T> blocking(rows, cols, depth);
  general_matrix_matrix_product<Eigen::Index, T, LhsOrder, false, T, RhsOrder, false,
                                Eigen::ColMajor, 1>::run(rows, cols, depth, lhs, lhs_stride, rhs,
                                                         rhs_stride, res, 1, res_stride, T(1),
                                                         blocking);
}

// out[rows n0..n1), cols m0..m1) of one batch, on this thread.
template <typename T>
void gemm_block(const Operand<T>& a, const Operand<T>& b, T* out, std::int64_t batch,
                std::int64_t n0, std::int64_t n1, std::int64_t m0, std::int64_t m1) {
  const MatrixRef<T>& ma = a.matrix;
  const MatrixRef<T>& mb = b.matrix;
  const T* pa = ma.data + batch * a.batch_stride + n0 * (ma.column_major ? 1 : ma.stride);
  const T* pb = mb.data + batch * b.batch_stride + m0 * (mb.column_major ? mb.stride : 1);
  gemm_serial<T>(n1 - n0, m1 - m0, a.cols, {pa, ma.stride, ma.column_major},
                 {pb, mb.stride, mb.column_major}, out + n0 * b.cols + m0, b.cols, false);
}

// A large product split into one block of rows (or columns) per thread. Each block is an
// independent serial product, so no thread ever waits on another mid-product: Eigen's own
// threading synchronises its threads per panel, and a thread descheduled on a busy machine then
// stalls the others.
template <typename T>
void gemm_parallel(const Operand<T>& a, const Operand<T>& b, T* out, std::int64_t batch) {
  const std::int64_t n = a.rows, m = b.cols;
  const bool split_rows = n >= m;
  const std::int64_t extent = split_rows ? n : m;
#pragma omp parallel
  {
    const std::int64_t parts = omp_get_num_threads(), t = omp_get_thread_num();
    // Block edges on multiples of 16 keep every block's SIMD panels full.
    const std::int64_t begin = std::min(extent, (extent * t / parts + 15) / 16 * 16);
    const std::int64_t end =
        t + 1 == parts ? extent : std::min(extent, (extent * (t + 1) / parts + 15) / 16 * 16);
    if (begin < end) {
      if (split_rows)
        gemm_block(a, b, out, batch, begin, end, 0, m);
      else
        gemm_block(a, b, out, batch, 0, n, begin, end);
    }
  }
}

}  // namespace

// out (row-major) is out^T (cols x rows) column-major: out^T = b^T a^T, where b^T is
// column-major exactly when b is row-major, and a^T likewise.
template <typename T>
void gemm_serial(std::int64_t rows, std::int64_t cols, std::int64_t depth, MatrixRef<T> a,
                 MatrixRef<T> b, T* out, std::int64_t out_stride, bool accumulate) {
  if (rows == 0 || cols == 0) return;
  if (!accumulate)
    for (std::int64_t i = 0; i < rows; ++i)
      std::fill(out + i * out_stride, out + i * out_stride + cols, T(0));
  if (depth == 0) return;  // Eigen's blocking divides by the depth
  constexpr int col = Eigen::ColMajor, row = Eigen::RowMajor;
  const bool b_col = !b.column_major, a_col = !a.column_major;  // orders of b^T and a^T
  if (b_col && a_col)
    eigen_product<T, col, col>(cols, rows, depth, b.data, b.stride, a.data, a.stride, out,
                               out_stride);
  else if (b_col)
    eigen_product<T, col, row>(cols, rows, depth, b.data, b.stride, a.data, a.stride, out,
                               out_stride);
  else if (a_col)
    eigen_product<T, row, col>(cols, rows, depth, b.data, b.stride, a.data, a.stride, out,
                               out_stride);
  else
    eigen_product<T, row, row>(cols, rows, depth, b.data, b.stride, a.data, a.stride, out,
                               out_stride);
}

template void gemm_serial<float>(std::int64_t, std::int64_t, std::int64_t, MatrixRef<float>,
                                 MatrixRef<float>, float*, std::int64_t, bool);
template void gemm_serial<double>(std::int64_t, std::int64_t, std::int64_t, MatrixRef<double>,
                                  MatrixRef<double>, double*, std::int64_t, bool);

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_floating(a.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor a_packed = a, b_packed = b;
    Operand<T> oa = as_operand<T>(a);
    if (!oa.matrix.data) {
      a_packed = a.contiguous();
      oa = as_operand<T>(a_packed);
    }
    Operand<T> ob = as_operand<T>(b);
    if (!ob.matrix.data) {
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
    // Products below kSerialWork multiply-adds run on one thread; many of them in a batch are
    // spread over the cores, one product per thread; larger ones are split over the cores.
    constexpr std::int64_t kSerialWork = std::int64_t{1} << 22;
    if (n * m * k >= kSerialWork && omp_get_max_threads() > 1) {
      for (std::int64_t i = 0; i < batches; ++i) gemm_parallel(oa, ob, result + i * n * m, i);
    } else if (batches > 1 && batches * n * m * k >= kSerialWork) {
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < batches; ++i)
        gemm_block(oa, ob, result + i * n * m, i, 0, n, 0, m);
    } else {
      for (std::int64_t i = 0; i < batches; ++i)
        gemm_block(oa, ob, result + i * n * m, i, 0, n, 0, m);
    }
  });
}

}  // namespace ds::cpu
