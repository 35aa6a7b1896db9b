// Learning-rate schedules against torch.optim.lr_scheduler: the lrs of step() (the recursive
// form), the closed forms, step(epoch), and a save/restore in the middle of a schedule.
#include <catch2/catch.hpp>
#include <functional>
#include <memory>

#include "problem.hpp"

using namespace ds;
using namespace ds::optim;
using namespace ds::test;

namespace {

constexpr double kRtol = 1e-14;

// Mirrors SCHEDULER_CASES in generate_optim.py.
struct ScheduleCase {
  std::string name;
  std::vector<double> initial_lrs;
  int epochs;
  std::function<std::unique_ptr<LRScheduler>(Optimizer&)> make;
};

const std::vector<ScheduleCase>& schedule_cases() {
  static const std::vector<ScheduleCase> cases = {
      {"step", {0.1, 0.02}, 20, [](Optimizer& o) { return std::make_unique<StepLR>(o, 3); }},
      {"step_half", {0.3}, 15, [](Optimizer& o) { return std::make_unique<StepLR>(o, 2, 0.5); }},
      {"multistep_cifar",
       {0.1},
       200,
       [](Optimizer& o) {
         return std::make_unique<MultiStepLR>(o, std::vector<std::int64_t>{80, 120, 160, 180});
       }},
      {"multistep_repeated",
       {0.1, 0.01},
       12,
       [](Optimizer& o) {
         return std::make_unique<MultiStepLR>(o, std::vector<std::int64_t>{6, 3, 9, 6}, 0.5);
       }},
      {"cosine",
       {0.1, 0.05},
       35,
       [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 10, 0.001); }},
      {"cosine_cifar",
       {0.1},
       200,
       [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 200); }},
  };
  return cases;
}

// An SGD with one single-parameter group per initial lr.
std::unique_ptr<SGD> make_optimizer(const std::vector<double>& lrs) {
  std::vector<ParamGroupSpec> specs;
  for (std::size_t i = 0; i < lrs.size(); ++i) {
    Tensor p = Tensor::zeros({1}, DType::f64);
    p.requires_grad_();
    ParamGroupSpec spec;
    spec.params = {{"p" + std::to_string(i), p}};
    spec.lr = lrs[i];
    specs.push_back(spec);
  }
  return std::make_unique<SGD>(specs);
}

Tensor row(const std::vector<double>& values) {
  return Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())});
}

void check_lrs(const std::vector<double>& actual, const Tensor& expected, const std::string& what) {
  const CloseResult close = allclose(row(actual), expected, kRtol, 0.0);
  INFO(what << ": " << close.message);
  CHECK(close);
}

std::vector<double> group_lrs(const Optimizer& optimizer) {
  std::vector<double> lrs;
  for (const ParamGroup& group : optimizer.param_groups()) lrs.push_back(group.lr);
  return lrs;
}

}  // namespace

TEST_CASE("schedulers follow torch's learning rates epoch by epoch", "[optim][scheduler]") {
  for (const ScheduleCase& c : schedule_cases()) {
    SECTION(c.name) {
      const Tensor lrs = schedule_file().get(c.name + "/lr");
      const Tensor closed = schedule_file().get(c.name + "/closed");
      REQUIRE(lrs.size(0) == c.epochs + 1);
      const auto optimizer = make_optimizer(c.initial_lrs);
      const auto scheduler = c.make(*optimizer);
      CHECK(scheduler->base_lrs() == c.initial_lrs);
      for (int epoch = 0; epoch <= c.epochs; ++epoch) {
        if (epoch > 0) scheduler->step();
        REQUIRE(scheduler->last_epoch() == epoch);
        const std::string where = c.name + " epoch " + std::to_string(epoch);
        check_lrs(scheduler->last_lr(), lrs.select(0, epoch), where);
        CHECK(group_lrs(*optimizer) == scheduler->last_lr());
        check_lrs(scheduler->closed_form_lr(epoch), closed.select(0, epoch), where + " closed");
      }
    }
  }
}

TEST_CASE("step(epoch) jumps to the closed form", "[optim][scheduler]") {
  for (const ScheduleCase& c : schedule_cases()) {
    SECTION(c.name) {
      const Tensor closed = schedule_file().get(c.name + "/closed");
      const auto optimizer = make_optimizer(c.initial_lrs);
      const auto scheduler = c.make(*optimizer);
      for (int epoch : {c.epochs, c.epochs / 2, 1, c.epochs - 1}) {
        scheduler->step(epoch);
        CHECK(scheduler->last_epoch() == epoch);
        check_lrs(group_lrs(*optimizer), closed.select(0, epoch),
                  c.name + " at " + std::to_string(epoch));
      }
    }
  }
}

TEST_CASE("a restored scheduler and optimizer continue the schedule exactly",
          "[optim][scheduler][state]") {
  for (const ScheduleCase& c : schedule_cases()) {
    SECTION(c.name) {
      const int stop = c.epochs / 2 + 1;
      const auto optimizer = make_optimizer(c.initial_lrs);
      const auto scheduler = c.make(*optimizer);
      for (int epoch = 1; epoch <= stop; ++epoch) scheduler->step();
      const OptimizerState optimizer_state = optimizer->state();
      const SchedulerState scheduler_state = scheduler->state();
      for (int epoch = stop + 1; epoch <= c.epochs; ++epoch) scheduler->step();

      // Built as a restarted trainer would: from the command-line lrs, then the checkpoint.
      const auto resumed_optimizer = make_optimizer(c.initial_lrs);
      const auto resumed = c.make(*resumed_optimizer);
      resumed_optimizer->load_state(optimizer_state);
      resumed->load_state(scheduler_state);
      CHECK(resumed->last_epoch() == stop);
      for (int epoch = stop + 1; epoch <= c.epochs; ++epoch) resumed->step();
      CHECK(resumed->last_lr() == scheduler->last_lr());
      CHECK(group_lrs(*resumed_optimizer) == group_lrs(*optimizer));
    }
  }
}

TEST_CASE("a second scheduler starts from the groups' initial lr", "[optim][scheduler]") {
  const auto optimizer = make_optimizer({0.1});
  StepLR first(*optimizer, 1, 0.5);
  first.step();
  REQUIRE(optimizer->param_groups()[0].lr == 0.05);
  const CosineAnnealingLR second(*optimizer, 10);
  CHECK(second.base_lrs() == std::vector<double>{0.1});
  CHECK(optimizer->param_groups()[0].initial_lr == 0.1);
}
