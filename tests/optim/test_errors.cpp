// Every invalid hyper-parameter is refused at construction with a ds::Error naming it.
#include <catch2/catch.hpp>

#include "problem.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::optim;
using ds::testing::MessageContains;

namespace {

std::vector<NamedParameter> params() {
  Tensor t = Tensor::zeros({2});
  t.requires_grad_();
  return {{"w", t}};
}

// The same options given as a group override instead of as the optimizer's defaults.
std::vector<ParamGroupSpec> group_with(void (*set)(ParamGroupSpec&)) {
  std::vector<ParamGroupSpec> specs = single_group(params());
  set(specs[0]);
  return specs;
}

}  // namespace

TEST_CASE("SGD refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(SGD(params(), {.lr = -0.1}), Error, MessageContains({"SGD", "lr", "-0.1"}));
  CHECK_THROWS_MATCHES(SGD(params(), {.momentum = -0.9}), Error, MessageContains({"momentum"}));
  CHECK_THROWS_MATCHES(SGD(params(), {.weight_decay = -1e-4}), Error,
                       MessageContains({"weight_decay"}));
  CHECK_THROWS_MATCHES(SGD(params(), {.nesterov = true}), Error,
                       MessageContains({"nesterov", "momentum"}));
  CHECK_THROWS_MATCHES(SGD(params(), {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), Error,
                       MessageContains({"nesterov", "dampening"}));
  CHECK_THROWS_MATCHES(SGD(group_with([](ParamGroupSpec& g) { g.lr = -1.0; })), Error,
                       MessageContains({"SGD", "lr"}));
  CHECK_THROWS_MATCHES(SGD(group_with([](ParamGroupSpec& g) { g.momentum = -0.5; })), Error,
                       MessageContains({"momentum"}));
  CHECK_NOTHROW(SGD(params(), {.lr = 0.0, .momentum = 0.9, .nesterov = true}));
}

TEST_CASE("Adam refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(Adam(params(), {.lr = -1e-3}), Error, MessageContains({"Adam", "lr"}));
  CHECK_THROWS_MATCHES(Adam(params(), {.beta1 = 1.0}), Error, MessageContains({"beta1"}));
  CHECK_THROWS_MATCHES(Adam(params(), {.beta1 = -0.1}), Error, MessageContains({"beta1"}));
  CHECK_THROWS_MATCHES(Adam(params(), {.beta2 = 1.5}), Error, MessageContains({"beta2"}));
  CHECK_THROWS_MATCHES(Adam(params(), {.eps = -1e-8}), Error, MessageContains({"eps"}));
  CHECK_THROWS_MATCHES(Adam(params(), {.weight_decay = -0.1}), Error,
                       MessageContains({"weight_decay"}));
  CHECK_THROWS_MATCHES(Adam(group_with([](ParamGroupSpec& g) { g.beta2 = 1.0; })), Error,
                       MessageContains({"Adam", "beta2"}));
  CHECK_THROWS_MATCHES(Adam(group_with([](ParamGroupSpec& g) { g.eps = -1.0; })), Error,
                       MessageContains({"eps"}));
  CHECK_NOTHROW(Adam(params(), {.beta1 = 0.0, .beta2 = 0.0, .eps = 0.0}));
}

TEST_CASE("RAdam refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(RAdam(params(), {.lr = -1.0}), Error, MessageContains({"RAdam", "lr"}));
  CHECK_THROWS_MATCHES(RAdam(params(), {.beta1 = 1.0}), Error, MessageContains({"beta1"}));
  CHECK_THROWS_MATCHES(RAdam(params(), {.beta2 = -0.5}), Error, MessageContains({"beta2"}));
  CHECK_THROWS_MATCHES(RAdam(params(), {.eps = -1.0}), Error, MessageContains({"eps"}));
  CHECK_THROWS_MATCHES(RAdam(params(), {.weight_decay = -1.0}), Error,
                       MessageContains({"weight_decay"}));
}

TEST_CASE("Ranger refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(Ranger(params(), {.lr = -1.0}), Error, MessageContains({"Ranger", "lr"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.beta1 = 1.2}), Error, MessageContains({"beta1"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.beta2 = 1.0}), Error, MessageContains({"beta2"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.eps = -1.0}), Error, MessageContains({"eps"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.weight_decay = -1.0}), Error,
                       MessageContains({"weight_decay"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.k = 0}), Error, MessageContains({"Ranger", "k", "0"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.alpha = 1.5}), Error, MessageContains({"alpha"}));
  CHECK_THROWS_MATCHES(Ranger(params(), {.alpha = -0.5}), Error, MessageContains({"alpha"}));
  CHECK_NOTHROW(Ranger(params(), {.k = 1, .alpha = 1.0}));
}

TEST_CASE("schedulers refuse invalid settings", "[optim][errors][scheduler]") {
  SGD sgd(params(), {.lr = 0.1});
  CHECK_THROWS_MATCHES(StepLR(sgd, 0), Error, MessageContains({"StepLR", "step_size"}));
  CHECK_THROWS_MATCHES(StepLR(sgd, 3, -0.1), Error, MessageContains({"StepLR", "gamma"}));
  CHECK_THROWS_MATCHES(MultiStepLR(sgd, {10, 0}), Error,
                       MessageContains({"MultiStepLR", "milestone"}));
  CHECK_THROWS_MATCHES(MultiStepLR(sgd, {10}, -1.0), Error, MessageContains({"gamma"}));
  CHECK_THROWS_MATCHES(CosineAnnealingLR(sgd, 0), Error,
                       MessageContains({"CosineAnnealingLR", "t_max"}));
  CHECK_THROWS_MATCHES(CosineAnnealingLR(sgd, 10, -0.1), Error, MessageContains({"eta_min"}));
  StepLR scheduler(sgd, 3);
  CHECK_THROWS_MATCHES(scheduler.step(-1), Error, MessageContains({"epoch"}));
  CHECK_THROWS_MATCHES(
      scheduler.load_state({.last_epoch = 3, .base_lrs = {0.1, 0.1}, .last_lrs = {0.1, 0.1}}),
      Error, MessageContains({"load_state", "1 groups"}));
}
