// Batched matrix products through cuBLAS. cuBLAS is column-major: the row-major product
// out = a @ b is computed as out^T = b^T a^T, where a row-major operand already *is* its
// transpose in column-major terms and a transposed view is passed with CUBLAS_OP_T. So, as on
// the CPU, neither kind of operand is copied; only one strided in both dims is packed first.
#include <atomic>
#include <limits>
#include <optional>

#include "cuda/cublas_library.hpp"
#include "cuda/cuda.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/runtime.hpp"
#include "tensor/tensor.hpp"

namespace ds::cuda {

namespace {

std::atomic<bool> tf32_allowed{false};

// An operand [B, rows, cols] as cuBLAS sees its transpose [cols, rows].
struct BlasOperand {
  const void* data;
  long long batch_stride;
  int leading_dim;
  cublasOperation_t op;
};

int as_int(std::int64_t value, const char* what) {
  if (value > std::numeric_limits<int>::max())
    fail("matmul: ", what, " ", value, " is beyond cuBLAS's 32-bit sizes");
  return static_cast<int>(value);
}

std::optional<BlasOperand> as_operand(const Tensor& t) {
  const std::int64_t rows = t.shape()[1], cols = t.shape()[2];
  const std::int64_t row_stride = t.strides()[1], col_stride = t.strides()[2];
  const long long batch_stride = t.strides()[0];
  if ((cols == 1 || col_stride == 1) && (rows == 1 || row_stride >= cols))  // row-major
    return BlasOperand{t.data_ptr(), batch_stride,
                       as_int(rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride, "stride"),
                       CUBLAS_OP_N};
  if ((rows == 1 || row_stride == 1) && (cols == 1 || col_stride >= rows))  // column-major
    return BlasOperand{t.data_ptr(), batch_stride,
                       as_int(cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride, "stride"),
                       CUBLAS_OP_T};
  return std::nullopt;
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed = allow; }
bool allow_tf32() { return tf32_allowed; }

void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  if (!is_floating(a.dtype()))
    fail("matmul: needs a floating-point tensor (f32 or f64), got ", dtype_name(a.dtype()));
  const int device = device_of(out);
  const cublasHandle_t handle = blas_handle(device);
  const std::int64_t batches = out.shape()[0];
  const std::int64_t n = out.shape()[1], m = out.shape()[2], k = a.shape()[2];
  if (batches == 0 || n == 0 || m == 0) return;
  if (k == 0) {
    check(cudaMemsetAsync(out.data_ptr(), 0,
                          static_cast<std::size_t>(out.numel()) * dtype_size(out.dtype()),
                          use_device(device)),
          "cudaMemsetAsync");
    return;
  }
  Tensor a_packed = a, b_packed = b;
  std::optional<BlasOperand> oa = as_operand(a);
  if (!oa) oa = as_operand(a_packed = a.contiguous());
  std::optional<BlasOperand> ob = as_operand(b);
  if (!ob) ob = as_operand(b_packed = b.contiguous());

  const bool single = a.dtype() == DType::f32;
  const cudaDataType_t type = single ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute = !single        ? CUBLAS_COMPUTE_64F
                                      : allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                     : CUBLAS_COMPUTE_32F;
  const float alpha32 = 1, beta32 = 0;
  const double alpha64 = 1, beta64 = 0;
  const void* alpha = single ? static_cast<const void*>(&alpha32) : &alpha64;
  const void* beta = single ? static_cast<const void*>(&beta32) : &beta64;
  check(cublas().gemm_strided_batched_ex(
            handle, ob->op, oa->op, as_int(m, "size"), as_int(n, "size"), as_int(k, "size"), alpha,
            ob->data, type, ob->leading_dim, ob->batch_stride, oa->data, type, oa->leading_dim,
            oa->batch_stride, beta, out.data_ptr(), type, as_int(m, "size"), n * m,
            as_int(batches, "batch"), compute, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx");
  check_launch("cublasGemmStridedBatchedEx");
}

}  // namespace ds::cuda
