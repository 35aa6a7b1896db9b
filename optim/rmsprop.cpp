#include "optim/rmsprop.hpp"

#include <utility>

#include "optim/state_buffer.hpp"
#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

ParamGroup rmsprop_defaults(const RMSpropOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.momentum = options.momentum;
  group.eps = options.eps;
  return group;
}

}  // namespace

RMSprop::RMSprop(std::vector<NamedParameter> params, const RMSpropOptions& options)
    : RMSprop(single_group(std::move(params)), options) {}

RMSprop::RMSprop(std::vector<ParamGroupSpec> groups, const RMSpropOptions& defaults)
    : Optimizer("RMSprop", std::move(groups), rmsprop_defaults(defaults)),
      alpha_(defaults.alpha),
      centered_(defaults.centered) {
  // PyTorch only asks alpha >= 0; anything above 1 diverges but is the caller's choice.
  require_non_negative("alpha", alpha_);
  check_groups();
}

void RMSprop::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("eps", group.eps);
  require_non_negative("momentum", group.momentum);
  require_non_negative("weight_decay", group.weight_decay);
}

void RMSprop::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                     ParamState& state) {
  const Tensor g = group.weight_decay != 0.0 ? grad + param * group.weight_decay : grad;
  state.step += 1;
  const Tensor& square_avg = state_buffer(state, "square_avg", param);
  square_avg.mul_(alpha_).add_(g * g, 1.0 - alpha_);
  Tensor denom;
  if (centered_) {
    const Tensor& grad_avg = state_buffer(state, "grad_avg", param);
    grad_avg.mul_(alpha_).add_(g, 1.0 - alpha_);
    denom = sqrt(square_avg - grad_avg * grad_avg);
  } else {
    denom = sqrt(square_avg);
  }
  denom.add_(group.eps);
  if (group.momentum > 0.0) {
    const Tensor& buffer = state_buffer(state, "momentum_buffer", param);
    buffer.mul_(group.momentum).add_(g / denom);
    param.add_(buffer, -group.lr);
  } else {
    param.add_(g / denom, -group.lr);
  }
}

}  // namespace ds::optim
