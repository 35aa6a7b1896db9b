#include "optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "tensor/error.hpp"

namespace ds::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(&optimizer) {
  for (ParamGroup& group : optimizer.param_groups()) {
    if (!group.initial_lr) group.initial_lr = group.lr;
    base_lrs_.push_back(*group.initial_lr);
  }
}

void LRScheduler::start() { step(); }

void LRScheduler::apply(const std::vector<double>& lrs) {
  std::vector<ParamGroup>& groups = optimizer_->param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i].lr = lrs[i];
  last_lrs_ = lrs;
}

void LRScheduler::step() {
  last_epoch_ += 1;
  const std::vector<ParamGroup>& groups = optimizer_->param_groups();
  if (groups.size() != base_lrs_.size())
    fail("LRScheduler: the optimizer has ", groups.size(), " parameter groups, the scheduler ",
         base_lrs_.size());
  std::vector<double> lrs;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    lrs.push_back(chained_lr(groups[i].lr, base_lrs_[i]));
  }
  apply(lrs);
}

void LRScheduler::step(std::int64_t epoch) {
  if (epoch < 0) fail("LRScheduler: invalid epoch ", epoch, " (must be >= 0)");
  last_epoch_ = epoch;
  apply(closed_form_lr(epoch));
}

std::vector<double> LRScheduler::closed_form_lr(std::int64_t epoch) const {
  std::vector<double> lrs;
  for (double base_lr : base_lrs_) lrs.push_back(closed_form(base_lr, epoch));
  return lrs;
}

void LRScheduler::load_state(const SchedulerState& state) {
  const std::size_t groups = optimizer_->param_groups().size();
  if (state.base_lrs.size() != groups || state.last_lrs.size() != groups)
    fail("LRScheduler.load_state: state for ", state.base_lrs.size(), " base lrs and ",
         state.last_lrs.size(), " last lrs, but the optimizer has ", groups, " groups");
  last_epoch_ = state.last_epoch;
  base_lrs_ = state.base_lrs;
  last_lrs_ = state.last_lrs;
}

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size < 1) fail("StepLR: invalid step_size ", step_size, " (must be >= 1)");
  if (!(gamma >= 0.0)) fail("StepLR: invalid gamma ", gamma, " (must be >= 0)");
  start();
}

double StepLR::chained_lr(double current_lr, double) const {
  const std::int64_t epoch = last_epoch();
  if (epoch == 0 || epoch % step_size_ != 0) return current_lr;
  return current_lr * gamma_;
}

double StepLR::closed_form(double base_lr, std::int64_t epoch) const {
  return base_lr * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  for (std::int64_t milestone : milestones_) {
    if (milestone < 1) fail("MultiStepLR: invalid milestone ", milestone, " (must be >= 1)");
  }
  if (!(gamma >= 0.0)) fail("MultiStepLR: invalid gamma ", gamma, " (must be >= 0)");
  std::sort(milestones_.begin(), milestones_.end());
  start();
}

double MultiStepLR::chained_lr(double current_lr, double) const {
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch());
  if (hits == 0) return current_lr;
  return current_lr * std::pow(gamma_, static_cast<double>(hits));
}

double MultiStepLR::closed_form(double base_lr, std::int64_t epoch) const {
  const auto passed =
      std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lr * std::pow(gamma_, static_cast<double>(passed));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  if (t_max < 1) fail("CosineAnnealingLR: invalid t_max ", t_max, " (must be >= 1)");
  if (!(eta_min >= 0.0)) fail("CosineAnnealingLR: invalid eta_min ", eta_min, " (must be >= 0)");
  start();
}

double CosineAnnealingLR::chained_lr(double current_lr, double base_lr) const {
  using std::numbers::pi;
  const std::int64_t epoch = last_epoch();
  const auto t_max = static_cast<double>(t_max_);
  if (epoch == 0) return current_lr;
  // Python's % is non-negative for a positive divisor; C++'s takes the dividend's sign.
  const std::int64_t period = 2 * t_max_;
  if ((((epoch - 1 - t_max_) % period) + period) % period == 0)
    return current_lr + (base_lr - eta_min_) * (1.0 - std::cos(pi / t_max)) / 2.0;
  const auto e = static_cast<double>(epoch);
  return (1.0 + std::cos(pi * e / t_max)) / (1.0 + std::cos(pi * (e - 1.0) / t_max)) *
             (current_lr - eta_min_) +
         eta_min_;
}

double CosineAnnealingLR::closed_form(double base_lr, std::int64_t epoch) const {
  using std::numbers::pi;
  return eta_min_ +
         (base_lr - eta_min_) *
             (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(t_max_))) / 2.0;
}

}  // namespace ds::optim
