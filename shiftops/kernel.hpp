#pragma once
// Integer shift kernels for CPU inference (DESIGN.md section 2, docs/kernels.md): linear and
// conv2d layers computed from fixed-point activations and packed shift weights with shifts,
// adds and subtracts only. The result is the exact sum floored once to the activation grid.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/functional.hpp"
#include "nn/module.hpp"
#include "shiftops/packed.hpp"

namespace ds::shift {

// How the integer activations are stored: `bits` total bits (2..32), two's complement when
// signed, else unsigned (after a ReLU: one more bit of range; unsigned 32-bit values travel
// in the int32 buffer as their bit pattern).
struct ActivationFormat {
  int bits = 32;
  bool is_signed = true;
  void validate() const;
  std::int64_t lowest() const;
  std::int64_t highest() const;
};

// Implementations of the same integer loops, compiled for different instruction sets.
enum class KernelPath { portable, avx2, avx512 };
const char* kernel_path_name(KernelPath path);
// The paths this CPU can run (portable always), and the fastest of them. The environment
// variable DS_SHIFT_KERNEL=portable|avx2|avx512 overrides the choice of kernel_path().
std::vector<KernelPath> available_kernel_paths();
KernelPath kernel_path();

// The two shapes of the loops (docs/kernels.md, "Algorithm"): the dot form streams the codes
// once per sample (a linear layer's batch below 4; on prepared weights also the table form),
// the column form shares each weight's shift across a vector of positions (larger batches,
// convolutions).
enum class LoopForm { dot, columns };

// Accumulator width a layer needs (docs/kernels.md, "Exactness"), cheapest first: int32 partial
// sums flushed to int64; the same on the 16-bit halves of wider activations, combined in int64
// (column form); int64 sums (dot form); or the wide path (per-exponent int64 sums combined by a
// floor-exact Horner scheme) when even int64 could overflow. The forms differ because a shift
// group costs the dot form a masked accumulator per vector but the column form a flush per
// segment: the dot form takes int32 blocks up to 2 groups, the column form up to 8.
enum class Accumulator { int32_blocks, int32_halves, int64, wide };
Accumulator choose_accumulator(const PackedWeights& weights, const ActivationFormat& format,
                               LoopForm form);
const char* accumulator_name(Accumulator accumulator);

namespace kernel {
struct Preparation;
}

// Packed weights made ready for repeated calls with one activation format on one kernel path:
// the accumulator is chosen once per format (the format's, and each narrower one that a call's
// activations fit, see preparation_for), and the column form's sorted entry lists
// (docs/kernels.md, "Algorithm") are built by the first call that uses them (a linear of batch 4
// or more, any convolution) and kept, so that later calls go straight to the adds. Thread-safe:
// one object may serve several threads. The overloads taking PackedWeights prepare the weights
// for that one call.
class PreparedWeights {
 public:
  PreparedWeights(std::shared_ptr<const PackedWeights> weights, const ActivationFormat& format,
                  KernelPath path = kernel_path());
  const PackedWeights& weights() const { return *weights_; }
  const ActivationFormat& format() const { return format_; }
  KernelPath path() const { return path_; }
  // The format's accumulator in a form; a call on a narrower range may run a cheaper one
  // (preparation_for).
  Accumulator accumulator(LoopForm form) const;
  const kernel::Preparation& preparation(LoopForm form) const;
  // The preparation a call of the form on the activations x (n values) runs: the format's, or
  // that of the narrower format their actual range fits where its accumulator costs less (16.16
  // activations below 128 in magnitude sum in one column pass of int32 blocks instead of two
  // halves). Exact either way: the bounds of docs/kernels.md hold for the values present.
  const kernel::Preparation& preparation_for(LoopForm form, const std::int32_t* x,
                                             std::int64_t n) const;

