#pragma once
// Adam with PyTorch's semantics (torch.optim.Adam, 1.13), L2 weight decay added to the gradient.
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;  // divide by the running maximum of the second moment
};

// Per step t: g += wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), v replaced by its running
// maximum with amsgrad. Groups may override lr, weight_decay, beta1, beta2 and eps.
class Adam final : public Optimizer {
 public:
  explicit Adam(std::vector<NamedParameter> params, const AdamOptions& options = {});
  Adam(std::vector<ParamGroupSpec> groups, const AdamOptions& defaults = {});

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  void check_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override {
    return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  }

  bool amsgrad_;
};

}  // namespace ds::optim
