#pragma once
// RMSprop with PyTorch's semantics (torch.optim.RMSprop, 1.13), L2 weight decay added to the
// gradient.
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;  // smoothing of the running averages; optimizer-wide, as centered
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;  // normalise by the variance instead of the raw second moment
};

// Per step: g += wd * p; v = alpha v + (1 - alpha) g^2; centered: a = alpha a + (1 - alpha) g,
// d = sqrt(v - a^2) + eps, else d = sqrt(v) + eps; with momentum b = momentum b + g / d
// (b starts at zero) and p -= lr * b, without p -= lr * g / d. Groups may override lr,
// weight_decay, momentum and eps.
class RMSprop final : public Optimizer {
 public:
  explicit RMSprop(std::vector<NamedParameter> params, const RMSpropOptions& options = {});
  RMSprop(std::vector<ParamGroupSpec> groups, const RMSpropOptions& defaults = {});

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  void check_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override {
    return {"square_avg", "grad_avg", "momentum_buffer"};
  }

  double alpha_;
  bool centered_;
};

}  // namespace ds::optim
