#include "nn/init.hpp"
#include "nn/layers.hpp"

namespace ds::nn {

Conv2dOptions Conv2dOptions::square(std::int64_t in, std::int64_t out, std::int64_t kernel,
                                    std::int64_t stride, std::int64_t padding, bool bias,
                                    std::int64_t groups, std::int64_t dilation) {
  Conv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel_h = o.kernel_w = kernel;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = padding;
  o.dilation_h = o.dilation_w = dilation;
  o.groups = groups;
  o.bias = bias;
  return o;
}

functional::Conv2dParams Conv2dOptions::params() const {
  return {stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups};
}

Conv2d::Conv2d(const Conv2dOptions& options) : Module("Conv2d"), options_(options) {
  const auto& o = options;
  if (o.in_channels < 1 || o.out_channels < 1 || o.groups < 1 || o.in_channels % o.groups != 0 ||
      o.out_channels % o.groups != 0)
    fail("Conv2d: ", o.in_channels, " -> ", o.out_channels, " channels cannot form ", o.groups,
         " groups");
  if (o.kernel_h < 1 || o.kernel_w < 1 || o.stride_h < 1 || o.stride_w < 1 || o.pad_h < 0 ||
      o.pad_w < 0 || o.dilation_h < 1 || o.dilation_w < 1)
    fail("Conv2d: invalid kernel/stride/padding/dilation ", o.kernel_h, "x", o.kernel_w, "/",
         o.stride_h, "x", o.stride_w, "/", o.pad_h, "x", o.pad_w, "/", o.dilation_h, "x",
         o.dilation_w);
  weight_ = register_parameter(
      "weight", Tensor::empty({o.out_channels, o.in_channels / o.groups, o.kernel_h, o.kernel_w}));
  if (o.bias) bias_ = register_parameter("bias", Tensor::empty({o.out_channels}));
  init::default_layer_init_(weight_, bias_);
}

Tensor Conv2d::forward(const Tensor& input) {
  return functional::conv2d(input, weight_, bias_, options_.params());
}

std::string Conv2d::describe() const {
  const auto& o = options_;
  return concat(o.in_channels, ", ", o.out_channels, ", kernel_size=(", o.kernel_h, ", ",
                o.kernel_w, "), stride=(", o.stride_h, ", ", o.stride_w, "), padding=(", o.pad_h,
                ", ", o.pad_w, ")", o.groups > 1 ? concat(", groups=", o.groups) : "",
                o.bias ? "" : ", bias=False");
}

std::int64_t Conv2d::macs(const Shape&, const Shape& output) const {
  const auto& o = options_;
  return numel_of(output) * (o.in_channels / o.groups) * o.kernel_h * o.kernel_w;
}

}  // namespace ds::nn
