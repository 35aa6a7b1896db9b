#include "optim/moments.hpp"

#include "tensor/ops.hpp"

namespace ds::optim {

namespace {

const Tensor& buffer(ParamState& state, const char* name, const Tensor& param) {
  auto found = state.buffers.find(name);
  if (found == state.buffers.end()) {
    found = state.buffers.emplace(name, Tensor::zeros(param.shape(), param.dtype(), param.device()))
                .first;
  }
  return found->second;
}

}  // namespace

Moments update_moments(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                       ParamState& state) {
  const Tensor& exp_avg = buffer(state, "exp_avg", param);
  const Tensor& exp_avg_sq = buffer(state, "exp_avg_sq", param);
  exp_avg.mul_(group.beta1).add_(grad, 1.0 - group.beta1);
  exp_avg_sq.mul_(group.beta2).add_(grad * grad, 1.0 - group.beta2);
  return {exp_avg, exp_avg_sq};
}

}  // namespace ds::optim
