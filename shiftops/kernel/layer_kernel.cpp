// Float tensors through the integer kernels, and the shift layers' route through them: the
// forward runs the kernel on the weights packed at that step, the backward is the float op's
// own, so that the gradients are exactly the float path's (straight-through).
#include <algorithm>
#include <cmath>
#include <memory>

#include "autograd/function.hpp"
#include "shiftops/convert.hpp"
#include "shiftops/device_weights.hpp"
#include "shiftops/kernel.hpp"
#include "shiftops/kernel/plan.hpp"

namespace ds::shift {

namespace {

void check_input(const Tensor& x, const char* op) {
  if (x.device() != Device::cpu() || x.dtype() != DType::f32)
    fail(op, ": the CPU shift kernel takes f32 CPU tensors, got ", describe(x));
}

void check_prepared(const PreparedWeights& prepared, const ActivationBits& bits, const char* op) {
  const PackedWeights& weights = prepared.weights();
  if (!weights.bias.empty() && weights.fraction_bits != bits.fraction)
    fail(op, ": the packed bias is on the 2^-", weights.fraction_bits,
         " grid but the activations have ", bits.fraction, " fraction bits");
  const ActivationFormat format = activation_format(bits);
  if (prepared.format().bits != format.bits || prepared.format().is_signed != format.is_signed)
    fail(op, ": weights prepared for ", prepared.format().bits, "-bit activations, called with ",
         bits.integer, ".", bits.fraction, " (", format.bits, " bits)");
}

// Elementwise passes over whole activations run on all threads from this many values on (the
// kernels themselves split their work; these passes would otherwise run on one core).
constexpr std::int64_t kParallelValues = std::int64_t{1} << 16;

// clamp(floor(x * 2^F)) in the signed I + F bit format: the float path's fixed_point, as
// integers, with its f32 top, so that to_fixed(x) = to_fixed(fixed_point(x)) and the layers may
// skip the float pass. In float, exactly: x * 2^F is exact (a power of two; an overflow to
// infinity clamps as the exact product would), and so are the bounds (the lowest value is a
// power of two, the top a float times 2^F, both integers). Clamping first keeps the truncating
// conversion in range, and floor(clamp(v)) = clamp(floor(v)) for integer bounds; floor is the
// truncation less one where it rounded up. The same loop looks for NaN, which has no integer:
// the clamp sends it to the top (min and max return their second operand when one is NaN), so
// the conversion stays defined, and the call then fails naming where it was. The integers are an
// i32 tensor: from the CPU allocator's cache of freed blocks, not new pages on every call (those
// faults and their zeroing were 6% of a resnet20 inference through the kernel).
Tensor to_fixed(const Tensor& x, const ActivationBits& bits) {
  const ActivationFormat format = activation_format(bits);
  const float scale = std::ldexp(1.0f, bits.fraction);
  const auto low = static_cast<float>(format.lowest());
  const auto high = static_cast<float>(
      std::floor(fixed_point_highest(bits, DType::f32) * std::ldexp(1.0, bits.fraction)));
  const Tensor input = x.contiguous();
  const float* const values = static_cast<const float*>(input.data_ptr());
  const std::int64_t n = input.numel();
  Tensor fixed = Tensor::empty({n}, DType::i32);
  std::int32_t* const out = fixed.data<std::int32_t>();
  // Chunks of a plain simd loop on each thread's own copies of the pointers and bounds: GCC 12
  // left `omp parallel for simd`, and loops reading them from the shared closure, scalar.
  constexpr std::int64_t kChunk = std::int64_t{1} << 14;
  int any_nan = 0;
#pragma omp parallel reduction(| : any_nan) if (n >= kParallelValues)
  {
    const float* const from = values;
    std::int32_t* const to = out;
    const float own_scale = scale, own_low = low, own_high = high;
#pragma omp for schedule(static)
    for (std::int64_t begin = 0; begin < n; begin += kChunk) {
      const std::int64_t end = std::min(n, begin + kChunk);
#pragma omp simd reduction(| : any_nan)
      for (std::int64_t i = begin; i < end; ++i) {
        const float value = from[i];
        any_nan |= value != value;
        const float clamped = std::max(own_low, std::min(own_high, value * own_scale));
        const auto truncated = static_cast<std::int32_t>(clamped);
        to[i] = truncated - static_cast<std::int32_t>(static_cast<float>(truncated) > clamped);
      }
    }
  }
  if (any_nan)
    for (std::int64_t i = 0; i < n; ++i)
      if (std::isnan(values[i])) fail("shift kernel: the input holds a NaN at flat index ", i);
  return fixed;
}

std::vector<Tensor> defined(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return bias.defined() ? std::vector<Tensor>{x, weight, bias} : std::vector<Tensor>{x, weight};
}

Tensor bias_of(const std::vector<Tensor>& in) { return in.size() > 2 ? in[2] : Tensor(); }

}  // namespace

ActivationFormat activation_format(const ActivationBits& bits) {
  bits.validate();
  return {bits.integer + bits.fraction, true};
}

Tensor shift_linear(const Tensor& x, const PreparedWeights& prepared, const ActivationBits& bits) {
  const PackedWeights& weights = prepared.weights();
  check_input(x, "shift_linear");
  check_prepared(prepared, bits, "shift_linear");
  if (x.dim() < 1 || x.size(-1) != weights.cols)
    fail("shift_linear: input of shape ", x.shape(), " for packed weights with ", weights.cols,
         " columns");
  const std::int64_t batch = x.numel() / weights.cols;
  const auto fixed = to_fixed(x, bits);
  Shape shape = x.shape();
  shape.back() = weights.rows;
  Tensor y = Tensor::empty(shape);
  linear_int(prepared, fixed.data<std::int32_t>(), batch, y.data<float>(), bits.fraction);
  return y;
}

Tensor shift_linear(const Tensor& x, const PackedWeights& weights, const ActivationBits& bits,
                    KernelPath path) {
  if (!x.device().is_cpu())
    return upload_weights(weights, x.device(), "shift_linear")->linear(x, bits);
  return shift_linear(x, PreparedWeights(kernel::borrow(weights), activation_format(bits), path),
                      bits);
}

Tensor shift_conv2d(const Tensor& x, const PreparedWeights& prepared, std::int64_t kernel_h,
                    std::int64_t kernel_w, const nn::functional::Conv2dParams& params,
                    const ActivationBits& bits) {
  const PackedWeights& weights = prepared.weights();
  check_input(x, "shift_conv2d");
  check_prepared(prepared, bits, "shift_conv2d");
  if (x.dim() != 4) fail("shift_conv2d: input of shape ", x.shape(), " is not [N, C, H, W]");
  const ConvGeometry geometry{x.size(0), x.size(1), x.size(2), x.size(3),
                              kernel_h,  kernel_w,  params};
  geometry.validate(weights);
  const auto fixed = to_fixed(x, bits);
  Tensor y = Tensor::empty({geometry.batch, weights.rows, geometry.out_h(), geometry.out_w()});
  conv2d_int(prepared, fixed.data<std::int32_t>(), geometry, y.data<float>(), bits.fraction);
  return y;
}

Tensor shift_conv2d(const Tensor& x, const PackedWeights& weights, std::int64_t kernel_h,
                    std::int64_t kernel_w, const nn::functional::Conv2dParams& params,
                    const ActivationBits& bits, KernelPath path) {
  if (!x.device().is_cpu())
    return upload_weights(weights, x.device(), "shift_conv2d")
        ->conv2d(x, kernel_h, kernel_w, params, bits);
  return shift_conv2d(x, PreparedWeights(kernel::borrow(weights), activation_format(bits), path),
                      kernel_h, kernel_w, params, bits);
}

Tensor kernel_linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const ActivationBits& bits, bool allow_4bit) {
  return autograd::custom_function(
      "shift_linear_kernel", defined(x, weight, bias),
      [&](const std::vector<Tensor>& in) {
        const PackedWeights packed = pack_weights(in[1], bias_of(in), bits.fraction, allow_4bit);
        return shift_linear(in[0], packed, bits);
      },
      [x, weight](const Tensor& grad, const std::vector<bool>& needs_grad) {
        return nn::functional::linear_gradients(x, weight, grad, needs_grad);
      });
}

Tensor kernel_conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const nn::functional::Conv2dParams& params, const ActivationBits& bits,
                             bool allow_4bit) {
  return autograd::custom_function(
      "shift_conv2d_kernel", defined(x, weight, bias),
      [&](const std::vector<Tensor>& in) {
        const PackedWeights packed = pack_weights(in[1], bias_of(in), bits.fraction, allow_4bit);
        return shift_conv2d(in[0], packed, in[1].size(2), in[1].size(3), params, bits);
      },
      [x, weight, params](const Tensor& grad, const std::vector<bool>& needs_grad) {
        return nn::functional::conv2d_gradients(x, weight, grad, params, needs_grad);
      });
}

void use_kernel(nn::Module& model, bool enabled) {
  for (const NamedShiftLayer& named : shift_layers(model)) named.layer->set_use_kernel(enabled);
}

}  // namespace ds::shift
