#pragma once
// DeepShift layers. ShiftLinear and ShiftConv2d hold their weight either as DeepShift-Q (an
// ordinary float `weight`, rounded to a signed power of two in every forward) or as
// DeepShift-PS (`shift` and `sign` parameters). Their type names follow the original project:
// LinearShift / Conv2dShift for PS, LinearShiftQ / Conv2dShiftQ for Q.
#include <memory>
#include <string>

#include "nn/layers.hpp"
#include "shiftops/quantize.hpp"

namespace ds::shift {

enum class ShiftType { Q, PS };
ShiftType parse_shift_type(const std::string& text);  // "Q" | "PS"
const char* shift_type_name(ShiftType type);

struct ShiftOptions {
  int weight_bits = 5;
  ActivationBits activation;
  Rounding rounding = Rounding::deterministic;
  bool freeze_sign = false;  // PS: the sign parameter is not trained
  void validate() const;
};

// A layer's weights as inference through the kernel keeps them (layers.cpp).
class PackedInference;

// What the two layer shapes share: the parameters, the in-place clamp, the rounding.
class ShiftLayer : public nn::Module {
 public:
  ~ShiftLayer() override;
  ShiftType shift_type() const { return type_; }
  const ShiftOptions& options() const { return options_; }
  ShiftRange range() const;
  // The weight this forward uses (after the in-place clamp of the stored parameter): a tensor
  // of 0 and +-2^k that carries the method's gradient back to the parameters.
  Tensor effective_weight();
  Tensor fixed_bias() const;
  // Rounds the stored parameters themselves (for evaluation and saving): PS shift = round(shift),
  // sign = sign(round(sign)); Q weight = its power of two; bias onto the fixed-point grid.
  void round_weights_();
  // Conversion from an FP32 layer's weights: Q keeps the weight and rounds the bias with
  // fixed(); PS takes shift = round(log2|w|) (clamped to the range), sign = sign(w), the bias.
  void load_float_weights(const Tensor& weight, const Tensor& bias);
  const Tensor& weight() const { return weight_; }  // Q only
  const Tensor& shift() const { return shift_; }    // PS only
  const Tensor& sign() const { return sign_; }      // PS only
  const Tensor& bias() const { return bias_; }
  std::int64_t weight_count() const;
  // Bytes when stored packed: 4 bits per weight for b <= 4, else 8; biases as 32-bit words.
  std::int64_t packed_bytes() const;
  void annotate(nn::LayerSummary& layer) const override;
  // Routes the forward through the integer shift kernel (shiftops/kernel.hpp, use_kernel).
  void set_use_kernel(bool enabled) { use_kernel_ = enabled; }
  bool uses_kernel() const { return use_kernel_; }

 protected:
  ShiftLayer(const char* base_name, ShiftType type, const ShiftOptions& options,
             const Shape& weight_shape, bool bias, double init_shift_low, double init_shift_high);
  // Inference through the kernel keeps the weights packed, prepared and uploaded while the
  // parameters are unchanged; they are freed with the layer.
  PackedInference& packed_inference() const { return *packed_inference_; }

 private:
  ShiftType type_;
  ShiftOptions options_;
  Tensor weight_, shift_, sign_, bias_;
  bool use_kernel_ = false;
  std::unique_ptr<PackedInference> packed_inference_;
};

class ShiftLinear : public ShiftLayer {
 public:
  ShiftLinear(std::int64_t in_features, std::int64_t out_features, bool bias, ShiftType type,
              const ShiftOptions& options);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  std::int64_t macs(const Shape& input, const Shape& output) const override;
  std::int64_t in_features() const { return in_features_; }

 private:
  std::int64_t in_features_, out_features_;
};

class ShiftConv2d : public ShiftLayer {
 public:
  ShiftConv2d(const nn::Conv2dOptions& conv, ShiftType type, const ShiftOptions& options);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  std::int64_t macs(const Shape& input, const Shape& output) const override;
  const nn::Conv2dOptions& conv_options() const { return conv_; }

 private:
  nn::Conv2dOptions conv_;
};

}  // namespace ds::shift
