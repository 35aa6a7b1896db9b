#include "nn/models/blocks.hpp"

#include "autograd/grad_mode.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models::detail {

Tensor Composite::call_add_relu(const std::string& name, const Tensor& input,
                                const Tensor& residual) const {
  const ModulePtr module = child(name);
  if (auto* norm = dynamic_cast<BatchNorm*>(module.get())) return norm->add_relu(input, residual);
  return relu((*module)(input) + residual);
}

Tensor NamedSequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& child : named_children()) x = (*child.module)(x);
  return x;
}

std::shared_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t kernel,
                             std::int64_t stride, std::int64_t padding, bool bias,
                             std::int64_t groups) {
  return make<Conv2d>(Conv2dOptions::square(in, out, kernel, stride, padding, bias, groups));
}

namespace {
template <typename T, typename F>
void for_each(Module& root, F&& apply) {
  for (const auto& named : root.named_modules())
    if (auto* module = dynamic_cast<T*>(named.module.get())) apply(*module);
}

void zero_if_defined(const Tensor& t) {
  NoGradGuard no_grad;
  if (t.defined()) t.zero_();
}
}  // namespace

void kaiming_normal_convs(Module& root, init::FanMode mode, bool zero_bias) {
  for_each<Conv2d>(root, [&](Conv2d& c) {
    init::kaiming_normal_(c.weight(), 0.0, mode);
    if (zero_bias) zero_if_defined(c.bias());
  });
}

void kaiming_normal_linears(Module& root) {
  for_each<Linear>(root, [](Linear& l) { init::kaiming_normal_(l.weight()); });
}

void normal_convs_and_linears(Module& root, double stddev) {
  for_each<Conv2d>(root, [&](Conv2d& c) { init::normal_(c.weight(), 0.0, stddev); });
  for_each<Linear>(root, [&](Linear& l) { init::normal_(l.weight(), 0.0, stddev); });
}

void normal_linears(Module& root, double stddev, bool zero_bias) {
  for_each<Linear>(root, [&](Linear& l) {
    init::normal_(l.weight(), 0.0, stddev);
    if (zero_bias) zero_if_defined(l.bias());
  });
}

void zero_linear_biases(Module& root) {
  for_each<Linear>(root, [](Linear& l) { zero_if_defined(l.bias()); });
}

void fill_batchnorms(Module& root, double weight, double bias) {
  NoGradGuard no_grad;
  for_each<BatchNorm>(root, [&](BatchNorm& bn) {
    for (const auto& p : bn.named_parameters(false))
      p.tensor.fill_(p.name == "weight" ? weight : bias);
  });
}

}  // namespace ds::nn::models::detail