 private:
  std::shared_ptr<const PackedWeights> weights_;
  ActivationFormat format_;
  KernelPath path_;
  // Per form: the dot form's keeps the table form's tiles, the column form's the entry lists.
  std::shared_ptr<const kernel::Preparation> preparations_[2];
};

// y[n][o] = floor(sum_i sign_oi * x[n][i] * 2^-k_oi) + bias[o], exactly. x is [batch, cols].
void linear_int(const PreparedWeights& weights, const std::int32_t* x, std::int64_t batch,
                std::int64_t* y);
void linear_int(const PackedWeights& weights, const std::int32_t* x, std::int64_t batch,
                const ActivationFormat& format, std::int64_t* y, KernelPath path);
// y / 2^fraction as floats, each the exact result rounded once to float (exactly as
// static_cast<float>(y) * 2^-fraction), written as the kernel finishes it: the layers' form,
// which never stores the integers.
void linear_int(const PreparedWeights& weights, const std::int32_t* x, std::int64_t batch, float* y,
                int fraction);

struct ConvGeometry {
  std::int64_t batch = 1, channels = 1, height = 1, width = 1;
  std::int64_t kernel_h = 1, kernel_w = 1;
  nn::functional::Conv2dParams params;
  std::int64_t out_h() const;
  std::int64_t out_w() const;
  void validate(const PackedWeights& weights) const;
};
// The same for a convolution: x is [batch, channels, height, width], y [batch, rows, oh, ow]
// (zero padding, any stride, dilation and groups).
void conv2d_int(const PreparedWeights& weights, const std::int32_t* x, const ConvGeometry& geometry,
                std::int64_t* y);
void conv2d_int(const PackedWeights& weights, const std::int32_t* x, const ConvGeometry& geometry,
                const ActivationFormat& format, std::int64_t* y, KernelPath path);
void conv2d_int(const PreparedWeights& weights, const std::int32_t* x, const ConvGeometry& geometry,
                float* y, int fraction);

// The plain scalar references the kernels are tested against: one term at a time into a
// 256-bit accumulator, the convolution straight from its definition.
void linear_reference(const PackedWeights& weights, const std::int32_t* x, std::int64_t batch,
                      const ActivationFormat& format, std::int64_t* y);
void conv2d_reference(const PackedWeights& weights, const std::int32_t* x,
                      const ConvGeometry& geometry, const ActivationFormat& format,
                      std::int64_t* y);

// Float tensors in and out: x (f32, CPU) becomes clamp(floor(x * 2^F)) in the layer's signed
// I + F bit format, the result is y / 2^F. The float path computes the same up to float
// rounding. Prepared weights must be prepared for that format (signed I + F bits). The
// overloads taking PackedWeights also take tensors of another device, uploading the weights
// for that call to that device's kernels (shiftops/device_weights.hpp).
Tensor shift_linear(const Tensor& x, const PreparedWeights& weights, const ActivationBits& bits);
Tensor shift_linear(const Tensor& x, const PackedWeights& weights, const ActivationBits& bits,
                    KernelPath path = kernel_path());
Tensor shift_conv2d(const Tensor& x, const PreparedWeights& weights, std::int64_t kernel_h,
                    std::int64_t kernel_w, const nn::functional::Conv2dParams& params,
                    const ActivationBits& bits);
Tensor shift_conv2d(const Tensor& x, const PackedWeights& weights, std::int64_t kernel_h,
                    std::int64_t kernel_w, const nn::functional::Conv2dParams& params,
                    const ActivationBits& bits, KernelPath path = kernel_path());
// The activation format of a shift layer's kernel: signed, I + F bits.
ActivationFormat activation_format(const ActivationBits& bits);

// Routes every shift layer of `model` through the integer kernel (enabled) or back to the float
// path. Training works too: forward through the kernel on the weights rounded and packed at
// that step, backward on the float path (straight-through, same gradients as the float path).
void use_kernel(nn::Module& model, bool enabled = true);

// What a shift layer's forward calls when routed through the kernel: x and bias already on the
// fixed-point grid, weight the effective weight (0 or +-2^-k) carrying its gradient.
Tensor kernel_linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const ActivationBits& bits, bool allow_4bit);
Tensor kernel_conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const nn::functional::Conv2dParams& params, const ActivationBits& bits,
                             bool allow_4bit);

}  // namespace ds::shift
