#include "optim/adagrad.hpp"

#include <utility>

#include "optim/state_buffer.hpp"
#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

ParamGroup adagrad_defaults(const AdagradOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.eps = options.eps;
  return group;
}

}  // namespace

Adagrad::Adagrad(std::vector<NamedParameter> params, const AdagradOptions& options)
    : Adagrad(single_group(std::move(params)), options) {}

Adagrad::Adagrad(std::vector<ParamGroupSpec> groups, const AdagradOptions& defaults)
    : Optimizer("Adagrad", std::move(groups), adagrad_defaults(defaults)),
      lr_decay_(defaults.lr_decay),
      initial_accumulator_value_(defaults.initial_accumulator_value) {
  require_non_negative("lr_decay", lr_decay_);
  require_non_negative("initial_accumulator_value", initial_accumulator_value_);
  check_groups();
}

void Adagrad::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("eps", group.eps);
  require_non_negative("weight_decay", group.weight_decay);
}

void Adagrad::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                     ParamState& state) {
  const Tensor g = group.weight_decay != 0.0 ? grad + param * group.weight_decay : grad;
  state.step += 1;
  const double decayed_lr = group.lr / (1.0 + static_cast<double>(state.step - 1) * lr_decay_);
  const Tensor& sum = state_buffer(state, "sum", param, initial_accumulator_value_);
  sum.add_(g * g);
  const Tensor std = sqrt(sum);
  std.add_(group.eps);
  param.add_(g / std, -decayed_lr);
}

}  // namespace ds::optim
