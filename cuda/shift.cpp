#include "cuda/shift.hpp"

#include <cmath>

#include "cuda/allocator.hpp"
#include "cuda/cuda.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "shiftops/quantize.hpp"
#include "tensor/composed.hpp"

namespace ds::cuda {

namespace {

template <typename T>
std::shared_ptr<void> upload(int device, const std::vector<T>& values) {
  if (values.empty()) return nullptr;
  const std::size_t bytes = values.size() * sizeof(T);
  std::shared_ptr<void> memory = allocate_on(device, bytes);
  const cudaStream_t stream = use_device(device);
  check(cudaMemcpyAsync(memory.get(), values.data(), bytes, cudaMemcpyHostToDevice, stream),
        "copying packed shift weights to the device");
  check(cudaStreamSynchronize(stream), "copying packed shift weights to the device");
  return memory;
}

ShiftRows rows_of(const DeviceShiftWeights& weights) {
  const shift::PackedWeights& p = weights.packed();
  return {weights.device_codes(), weights.device_bias(), p.rows, p.cols,
          p.row_bytes(),          p.code_bits,           p.max_k};
}

// The CUDA kernels sum in int64 lanes where the CPU's dot form does (the wide bound is the same
// for both forms).
bool needs_wide(const DeviceShiftWeights& weights, const shift::ActivationFormat& format) {
  return shift::choose_accumulator(weights.packed(), format, shift::LoopForm::dot) ==
         shift::Accumulator::wide;
}

// Narrow: a lane's 32 terms of 4-bit codes (amounts up to 6) fit an int32 when the activations
// have at most 20 bits, counting an unsigned format's values as one bit wider.
ShiftSum sum_of(const DeviceShiftWeights& weights, const shift::ActivationFormat& format) {
  const int value_bits = format.bits + (format.is_signed ? 0 : 1);
  return weights.packed().code_bits == 4 && value_bits <= 20 ? ShiftSum::narrow : ShiftSum::int64;
}

ShiftConvShape shape_of(const shift::ConvGeometry& g) {
  const auto& p = g.params;
  return {g.batch,   g.channels, g.height,     g.width,      g.out_h(),
          g.out_w(), g.kernel_h, g.kernel_w,   p.stride_h,   p.stride_w,
          p.pad_h,   p.pad_w,    p.dilation_h, p.dilation_w, p.groups};
}

// The layer on device inputs x [batch, cols] into out [batch, rows].
void run_linear(const DeviceShiftWeights& weights, const std::int32_t* x, std::int64_t batch,
                const shift::ActivationFormat& format, const ShiftOutput& out,
                cudaStream_t stream) {
  const ShiftRows w = rows_of(weights);
  if (needs_wide(weights, format)) {
    const ShiftConvShape as_conv{batch, w.cols, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    return launch_shift_conv2d_wide(w, x, as_conv, !format.is_signed, out, stream);
  }
  const ShiftGemmOperands operands{x, batch, 1, w.cols, 1, w.rows, 1};
  launch_shift_gemm(w, operands, sum_of(weights, format), !format.is_signed, out, stream);
}

// The layer on device images x [N, C, H, W] into out [N, rows, oh, ow]: each group of images is
// unfolded into int32 columns [images, C * kh * kw, oh * ow] (a 1x1 convolution of stride 1
// reads its input as they are), then one GEMM per convolution group.
void run_conv2d(const DeviceShiftWeights& weights, const std::int32_t* x,
                const shift::ConvGeometry& g, const shift::ActivationFormat& format,
                const ShiftOutput& out, cudaStream_t stream) {
  const ShiftRows w = rows_of(weights);
  if (needs_wide(weights, format))
    return launch_shift_conv2d_wide(w, x, shape_of(g), !format.is_signed, out, stream);
  const auto& p = g.params;
  const Window window{g.kernel_h, g.kernel_w, p.stride_h,   p.stride_w,
                      p.pad_h,    p.pad_w,    p.dilation_h, p.dilation_w};
  const std::int64_t positions = g.out_h() * g.out_w();
  const std::int64_t image_columns = g.channels * g.kernel_h * g.kernel_w * positions;
  const std::int64_t image_size = g.channels * g.height * g.width;
  const bool unfolded_already = g.kernel_h == 1 && g.kernel_w == 1 && p.stride_h == 1 &&
                                p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
  const std::int64_t group_rows = w.rows / p.groups;
  const ShiftSum sum = sum_of(weights, format);
  // One group of images: unfolded (unless it is already), then a GEMM per convolution group.
  const auto images = [&](std::int64_t first, std::int64_t count) {
    const std::int32_t* columns = x + first * image_size;
    std::shared_ptr<void> unfolded;
    if (!unfolded_already) {
      unfolded = allocate_on(weights.device(), static_cast<std::size_t>(count * image_columns) * 4);
      launch_im2col(DType::i32, columns,
                    {count, g.channels, g.height, g.width, g.out_h(), g.out_w()}, window, 0.0,
                    unfolded.get(), stream);
      columns = static_cast<const std::int32_t*>(unfolded.get());
    }
    for (std::int64_t group = 0; group < p.groups; ++group) {
      ShiftRows rows = w;
      rows.codes += group * group_rows * w.row_bytes;
      if (rows.bias) rows.bias += group * group_rows;
      rows.rows = group_rows;
      const ShiftGemmOperands operands{columns + group * w.cols * positions,
                                       count * positions,
                                       positions,
                                       image_columns,
                                       positions,
                                       w.rows * positions,
                                       positions};
      launch_shift_gemm(rows, operands, sum, !format.is_signed,
                        advanced(out, (first * w.rows + group * group_rows) * positions), stream);
    }
  };
  for_each_group(g.batch, unfolded_already ? 0 : image_columns, DType::i32, kConvWorkspaceBytes,
                 images);
}

cudaStream_t stream_for(const DeviceShiftWeights& weights) {
  if (weights.device() != current_device())
    fail("shift kernel: the packed weights live on cuda:", weights.device(),
         " but the current device is cuda:", current_device());
  return use_device(weights.device());
}

// Runs `launch(x_device, output)` on host arrays: x (x_count values) in, y (y_count) out.
template <typename Launch>
void on_host_arrays(const DeviceShiftWeights& weights, const std::int32_t* x, std::int64_t x_count,
                    std::int64_t* y, std::int64_t y_count, Launch&& launch) {
  const cudaStream_t stream = stream_for(weights);
  const std::size_t x_bytes = static_cast<std::size_t>(x_count) * sizeof(std::int32_t);
  const std::size_t y_bytes = static_cast<std::size_t>(y_count) * sizeof(std::int64_t);
  const std::shared_ptr<void> x_device = allocate_on(weights.device(), x_bytes);
  const std::shared_ptr<void> y_device = allocate_on(weights.device(), y_bytes);
  if (x_bytes)
    check(cudaMemcpyAsync(x_device.get(), x, x_bytes, cudaMemcpyHostToDevice, stream),
          "copying shift kernel input to the device");
  launch(static_cast<const std::int32_t*>(x_device.get()),
         ShiftOutput{static_cast<std::int64_t*>(y_device.get()), nullptr, 0.0f}, stream);
  if (y_bytes)
    check(cudaMemcpyAsync(y, y_device.get(), y_bytes, cudaMemcpyDeviceToHost, stream),
          "copying shift kernel output to the host");
  check(cudaStreamSynchronize(stream), "shift kernel");
}

// The tensor APIs' checks: x of `dtype` on the weights' device, and a bias (if any) on the
// activations' 2^-fraction grid.
void check_input(const Tensor& x, DType dtype, const DeviceShiftWeights& weights, int fraction_bits,
                 const char* op) {
  if (x.device() != Device::cuda(weights.device()) || x.dtype() != dtype)
    fail(op, ": the CUDA shift kernel takes ", dtype_name(dtype),
         " tensors on cuda:", weights.device(), ", got ", describe(x));
  if (!weights.packed().bias.empty() && weights.packed().fraction_bits != fraction_bits)
    fail(op, ": the packed bias is on the 2^-", weights.packed().fraction_bits,
         " grid but the activations have ", fraction_bits, " fraction bits");
}

// A linear layer's output shape for x [..., cols].
Shape linear_output_shape(const Tensor& x, const DeviceShiftWeights& weights, const char* op) {
  const shift::PackedWeights& p = weights.packed();
  if (x.dim() < 1 || x.size(-1) != p.cols)
    fail(op, ": input of shape ", x.shape(), " for packed weights with ", p.cols, " columns");
  Shape shape = x.shape();
  shape.back() = p.rows;
  return shape;
}

// The float API's shared steps: x checked and quantised on the device, the result tensor of
// `shape` filled by launch(x_fixed, output) with y / 2^F.
template <typename Launch>
Tensor on_float_tensors(const Tensor& x, const DeviceShiftWeights& weights,
                        const shift::ActivationBits& bits, const Shape& shape, const char* op,
                        Launch&& launch) {
  bits.validate();
  check_input(x, DType::f32, weights, bits.fraction, op);
  const cudaStream_t stream = stream_for(weights);
  const Tensor input = x.contiguous();
  const Tensor fixed = Tensor::empty(input.shape(), DType::i32, input.device());
  const std::shared_ptr<void> saw_nan = allocate_on(weights.device(), sizeof(int));
  check(cudaMemsetAsync(saw_nan.get(), 0, sizeof(int), stream), op);
  // The CPU's to_fixed bounds: the format's lowest value and fixed_point's f32 top.
  const double scale = std::ldexp(1.0, bits.fraction);
  launch_shift_quantize(
      static_cast<const float*>(input.data_ptr()), input.numel(), bits.fraction,
      bits.lowest() * scale, std::floor(shift::fixed_point_highest(bits, DType::f32) * scale),
      static_cast<std::int32_t*>(fixed.data_ptr()), static_cast<int*>(saw_nan.get()), stream);
  int nan_found = 0;
  check(cudaMemcpyAsync(&nan_found, saw_nan.get(), sizeof(int), cudaMemcpyDeviceToHost, stream),
        op);
  check(cudaStreamSynchronize(stream), op);
  if (nan_found) fail(op, ": the input ", describe(x), " holds a NaN");
  Tensor result = Tensor::empty(shape, DType::f32, input.device());
  launch(static_cast<const std::int32_t*>(fixed.data_ptr()),
         ShiftOutput{nullptr, static_cast<float*>(result.data_ptr()),
                     std::ldexp(1.0f, -bits.fraction)},
         stream);
  return result;
}

// The device kernels trust the layout: a hand-made PackedWeights that breaks it would read out
// of bounds on the device (a fault that poisons every later CUDA call).
const shift::PackedWeights& checked(const shift::PackedWeights& p) {
  p.validate("DeviceShiftWeights");
  return p;
}

shift::ActivationFormat format_of(const shift::ActivationBits& bits) {
  return {bits.integer + bits.fraction, true};
}

}  // namespace

DeviceShiftWeights::DeviceShiftWeights(const shift::PackedWeights& weights)
    : packed_(checked(weights)),
      device_(current_device()),
      codes_(upload(device_, weights.codes)),
      bias_(upload(device_, weights.bias)) {}

const std::uint8_t* DeviceShiftWeights::device_codes() const {
  return static_cast<const std::uint8_t*>(codes_.get());
}

const std::int64_t* DeviceShiftWeights::device_bias() const {
  return static_cast<const std::int64_t*>(bias_.get());
}

void linear_int(const DeviceShiftWeights& weights, const std::int32_t* x, std::int64_t batch,
                const shift::ActivationFormat& format, std::int64_t* y) {
  format.validate();
  if (batch < 0) fail("shift linear on CUDA: negative batch ", batch);
  const shift::PackedWeights& p = weights.packed();
  on_host_arrays(weights, x, batch * p.cols, y, batch * p.rows,
                 [&](const std::int32_t* x_device, const ShiftOutput& out, cudaStream_t stream) {
                   run_linear(weights, x_device, batch, format, out, stream);
                 });
}

void conv2d_int(const DeviceShiftWeights& weights, const std::int32_t* x,
                const shift::ConvGeometry& geometry, const shift::ActivationFormat& format,
                std::int64_t* y) {
  format.validate();
  geometry.validate(weights.packed());
  const std::int64_t inputs = geometry.batch * geometry.channels * geometry.height * geometry.width;
  const std::int64_t outputs =
      geometry.batch * weights.packed().rows * geometry.out_h() * geometry.out_w();
  on_host_arrays(weights, x, inputs, y, outputs,
                 [&](const std::int32_t* x_device, const ShiftOutput& out, cudaStream_t stream) {
                   run_conv2d(weights, x_device, geometry, format, out, stream);
                 });
}

Tensor shift_linear(const Tensor& x, const DeviceShiftWeights& weights,
                    const shift::ActivationBits& bits) {
  const Shape shape = linear_output_shape(x, weights, "shift_linear");
  const std::int64_t batch = x.numel() / weights.packed().cols;
  return on_float_tensors(
      x, weights, bits, shape, "shift_linear",
      [&](const std::int32_t* fixed, const ShiftOutput& out, cudaStream_t stream) {
        run_linear(weights, fixed, batch, format_of(bits), out, stream);
      });
}

Tensor shift_linear_fixed(const Tensor& x_fixed, const DeviceShiftWeights& weights,
                          const shift::ActivationFormat& format, int fraction_bits) {
  format.validate();
  const Shape shape = linear_output_shape(x_fixed, weights, "shift_linear_fixed");
  check_input(x_fixed, DType::i32, weights, fraction_bits, "shift_linear_fixed");
  const Tensor input = x_fixed.contiguous();
  Tensor result = Tensor::empty(shape, DType::f32, input.device());
  run_linear(weights, static_cast<const std::int32_t*>(input.data_ptr()),
             input.numel() / weights.packed().cols, format,
             ShiftOutput{nullptr, static_cast<float*>(result.data_ptr()),
                         std::ldexp(1.0f, -fraction_bits)},
             stream_for(weights));
  return result;
}

Tensor shift_conv2d(const Tensor& x, const DeviceShiftWeights& weights, std::int64_t kernel_h,
                    std::int64_t kernel_w, const nn::functional::Conv2dParams& params,
                    const shift::ActivationBits& bits) {
  if (x.dim() != 4) fail("shift_conv2d: input of shape ", x.shape(), " is not [N, C, H, W]");
  const shift::ConvGeometry geometry{x.size(0), x.size(1), x.size(2), x.size(3),
                                     kernel_h,  kernel_w,  params};
  geometry.validate(weights.packed());
  const Shape shape{geometry.batch, weights.packed().rows, geometry.out_h(), geometry.out_w()};
  return on_float_tensors(
      x, weights, bits, shape, "shift_conv2d",
      [&](const std::int32_t* fixed, const ShiftOutput& out, cudaStream_t stream) {
        run_conv2d(weights, fixed, geometry, format_of(bits), out, stream);
      });
}

Tensor DeviceShiftWeights::linear(const Tensor& x, const shift::ActivationBits& bits) const {
  return shift_linear(x, *this, bits);
}

Tensor DeviceShiftWeights::conv2d(const Tensor& x, std::int64_t kernel_h, std::int64_t kernel_w,
                                  const nn::functional::Conv2dParams& params,
                                  const shift::ActivationBits& bits) const {
  return shift_conv2d(x, *this, kernel_h, kernel_w, params, bits);
}

std::shared_ptr<const shift::DeviceWeights> upload_shift_weights(
    const shift::PackedWeights& weights, Device device) {
  if (device != Device::cuda(current_device()))
    fail("shift kernel: a tensor on ", device.str(),
         " but the current device is cuda:", current_device(), " (ds::cuda::set_device)");
  return std::make_shared<const DeviceShiftWeights>(weights);
}

}  // namespace ds::cuda
