#include "nn/init.hpp"
#include "nn/layers.hpp"

namespace ds::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias)
    : Module("Linear"), in_features_(in_features), out_features_(out_features) {
  if (in_features < 1 || out_features < 1)
    fail("Linear: features must be positive, got ", in_features, " -> ", out_features);
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_features}));
  init::default_layer_init_(weight_, bias_);
}

Tensor Linear::forward(const Tensor& input) { return functional::linear(input, weight_, bias_); }

std::string Linear::describe() const {
  return concat("in_features=", in_features_, ", out_features=", out_features_,
                ", bias=", bias_.defined() ? "True" : "False");
}

std::int64_t Linear::macs(const Shape& input, const Shape&) const {
  return numel_of(input) / in_features_ * in_features_ * out_features_;
}

}  // namespace ds::nn
