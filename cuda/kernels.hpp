#pragma once
// The kernel launchers of the .cu files. They take raw device pointers (already at the
// tensor's first element) and plain layouts, so that nvcc never compiles the tensor headers'
// heavier parts; cuda_backend.cpp turns tensors into these arguments. Every launcher checks
// its launch and throws ds::Error with the CUDA message.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/layout.hpp"
#include "tensor/backend.hpp"
#include "tensor/dtype.hpp"

namespace ds::cuda {

// Operand 0 of every layout is the output.
void launch_copy(const Layout<2>& layout, DType out_type, void* out, DType in_type, const void* in,
                 cudaStream_t stream);
void launch_fill(const Layout<1>& layout, DType type, void* out, double value, cudaStream_t stream);
void launch_unary(UnaryOp op, DType type, const Layout<2>& layout, void* out, const void* in,
                  cudaStream_t stream);
void launch_clamp(DType type, const Layout<2>& layout, void* out, const void* in, double low,
                  double high, cudaStream_t stream);
void launch_binary(BinaryOp op, DType type, const Layout<3>& layout, void* out, const void* a,
                   const void* b, cudaStream_t stream);
void launch_where(DType type, const Layout<4>& layout, void* out, const void* condition,
                  const void* a, const void* b, cudaStream_t stream);

// Rows of `row_length` contiguous elements, one result per row (i32 indices for arg ops).
// Few long rows are split into segments reduced in two passes through `scratch`.
std::size_t reduce_scratch_bytes(ReduceOp op, DType type, std::int64_t rows,
                                 std::int64_t row_length);
void launch_reduce(ReduceOp op, DType type, const void* in, std::int64_t rows,
                   std::int64_t row_length, void* out, void* scratch, cudaStream_t stream);
void launch_softmax(DType type, const void* in, std::int64_t rows, std::int64_t row_length,
                    bool log, void* out, cudaStream_t stream);

// Batch normalisation (batch_norm.cu): x, y, residual and gradients contiguous of `type`,
// weight and bias [C] of `type` or null, per-channel statistics and sums f64 as in
// tensor/batch_norm.hpp. The backward computes the sums into `sums`, which the caller provides
// whenever they are wanted or the input gradient runs through the batch statistics.
void launch_batch_norm(DType type, const BatchNormLayout& layout, const void* x,
                       const double* given_mean, const double* given_var, double eps,
                       const void* weight, const void* bias, const void* residual, bool relu,
                       double* stats, void* y, cudaStream_t stream);
void launch_batch_norm_backward(DType type, const BatchNormLayout& layout, const void* grad,
                                const void* x, const void* output, const double* stats,
                                const void* weight, bool given_statistics, void* grad_x,
                                void* grad_residual, double* sums, cudaStream_t stream);

// One SGD update (sgd.cu): param, grad and buffer (null without momentum) contiguous, n values
// of `type`.
void launch_sgd(DType type, void* param, const void* grad, void* buffer, std::int64_t n,
                const SgdUpdate& update, cudaStream_t stream);

struct ImageGeometry {
  std::int64_t batch, channels, height, width, out_h, out_w;
};
void launch_im2col(DType type, const void* image, const ImageGeometry& geometry,
                   const Window& window, double pad_value, void* columns, cudaStream_t stream);
// Adds the columns into `image` (which holds the starting values, normally zeros).
void launch_col2im(DType type, const void* columns, const ImageGeometry& geometry,
                   const Window& window, void* image, cudaStream_t stream);

// The shift kernels (shift_kernels.cu). Packed rows as in shiftops/packed.hpp, on the device.
struct ShiftRows {
  const std::uint8_t* codes;
  const std::int64_t* bias;  // b * 2^F per row, or null
  std::int64_t rows, cols, row_bytes;
  int code_bits, max_k;
};
struct ShiftConvShape {
  std::int64_t batch, channels, height, width, out_h, out_w;
  std::int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  std::int64_t groups;
};
// Where results go: the integers y, or (integers null) the values y * scale as floats.
struct ShiftOutput {
  std::int64_t* integers;
  float* values;
  float scale;
};
// The same output from its element `elements` on.
inline ShiftOutput advanced(const ShiftOutput& out, std::int64_t elements) {
  return out.integers ? ShiftOutput{out.integers + elements, nullptr, out.scale}
                      : ShiftOutput{nullptr, out.values + elements, out.scale};
}
// The samples of a shift GEMM: linear inputs [samples, cols] (positions 1), or the unfolded
// columns of a group of images [images, cols, positions], a sample being (image, position):
//   x[s / positions * x_image_stride + c * x_col_stride + s % positions]
//   y[s / positions * y_image_stride + row * y_row_stride + s % positions]
struct ShiftGemmOperands {
  const std::int32_t* x;
  std::int64_t samples, positions;
  std::int64_t x_image_stride, x_col_stride;
  std::int64_t y_image_stride, y_row_stride;
};
// How a GEMM adds its terms: narrow (4-bit codes, activations of at most 20 bits, sign
// included: 32 terms fit an int32) or in int64 (every layer that does not need the wide sums).
enum class ShiftSum { narrow, int64 };
void launch_shift_gemm(const ShiftRows& weights, const ShiftGemmOperands& operands, ShiftSum sum,
                       bool is_unsigned, const ShiftOutput& out, cudaStream_t stream);
// Layers that need the wide accumulator (shift::choose_accumulator): a direct convolution.
void launch_shift_conv2d_wide(const ShiftRows& weights, const std::int32_t* x,
                              const ShiftConvShape& shape, bool is_unsigned, const ShiftOutput& out,
                              cudaStream_t stream);
// clamp(floor(x * 2^F), lowest, highest) as int32; sets *saw_nan where x holds a NaN.
void launch_shift_quantize(const float* x, std::int64_t n, int fraction_bits, double lowest,
                           double highest, std::int32_t* out, int* saw_nan, cudaStream_t stream);

}  // namespace ds::cuda
