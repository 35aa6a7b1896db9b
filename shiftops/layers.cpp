#include "shiftops/layers.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include "autograd/grad_mode.hpp"
#include "nn/init.hpp"
#include "nn/summary.hpp"
#include "shiftops/device_weights.hpp"
#include "shiftops/kernel.hpp"
#include "tensor/ops.hpp"

namespace ds::shift {

ShiftType parse_shift_type(const std::string& text) {
  if (text == "Q") return ShiftType::Q;
  if (text == "PS") return ShiftType::PS;
  fail("unknown shift type '", text, "' (expected Q or PS)");
}

const char* shift_type_name(ShiftType type) { return type == ShiftType::Q ? "Q" : "PS"; }

void ShiftOptions::validate() const {
  validate_weight_bits(weight_bits);
  activation.validate();
}

// The packed weights of a layer running inference through the kernel, prepared for the layer's
// activations, so that a forward in inference does not round, re-pack and re-sort unchanged
// parameters. They are valid while every parameter still lives in the same storage at the same
// version: an optimizer step, a load, round_weights_ or any other in-place write bumps the
// version and the next forward re-packs. The storages packed from are kept, so that a replaced
// parameter's memory cannot come back at the same address with a matching version.
class PackedInference {
 public:
  // A layer's weights for inference on one device: prepared for the CPU kernels, or uploaded.
  struct Weights {
    std::shared_ptr<const PreparedWeights> cpu;
    std::shared_ptr<const DeviceWeights> on_device;
  };

  Weights get(ShiftLayer& layer, Device device, const char* op) {
    // Forwards of one model may run on several threads.
    std::lock_guard<std::mutex> lock(mutex_);
    refresh(layer);
    if (device.is_cpu()) return {prepared_, nullptr};
    if (!on_device_ || device_ != device) {
      on_device_ = upload_weights(prepared_->weights(), device, op);
      device_ = device;
    }
    return {nullptr, on_device_};
  }

 private:
  // Packs the layer's weights again when a parameter changed. Everything that can throw comes
  // first, so that a failure leaves the previous, consistent state.
  void refresh(ShiftLayer& layer) {
    const std::vector<Tensor> parameters{layer.weight(), layer.shift(), layer.sign(), layer.bias()};
    if (prepared_ && matches(parameters)) return;
    auto prepared =
        std::make_shared<const PreparedWeights>(std::make_shared<const PackedWeights>(pack(layer)),
                                                activation_format(layer.options().activation));
    // The in-place clamp in the packing forward bumps versions: record them afterwards.
    std::vector<Storage> storages;
    std::vector<std::uint64_t> versions;
    for (const Tensor& p : parameters) {
      storages.push_back(p.defined() ? p.storage() : Storage());
      versions.push_back(p.defined() ? p.storage().version() : 0);
    }
    prepared_ = std::move(prepared);
    storages_ = std::move(storages);
    versions_ = std::move(versions);
    on_device_.reset();
  }

  bool matches(const std::vector<Tensor>& parameters) const {
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const Tensor& p = parameters[i];
      const void* data = p.defined() ? p.storage().data() : nullptr;
      if (data != storages_[i].data() || (p.defined() && p.storage().version() != versions_[i]))
        return false;
    }
    return true;
  }

  std::mutex mutex_;
  std::vector<Storage> storages_;
  std::vector<std::uint64_t> versions_;
  std::shared_ptr<const PreparedWeights> prepared_;
  // Uploaded for the last input that was not on the CPU.
  Device device_ = Device::cpu();
  std::shared_ptr<const DeviceWeights> on_device_;
};

ShiftLayer::~ShiftLayer() = default;

