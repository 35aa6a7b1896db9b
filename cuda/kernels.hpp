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
// `wide`: the layer needs the wide accumulator (shift::choose_accumulator); otherwise int64
// sums are exact.
void launch_shift_linear(const ShiftRows& weights, const std::int32_t* x, std::int64_t batch,
                         bool is_unsigned, bool wide, const ShiftOutput& out, cudaStream_t stream);
void launch_shift_conv2d(const ShiftRows& weights, const std::int32_t* x,
                         const ShiftConvShape& shape, bool is_unsigned, bool wide,
                         const ShiftOutput& out, cudaStream_t stream);
// clamp(floor(x * 2^F), lowest, highest) as int32; sets *saw_nan where x holds a NaN.
void launch_shift_quantize(const float* x, std::int64_t n, int fraction_bits, double lowest,
                           double highest, std::int32_t* out, int* saw_nan, cudaStream_t stream);

}  // namespace ds::cuda
