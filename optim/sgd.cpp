#include "optim/sgd.hpp"

#include <utility>

#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

ParamGroup sgd_defaults(const SgdOptions& options) {
  ParamGroup group;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.momentum = options.momentum;
  return group;
}

}  // namespace

SGD::SGD(std::vector<NamedParameter> params, const SgdOptions& options)
    : SGD(single_group(std::move(params)), options) {}

SGD::SGD(std::vector<ParamGroupSpec> groups, const SgdOptions& defaults)
    : Optimizer("SGD", std::move(groups), sgd_defaults(defaults)),
      dampening_(defaults.dampening),
      nesterov_(defaults.nesterov) {
  if (nesterov_ && dampening_ != 0.0)
    fail("SGD: nesterov needs dampening 0, got dampening ", dampening_);
  check_groups();
}

void SGD::check_group(const ParamGroup& group) const {
  require_non_negative("lr", group.lr);
  require_non_negative("momentum", group.momentum);
  require_non_negative("weight_decay", group.weight_decay);
  if (nesterov_ && group.momentum <= 0.0)
    fail("SGD: nesterov needs momentum > 0, got momentum ", group.momentum);
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                 ParamState& state) {
  Tensor direction = group.weight_decay != 0.0 ? grad + param * group.weight_decay : grad;
  if (group.momentum != 0.0) {
    auto found = state.buffers.find("momentum_buffer");
    if (found == state.buffers.end()) {
      found = state.buffers.emplace("momentum_buffer", direction.clone()).first;
    } else {
      found->second.mul_(group.momentum).add_(direction, 1.0 - dampening_);
    }
    const Tensor& buffer = found->second;
    direction = nesterov_ ? direction + buffer * group.momentum : buffer;
  }
  param.add_(direction, -group.lr);
}

}  // namespace ds::optim
