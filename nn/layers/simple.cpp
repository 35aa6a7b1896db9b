// Parameter-free layers: activations, dropout, pooling, reshaping and the ResNet shortcut.
#include "nn/layers.hpp"
#include "tensor/ops.hpp"

namespace ds::nn {

Tensor ReLU::forward(const Tensor& input) { return relu(input); }
Tensor ReLU6::forward(const Tensor& input) { return functional::relu6(input); }
Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(input, dim_); }
Tensor Flatten::forward(const Tensor& input) { return input.flatten(start_dim_); }

Dropout::Dropout(double p) : Module("Dropout"), p_(p) {
  if (p < 0.0 || p > 1.0) fail("Dropout: probability ", p, " is outside [0, 1]");
}

Tensor Dropout::forward(const Tensor& input) {
  return functional::dropout(input, p_, is_training());
}

std::string Dropout::describe() const { return concat("p=", p_); }

namespace {
Window pooling_window(const char* name, std::int64_t kernel, std::int64_t stride,
                      std::int64_t padding) {
  if (kernel < 1 || stride < 0 || padding < 0)
    fail(name, ": invalid kernel ", kernel, ", stride ", stride, " or padding ", padding);
  const std::int64_t step = stride == 0 ? kernel : stride;  // PyTorch: stride defaults to kernel
  return Window{kernel, kernel, step, step, padding, padding};
}

std::string window_text(const Window& w) {
  return concat("kernel_size=", w.kernel_h, ", stride=", w.stride_h, ", padding=", w.pad_h);
}
}  // namespace

MaxPool2d::MaxPool2d(std::int64_t kernel, std::int64_t stride, std::int64_t padding, bool ceil_mode)
    : Module("MaxPool2d"),
      window_(pooling_window("MaxPool2d", kernel, stride, padding)),
      ceil_mode_(ceil_mode) {}
Tensor MaxPool2d::forward(const Tensor& input) {
  return functional::max_pool2d(input, window_, ceil_mode_);
}
std::string MaxPool2d::describe() const {
  return window_text(window_) + (ceil_mode_ ? ", ceil_mode=True" : "");
}

AvgPool2d::AvgPool2d(std::int64_t kernel, std::int64_t stride, std::int64_t padding)
    : Module("AvgPool2d"), window_(pooling_window("AvgPool2d", kernel, stride, padding)) {}
Tensor AvgPool2d::forward(const Tensor& input) { return functional::avg_pool2d(input, window_); }
std::string AvgPool2d::describe() const { return window_text(window_); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::int64_t out_h, std::int64_t out_w)
    : Module("AdaptiveAvgPool2d"), out_h_(out_h), out_w_(out_w) {}
Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
  return functional::adaptive_avg_pool2d(input, out_h_, out_w_);
}
std::string AdaptiveAvgPool2d::describe() const {
  return concat("output_size=(", out_h_, ", ", out_w_, ")");
}

Sequential::Sequential(std::vector<ModulePtr> modules) : Module("Sequential") {
  for (auto& m : modules) add(std::move(m));
}

Sequential& Sequential::add(ModulePtr module) {
  register_module(std::to_string(size()), std::move(module));
  return *this;
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& child : named_children()) x = (*child.module)(x);
  return x;
}

Tensor ShortcutA::forward(const Tensor& input) {
  if (input.dim() != 4) fail("ShortcutA: expects [N, C, H, W], got shape ", input.shape());
  const Tensor sub = input.slice(2, 0, input.shape()[2], 2).slice(3, 0, input.shape()[3], 2);
  Shape pad_shape = sub.shape();
  pad_shape[1] = planes_ / 4;
  const Tensor zeros = Tensor::zeros(pad_shape, input.dtype(), input.device());
  return cat({zeros, sub, zeros}, 1);
}

}  // namespace ds::nn
