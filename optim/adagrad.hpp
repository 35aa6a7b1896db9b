#pragma once
// Adagrad with PyTorch's semantics (torch.optim.Adagrad, 1.13), L2 weight decay added to the
// gradient.
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;  // optimizer-wide, as initial_accumulator_value
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

// Per step t: g += wd * p; s += g^2 (s starts at initial_accumulator_value);
// p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps). Groups may override lr, weight_decay
// and eps.
class Adagrad final : public Optimizer {
 public:
  explicit Adagrad(std::vector<NamedParameter> params, const AdagradOptions& options = {});
  Adagrad(std::vector<ParamGroupSpec> groups, const AdagradOptions& defaults = {});

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  void check_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override { return {"sum"}; }

  double lr_decay_;
  double initial_accumulator_value_;
};

}  // namespace ds::optim
