#include "optim/adam.hpp"

#include <cmath>
#include <utility>

#include "optim/moments.hpp"
#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

ParamGroup adam_defaults(const AdamOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.beta1 = options.beta1;
  group.beta2 = options.beta2;
  group.eps = options.eps;
  return group;
}

}  // namespace

Adam::Adam(std::vector<NamedParameter> params, const AdamOptions& options)
    : Adam(single_group(std::move(params)), options) {}

Adam::Adam(std::vector<ParamGroupSpec> groups, const AdamOptions& defaults)
    : Optimizer("Adam", std::move(groups), adam_defaults(defaults)), amsgrad_(defaults.amsgrad) {
  check_groups();
}

void Adam::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("eps", group.eps);
  require_unit_interval("beta1", group.beta1);
  require_unit_interval("beta2", group.beta2);
  require_non_negative("weight_decay", group.weight_decay);
}

void Adam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                  ParamState& state) {
  const Tensor g = group.weight_decay != 0.0 ? grad + param * group.weight_decay : grad;
  state.step += 1;
  const auto t = static_cast<double>(state.step);
  const double bias_correction1 = 1.0 - std::pow(group.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(group.beta2, t);
  const MomentStep rule{true, std::sqrt(bias_correction2), group.eps,
                        -(group.lr / bias_correction1)};
  if (!amsgrad_) {
    update_moments_and_step(group, param, g, state, rule);
    return;
  }
  const Moments moments = update_moments(group, param, g, state);
  Tensor second = moments.exp_avg_sq;
  auto found = state.buffers.find("max_exp_avg_sq");
  if (found == state.buffers.end()) {
    found = state.buffers.emplace("max_exp_avg_sq", second.clone()).first;
  } else {
    found->second.copy_(maximum(found->second, second));
  }
  second = found->second;
  adaptive_step(param, moments.exp_avg, second, rule.root, rule.eps, rule.step);
}

}  // namespace ds::optim
