#pragma once
// Adadelta with PyTorch's semantics (torch.optim.Adadelta, 1.13), L2 weight decay added to the
// gradient.
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct AdadeltaOptions {
  double lr = 1.0;
  double rho = 0.9;  // decay of both running averages, in [0, 1]; optimizer-wide
  double eps = 1e-6;
  double weight_decay = 0.0;
};

// Per step: g += wd * p; v = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) * g;
// u = rho u + (1 - rho) d^2; p -= lr * d. Groups may override lr, weight_decay and eps.
class Adadelta final : public Optimizer {
 public:
  explicit Adadelta(std::vector<NamedParameter> params, const AdadeltaOptions& options = {});
  Adadelta(std::vector<ParamGroupSpec> groups, const AdadeltaOptions& defaults = {});

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  void check_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override { return {"square_avg", "acc_delta"}; }

  double rho_;
};

}  // namespace ds::optim
