#include "optim/radam.hpp"

#include <cmath>
#include <utility>

#include "optim/moments.hpp"
#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

constexpr double kRhoThreshold = 5.0;

RAdamOptions radam_options(const RangerOptions& options) {
  return {.lr = options.lr,
          .beta1 = options.beta1,
          .beta2 = options.beta2,
          .eps = options.eps,
          .weight_decay = options.weight_decay};
}

ParamGroup radam_defaults(const RAdamOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.beta1 = options.beta1;
  group.beta2 = options.beta2;
  group.eps = options.eps;
  return group;
}

}  // namespace

RAdam::RAdam(std::vector<NamedParameter> params, const RAdamOptions& options)
    : RAdam(single_group(std::move(params)), options) {}

RAdam::RAdam(std::vector<ParamGroupSpec> groups, const RAdamOptions& defaults)
    : RAdam("RAdam", std::move(groups), defaults, false) {}

RAdam::RAdam(const char* name, std::vector<ParamGroupSpec> groups, const RAdamOptions& defaults,
             bool strict_threshold)
    : Optimizer(name, std::move(groups), radam_defaults(defaults)),
      strict_threshold_(strict_threshold) {
  check_groups();
}

void RAdam::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("eps", group.eps);
  require_unit_interval("beta1", group.beta1);
  require_unit_interval("beta2", group.beta2);
  require_non_negative("weight_decay", group.weight_decay);
}

void RAdam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                   ParamState& state) {
  state.step += 1;
  // The scalar arithmetic follows the original code term by term, so that the f64 trajectory
  // matches its PyTorch reference to the last bits.
  const auto t = static_cast<double>(state.step);
  const double beta2_t = std::pow(group.beta2, t);
  const double rho_inf = 2.0 / (1.0 - group.beta2) - 1.0;
  const double rho_t = rho_inf - 2.0 * t * beta2_t / (1.0 - beta2_t);
  const double bias_correction1 = 1.0 - std::pow(group.beta1, t);
  const bool rectified = strict_threshold_ ? rho_t > kRhoThreshold : rho_t >= kRhoThreshold;

  // The decay reads the parameter alone, so it may come before the moments, which read the
  // gradient alone.
  if (group.weight_decay != 0.0) param.add_(param, -group.weight_decay * group.lr);
  const double step_size = rectified
                               ? std::sqrt((1.0 - beta2_t) * (rho_t - 4.0) / (rho_inf - 4.0) *
                                           (rho_t - 2.0) / rho_t * rho_inf / (rho_inf - 2.0)) /
                                     bias_correction1
                               : 1.0 / bias_correction1;
  update_moments_and_step(group, param, grad, state,
                          {rectified, 1.0, group.eps, -step_size * group.lr});
}

Ranger::Ranger(std::vector<NamedParameter> params, const RangerOptions& options)
    : Ranger(single_group(std::move(params)), options) {}

Ranger::Ranger(std::vector<ParamGroupSpec> groups, const RangerOptions& defaults)
    : RAdam("Ranger", std::move(groups), radam_options(defaults), true),
      k_(defaults.k),
      alpha_(defaults.alpha) {
  if (k_ < 1) fail("Ranger: invalid lookahead k ", k_, " (must be >= 1)");
  if (!(alpha_ >= 0.0 && alpha_ <= 1.0))
    fail("Ranger: invalid lookahead alpha ", alpha_, " (must be in [0, 1])");
}

void Ranger::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                    ParamState& state) {
  auto slow = state.buffers.find("slow");
  if (slow == state.buffers.end()) slow = state.buffers.emplace("slow", param.clone()).first;
  RAdam::update(group, param, grad, state);
  if (state.step % k_ == 0) {
    slow->second.add_(param - slow->second, alpha_);
    param.copy_(slow->second);
  }
}

}  // namespace ds::optim
