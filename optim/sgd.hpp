#pragma once
// Stochastic gradient descent with PyTorch's semantics (torch.optim.SGD, 1.13).
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2: added to the gradient
  bool nesterov = false;      // needs momentum > 0 and dampening 0
};

// Per step, with g the gradient: g += wd * p; with momentum, buf = g at the first step, then
// buf = momentum * buf + (1 - dampening) * g, and g = nesterov ? g + momentum * buf : buf;
// finally p -= lr * g. Groups may override lr, weight_decay and momentum.
class SGD final : public Optimizer {
 public:
  explicit SGD(std::vector<NamedParameter> params, const SgdOptions& options = {});
  SGD(std::vector<ParamGroupSpec> groups, const SgdOptions& defaults = {});

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  void check_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }

  double dampening_;
  bool nesterov_;
};

}  // namespace ds::optim