ShiftLayer::ShiftLayer(const char* base_name, ShiftType type, const ShiftOptions& options,
                       const Shape& weight_shape, bool bias, double init_shift_low,
                       double init_shift_high)
    : Module(std::string(base_name) + (type == ShiftType::Q ? "ShiftQ" : "Shift")),
      type_(type),
      options_(options),
      packed_inference_(std::make_unique<PackedInference>()) {
  options.validate();
  const double fan_in = static_cast<double>(nn::init::fans(weight_shape).first);
  if (type == ShiftType::Q) {
    weight_ = register_parameter("weight", Tensor::empty(weight_shape));
    nn::init::kaiming_uniform_(weight_, std::sqrt(5.0));
  } else {
    shift_ = register_parameter("shift", uniform(weight_shape, init_shift_low, init_shift_high));
    sign_ = register_parameter("sign", uniform(weight_shape, -1.0, 1.0));
    if (options.freeze_sign) sign_.requires_grad_(false);
  }
  if (bias) {
    bias_ = register_parameter("bias", Tensor::empty({weight_shape[0]}));
    nn::init::uniform_(bias_, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  }
}

ShiftRange ShiftLayer::range() const {
  return type_ == ShiftType::Q ? q_range(options_.weight_bits) : ps_range(options_.weight_bits);
}

Tensor ShiftLayer::effective_weight() {
  const ShiftRange r = range();
  if (type_ == ShiftType::Q) {
    clamp_magnitude_(weight_, r);
    return round_power_of_two(weight_, options_.rounding);
  }
  {
    NoGradGuard no_grad;
    shift_.clamp_(r.min_shift, r.max_shift);
  }
  return ps_weight(shift_, sign_, options_.rounding);
}

Tensor ShiftLayer::fixed_bias() const {
  return bias_.defined() ? fixed_point(bias_, options_.activation) : Tensor();
}

void ShiftLayer::round_weights_() {
  NoGradGuard no_grad;
  const ShiftRange r = range();
  if (type_ == ShiftType::Q) {
    clamp_magnitude_(weight_, r);
    weight_.copy_(round_power_of_two(weight_, Rounding::deterministic));
  } else {
    shift_.clamp_(r.min_shift, r.max_shift);
    shift_.round_();
    sign_.copy_(ds::sign(round(sign_)));
  }
  if (bias_.defined()) bias_.copy_(fixed_point(bias_, options_.activation));
}

void ShiftLayer::load_float_weights(const Tensor& weight, const Tensor& bias) {
  NoGradGuard no_grad;
  const Tensor& target = type_ == ShiftType::Q ? weight_ : shift_;
  if (weight.shape() != target.shape())
    fail(type_name(), ": weight of shape ", weight.shape(), " does not fit ", target.shape());
  if (bias.defined() != bias_.defined())
    fail(type_name(), ": bias presence differs from the layer being converted");
  if (type_ == ShiftType::Q) {
    weight_.copy_(weight);
    if (bias_.defined()) bias_.copy_(fixed_point(bias, options_.activation));
    return;
  }
  const ShiftRange r = range();
  const Tensor magnitude = abs(weight);
  const Tensor nonzero = ne(magnitude, Tensor::scalar(0, weight.dtype(), weight.device()));
  // A zero weight has no exponent: it gets the smallest shift and sign 0.
  const Tensor exponent = where(nonzero, round(log2(where(nonzero, magnitude, magnitude + 1.0))),
                                Tensor::scalar(r.min_shift, weight.dtype(), weight.device()));
  shift_.copy_(clamp(exponent, r.min_shift, r.max_shift));
  sign_.copy_(ds::sign(weight));
  if (bias_.defined()) bias_.copy_(bias);
}

std::int64_t ShiftLayer::weight_count() const {
  return type_ == ShiftType::Q ? weight_.numel() : shift_.numel();
}

std::int64_t ShiftLayer::packed_bytes() const {
  const Tensor& parameter = type_ == ShiftType::Q ? weight_ : shift_;
  const std::int64_t rows = parameter.size(0), cols = parameter.numel() / rows;
  const bool allow_4bit = options_.weight_bits <= 4;
  // The code width depends on the exponents present (a Q layer using both 2^0 and 2^-7 falls
  // back to 8 bits): find their span in the weights as the forward would round them.
  int span = 0;
  if (allow_4bit) {
    NoGradGuard no_grad;
    const ShiftRange r = range();
    Tensor weight;
    if (type_ == ShiftType::Q) {
      weight = weight_.detach().clone();
      clamp_magnitude_(weight, r);
      weight = round_power_of_two(weight, Rounding::deterministic);
    } else {
      weight = ps_weight(clamp(shift_.detach(), r.min_shift, r.max_shift), sign_.detach(),
                         Rounding::deterministic);
    }
    int k_low = 0, k_high = 0;
    bool any = false;
    for (const float w : weight.contiguous().to_vector<float>()) {
      if (w == 0.0f) continue;
      int exponent = 0;
      std::frexp(w, &exponent);
      const int k = 1 - exponent;
      k_low = any ? std::min(k_low, k) : k;
      k_high = any ? std::max(k_high, k) : k;
      any = true;
    }
    span = k_high - k_low;
  }
  const int code_bits = packed_code_bits(allow_4bit, span);
  // The packed file stores the bias as f32 values on the fixed-point grid.
  return rows * packed_row_bytes(cols, code_bits) + (bias_.defined() ? bias_.numel() * 4 : 0);
}

void ShiftLayer::annotate(nn::LayerSummary& layer) const {
  layer.kind = type_ == ShiftType::Q ? "shift-Q" : "shift-PS";
  layer.weight_bits = options_.weight_bits;
  layer.multiplies_replaced = layer.macs;
  layer.stored_bytes = packed_bytes();
}

namespace {

// Inference through the kernel reuses the packed weights; recording gradients, or rounding
// stochastically (a new draw each forward), packs the weights of that step.
bool reuses_packed(const ShiftLayer& layer) {
  return !GradMode::enabled() && layer.options().rounding == Rounding::deterministic;
}

}  // namespace

ShiftLinear::ShiftLinear(std::int64_t in_features, std::int64_t out_features, bool bias,
                         ShiftType type, const ShiftOptions& options)
    : ShiftLayer("Linear", type, options, {out_features, in_features}, bias,
                 type == ShiftType::PS ? ps_range(options.weight_bits).min_shift : 0, 0.0),
      in_features_(in_features),
      out_features_(out_features) {}

Tensor ShiftLinear::forward(const Tensor& input) {
  // The kernel quantises its input exactly as fixed_point does: inference skips the float pass.
  if (uses_kernel() && reuses_packed(*this)) {
    const auto weights = packed_inference().get(*this, input.device(), "ShiftLinear");
    if (weights.on_device) return weights.on_device->linear(input, options().activation);
    return shift_linear(input, *weights.cpu, options().activation);
  }
  const Tensor x = fixed_point(input, options().activation);
  if (uses_kernel())
    return kernel_linear_forward(x, effective_weight(), fixed_bias(), options().activation,
                                 options().weight_bits <= 4);
  return nn::functional::linear(x, effective_weight(), fixed_bias());
}

std::string ShiftLinear::describe() const {
  return concat("in_features=", in_features_, ", out_features=", out_features_,
                ", bias=", bias().defined() ? "True" : "False",
                ", weight_bits=", options().weight_bits,
                ", rounding=", rounding_name(options().rounding));
}

std::int64_t ShiftLinear::macs(const Shape& input, const Shape&) const {
  return numel_of(input) * out_features_;
}

// PS convolutions start their shifts in U(-10, -1), as the original does.
ShiftConv2d::ShiftConv2d(const nn::Conv2dOptions& conv, ShiftType type, const ShiftOptions& options)
    : ShiftLayer("Conv2d", type, options,
                 {conv.out_channels, conv.in_channels / conv.groups, conv.kernel_h, conv.kernel_w},
                 conv.bias, -10.0, -1.0),
      conv_(conv) {}

Tensor ShiftConv2d::forward(const Tensor& input) {
  if (uses_kernel() && reuses_packed(*this)) {
    const auto weights = packed_inference().get(*this, input.device(), "ShiftConv2d");
    if (weights.on_device)
      return weights.on_device->conv2d(input, conv_.kernel_h, conv_.kernel_w, conv_.params(),
                                       options().activation);
    return shift_conv2d(input, *weights.cpu, conv_.kernel_h, conv_.kernel_w, conv_.params(),
                        options().activation);
  }
  const Tensor x = fixed_point(input, options().activation);
  if (uses_kernel())
    return kernel_conv2d_forward(x, effective_weight(), fixed_bias(), conv_.params(),
                                 options().activation, options().weight_bits <= 4);
  return nn::functional::conv2d(x, effective_weight(), fixed_bias(), conv_.params());
}

std::string ShiftConv2d::describe() const {
  return concat(conv_.in_channels, ", ", conv_.out_channels, ", kernel_size=(", conv_.kernel_h,
                ", ", conv_.kernel_w, "), stride=(", conv_.stride_h, ", ", conv_.stride_w,
                "), padding=(", conv_.pad_h, ", ", conv_.pad_w,
                "), weight_bits=", options().weight_bits,
                ", rounding=", rounding_name(options().rounding));
}

std::int64_t ShiftConv2d::macs(const Shape&, const Shape& output) const {
  return numel_of(output) * (conv_.in_channels / conv_.groups) * conv_.kernel_h * conv_.kernel_w;
}

}  // namespace ds::shift
