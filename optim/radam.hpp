#pragma once
// RAdam and Ranger exactly as the original DeepShift project trains with them (DESIGN.md
// section 3): rectified Adam with decoupled weight decay, and Ranger = the same step plus
// Lookahead.
#include <cstdint>
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct RAdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: p -= wd * lr * p before the step
};

// Per step t: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf - 2 t b2^t / (1 - b2^t); p -= wd * lr * p; then
// once rho_t reaches the threshold (RAdam: rho_t >= 5)
//   p -= lr * sqrt((1 - b2^t) (rho_t - 4) / (rho_inf - 4) (rho_t - 2) / rho_t
//                  rho_inf / (rho_inf - 2)) / (1 - b1^t) * m / (sqrt(v) + eps),
// before it p -= lr / (1 - b1^t) * m. Groups may override lr, weight_decay, betas and eps.
class RAdam : public Optimizer {
 public:
  explicit RAdam(std::vector<NamedParameter> params, const RAdamOptions& options = {});
  RAdam(std::vector<ParamGroupSpec> groups, const RAdamOptions& defaults = {});

 protected:
  // For Ranger: another name, and the strict threshold rho_t > 5.
  RAdam(const char* name, std::vector<ParamGroupSpec> groups, const RAdamOptions& defaults,
        bool strict_threshold);

  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  void check_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  bool strict_threshold_;
};

struct RangerOptions {
  double lr = 1e-3;
  double beta1 = 0.95;
  double beta2 = 0.999;
  double eps = 1e-5;
  double weight_decay = 0.0;
  std::int64_t k = 6;  // lookahead period in steps
  double alpha = 0.5;  // lookahead interpolation, in [0, 1]
};

// The RAdam step with threshold rho_t > 5, then Lookahead: every k steps of a parameter,
// slow += alpha * (p - slow) and p = slow, with slow starting as p before its first step.
class Ranger final : public RAdam {
 public:
  explicit Ranger(std::vector<NamedParameter> params, const RangerOptions& options = {});
  Ranger(std::vector<ParamGroupSpec> groups, const RangerOptions& defaults = {});

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  std::vector<std::string> buffer_names() const override {
    return {"exp_avg", "exp_avg_sq", "slow"};
  }

  std::int64_t k_;
  double alpha_;
};

}  // namespace ds::optim
