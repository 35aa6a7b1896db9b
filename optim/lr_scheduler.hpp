#pragma once
// Learning-rate schedules stepped once per epoch, with PyTorch's formulas (1.13): step()
// applies the chainable (recursive) form as torch's step() does, step(epoch) and
// closed_form_lr() the closed form torch uses when given an epoch.
#include <cstdint>
#include <vector>

#include "optim/optimizer.hpp"

namespace ds::optim {

struct SchedulerState {
  std::int64_t last_epoch = 0;
  std::vector<double> base_lrs;  // one per parameter group
  std::vector<double> last_lrs;
};

// A scheduler keeps a pointer to its optimizer, which must outlive it. Constructing one sets
// each group's initial_lr (unless an earlier scheduler did) and counts as epoch 0, leaving the
// learning rates at their initial values.
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch: call after the epoch's optimizer steps.
  void step();
  // Jumps to `epoch` using the closed form (PyTorch's deprecated step(epoch)).
  void step(std::int64_t epoch);

  std::int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // The learning rates the last step set, one per group.
  const std::vector<double>& last_lr() const { return last_lrs_; }
  // The learning rates at `epoch` by the closed form, one per group.
  std::vector<double> closed_form_lr(std::int64_t epoch) const;

  SchedulerState state() const { return {last_epoch_, base_lrs_, last_lrs_}; }
  // Throws ds::Error when the group count differs. The optimizer's lrs are part of its own
  // state: restore both.
  void load_state(const SchedulerState& state);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // Derived constructors call this last: it performs the epoch-0 step.
  void start();

  // The new lr of a group from its current lr (PyTorch's get_lr), at epoch last_epoch().
  virtual double chained_lr(double current_lr, double base_lr) const = 0;
  virtual double closed_form(double base_lr, std::int64_t epoch) const = 0;

 private:
  void apply(const std::vector<double>& lrs);

  Optimizer* optimizer_;
  std::int64_t last_epoch_ = -1;
  std::vector<double> base_lrs_;
  std::vector<double> last_lrs_;
};

// lr = base_lr * gamma^floor(epoch / step_size).
class StepLR final : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 private:
  double chained_lr(double current_lr, double base_lr) const override;
  double closed_form(double base_lr, std::int64_t epoch) const override;

  std::int64_t step_size_;
  double gamma_;
};

// lr = base_lr * gamma^(number of milestones <= epoch); a repeated milestone counts each time.
class MultiStepLR final : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1);

 private:
  double chained_lr(double current_lr, double base_lr) const override;
  double closed_form(double base_lr, std::int64_t epoch) const override;

  std::vector<std::int64_t> milestones_;  // sorted
  double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2 (the closed form);
// step() follows torch's recursive form, which past t_max keeps oscillating with period
// 2 t_max.
class CosineAnnealingLR final : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0.0);

 private:
  double chained_lr(double current_lr, double base_lr) const override;
  double closed_form(double base_lr, std::int64_t epoch) const override;

  std::int64_t t_max_;
  double eta_min_;
};

}  // namespace ds::optim
