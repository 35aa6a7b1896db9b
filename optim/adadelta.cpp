#include "optim/adadelta.hpp"

#include <utility>

#include "optim/state_buffer.hpp"
#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

ParamGroup adadelta_defaults(const AdadeltaOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.eps = options.eps;
  return group;
}

}  // namespace

Adadelta::Adadelta(std::vector<NamedParameter> params, const AdadeltaOptions& options)
    : Adadelta(single_group(std::move(params)), options) {}

Adadelta::Adadelta(std::vector<ParamGroupSpec> groups, const AdadeltaOptions& defaults)
    : Optimizer("Adadelta", std::move(groups), adadelta_defaults(defaults)), rho_(defaults.rho) {
  // PyTorch accepts rho = 1 (the averages then never move), unlike the betas of Adam.
  if (!(rho_ >= 0.0 && rho_ <= 1.0)) fail("Adadelta: invalid rho ", rho_, " (must be in [0, 1])");
  check_groups();
}

void Adadelta::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("eps", group.eps);
  require_non_negative("weight_decay", group.weight_decay);
}

void Adadelta::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                      ParamState& state) {
  const Tensor g = group.weight_decay != 0.0 ? grad + param * group.weight_decay : grad;
  state.step += 1;
  const Tensor& square_avg = state_buffer(state, "square_avg", param);
  const Tensor& acc_delta = state_buffer(state, "acc_delta", param);
  square_avg.mul_(rho_).add_(g * g, 1.0 - rho_);
  const Tensor std = sqrt(square_avg + group.eps);
  const Tensor delta = sqrt(acc_delta + group.eps);
  delta.div_(std).mul_(g);
  acc_delta.mul_(rho_).add_(delta * delta, 1.0 - rho_);
  param.add_(delta, -group.lr);
}

}  // namespace ds::optim
