// Checkpointing: an optimizer restored from state() in the middle of training continues bit for
// bit as if it had never stopped; load_state refuses state that does not fit.
#include <catch2/catch.hpp>

#include "autograd/grad_mode.hpp"
#include "problem.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::optim;
using namespace ds::test;
using ds::testing::MessageContains;

namespace {

constexpr int kBefore = 17;  // not a multiple of the lookahead periods: a sync is pending
constexpr int kAfter = 23;

void copy_values(const Problem& from, const Problem& to) {
  NoGradGuard no_grad;
  to.weight.copy_(from.weight);
  to.bias.copy_(from.bias);
  to.unused.copy_(from.unused);
}

}  // namespace

TEST_CASE("a restored optimizer continues bit-identically", "[optim][state]") {
  for (const OptimizerCase& c : optimizer_cases()) {
    SECTION(c.name) {
      for (DType dtype : {DType::f64, DType::f32}) {
        const Problem original(dtype);
        const auto optimizer = c.make(original);
        run_steps(*optimizer, original, kBefore);
        const OptimizerState saved = optimizer->state();
        const Problem restored(dtype);
        copy_values(original, restored);
        // The uninterrupted run goes first: the exported state must be a copy, untouched by it.
        run_steps(*optimizer, original, kAfter);

        const auto resumed = c.make(restored);
        resumed->load_state(saved);
        run_steps(*resumed, restored, kAfter);
        INFO(c.name << " in " << dtype);
        CHECK(values_of(restored.weight) == values_of(original.weight));
        CHECK(values_of(restored.bias) == values_of(original.bias));
        CHECK(resumed->state().scalars == optimizer->state().scalars);
      }
    }
  }
}

TEST_CASE("state names buffers and steps by parameter", "[optim][state]") {
  const Problem problem(DType::f64);
  Ranger ranger(problem.params(), {.lr = 0.05});
  run_steps(ranger, problem, 3);
  const OptimizerState state = ranger.state();
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : state.buffers) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"fc.bias.exp_avg", "fc.bias.exp_avg_sq", "fc.bias.slow",
                                         "fc.weight.exp_avg", "fc.weight.exp_avg_sq",
                                         "fc.weight.slow"});
  CHECK(state.scalars.at("fc.weight.step") == 3.0);
  CHECK(state.scalars.at("group.0.lr") == 0.05);
  CHECK(state.scalars.at("group.0.beta1") == 0.95);
  CHECK_FALSE(state.scalars.contains("fc.unused.step"));
  // Lookahead's slow weights start as the parameter before its first step.
  CHECK(values_of(state.buffers.at("fc.bias.slow")) ==
        values_of(trajectory_file().get("problem/bias")));
}

TEST_CASE("load_state restores the group hyper-parameters", "[optim][state]") {
  const Problem problem(DType::f64);
  SGD source(problem.params(), {.lr = 0.1, .momentum = 0.9});
  source.param_groups()[0].lr = 0.025;
  source.param_groups()[0].initial_lr = 0.1;
  SGD target(problem.params(), {.lr = 0.5, .momentum = 0.5});
  target.load_state(source.state());
  CHECK(target.param_groups()[0].lr == 0.025);
  CHECK(target.param_groups()[0].momentum == 0.9);
  CHECK(target.param_groups()[0].initial_lr == 0.1);
}

TEST_CASE("load_state refuses state that does not fit and changes nothing", "[optim][state]") {
  const Problem problem(DType::f64);
  Adam adam(problem.params(), {.lr = 0.05});
  run_steps(adam, problem, 2);
  const OptimizerState good = adam.state();

  OptimizerState state = good;
  SECTION("an unknown parameter") {
    state.buffers["fc2.weight.exp_avg"] = Tensor::zeros({3, 4}, DType::f64);
    CHECK_THROWS_MATCHES(adam.load_state(state), Error,
                         MessageContains({"Adam", "fc2.weight.exp_avg"}));
  }
  SECTION("a buffer this optimizer does not have") {
    state.buffers["fc.weight.momentum_buffer"] = Tensor::zeros({3, 4}, DType::f64);
    CHECK_THROWS_MATCHES(adam.load_state(state), Error, MessageContains({"momentum_buffer"}));
  }
  SECTION("a buffer of the wrong shape") {
    state.buffers["fc.weight.exp_avg"] = Tensor::zeros({4, 3}, DType::f64);
    CHECK_THROWS_MATCHES(adam.load_state(state), Error,
                         MessageContains({"fc.weight.exp_avg", "[4, 3]", "[3, 4]"}));
  }
  SECTION("a missing group hyper-parameter") {
    state.scalars.erase("group.0.eps");
    CHECK_THROWS_MATCHES(adam.load_state(state), Error, MessageContains({"group.0.eps"}));
  }
  SECTION("more groups than the optimizer has") {
    state.scalars["group.1.lr"] = 0.1;
    CHECK_THROWS_MATCHES(adam.load_state(state), Error, MessageContains({"group.1.lr"}));
  }
  SECTION("an out-of-range hyper-parameter") {
    state.scalars["group.0.beta2"] = 1.0;
    CHECK_THROWS_MATCHES(adam.load_state(state), Error, MessageContains({"beta2"}));
  }
  SECTION("an unknown scalar") {
    state.scalars["fc.weight.steps"] = 1.0;
    CHECK_THROWS_MATCHES(adam.load_state(state), Error, MessageContains({"fc.weight.steps"}));
  }
  CHECK(adam.state().scalars == good.scalars);
  CHECK(values_of(adam.state().buffers.at("fc.weight.exp_avg")) ==
        values_of(good.buffers.at("fc.weight.exp_avg")));
}

TEST_CASE("zero_grad zeroes or drops the gradients", "[optim]") {
  const Problem problem(DType::f64);
  SGD sgd(problem.params(), {.lr = 0.1});
  problem.backward();
  REQUIRE(problem.weight.grad().defined());
  sgd.zero_grad();
  CHECK(values_of(problem.weight.grad()) == std::vector<double>(12, 0.0));
  sgd.zero_grad(true);
  CHECK_FALSE(problem.weight.grad().defined());
  CHECK_FALSE(problem.bias.grad().defined());
  // A step without gradients changes nothing.
  sgd.step();
  CHECK(values_of(problem.bias) == values_of(trajectory_file().get("problem/bias")));
}
