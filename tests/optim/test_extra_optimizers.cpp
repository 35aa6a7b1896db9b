// Adadelta, Adagrad and RMSprop: 40-step trajectories against torch.optim's (fixture
// golden/extra_optimizers.golden, same problem as the other optimizers), bit-identical
// continuation after a checkpoint, their state and their refused hyper-parameters.
#include <catch2/catch.hpp>
#include <set>

#include "autograd/grad_mode.hpp"
#include "problem.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::optim;
using namespace ds::test;
using ds::testing::MessageContains;

namespace {

constexpr int kSteps = 40;
constexpr int kBefore = 17;
constexpr int kAfter = kSteps - kBefore;

const GoldenFile& extra_file() {
  static const GoldenFile file(DS_OPTIM_GOLDEN_DIR "/extra_optimizers.golden");
  return file;
}

// Mirrors EXTRA_OPTIMIZER_CASES in golden/generate_optim.py.
const std::vector<OptimizerCase>& extra_cases() {
  static const std::vector<OptimizerCase> cases = {
      {"adadelta", together<Adadelta>(AdadeltaOptions{})},
      {"adadelta_weight_decay", together<Adadelta>(AdadeltaOptions{
                                    .lr = 2.0, .rho = 0.8, .eps = 1e-4, .weight_decay = 0.1})},
      {"adadelta_groups", grouped<Adadelta>(AdadeltaOptions{.weight_decay = 0.05},
                                            overrides(3.0, 0.0, {}, {}, {}, 1e-5))},
      {"adagrad", together<Adagrad>(AdagradOptions{})},
      {"adagrad_lr_decay", together<Adagrad>(AdagradOptions{.lr = 0.2,
                                                            .lr_decay = 0.05,
                                                            .weight_decay = 0.05,
                                                            .initial_accumulator_value = 0.5,
                                                            .eps = 1e-6})},
      {"adagrad_groups",
       grouped<Adagrad>(AdagradOptions{.lr = 0.1}, overrides(0.3, 0.01, {}, {}, {}, {}))},
      {"rmsprop", together<RMSprop>(RMSpropOptions{})},
      {"rmsprop_momentum",
       together<RMSprop>(RMSpropOptions{.lr = 0.005, .weight_decay = 0.05, .momentum = 0.9})},
      {"rmsprop_centered",
       together<RMSprop>(RMSpropOptions{
           .lr = 0.01, .alpha = 0.95, .eps = 1e-4, .momentum = 0.5, .centered = true})},
      {"rmsprop_groups", grouped<RMSprop>(RMSpropOptions{.lr = 0.01, .momentum = 0.9},
                                          overrides(0.002, {}, 0.0, {}, {}, 1e-5))},
  };
  return cases;
}

void check_trajectory(const OptimizerCase& c, DType dtype, double rtol, double atol) {
  const Problem problem(dtype);
  const auto optimizer = c.make(problem);
  const Tensor weights = extra_file().get(c.name + "/weight");
  const Tensor biases = extra_file().get(c.name + "/bias");
  REQUIRE(weights.size(0) == kSteps + 1);
  for (int step = 1; step <= kSteps; ++step) {
    run_steps(*optimizer, problem, 1);
    INFO(c.name << " (" << dtype << ") after step " << step);
    const CloseResult weight_ok = allclose(problem.weight, weights.select(0, step), rtol, atol);
    INFO(weight_ok.message);
    REQUIRE(weight_ok);
    const CloseResult bias_ok = allclose(problem.bias, biases.select(0, step), rtol, atol);
    INFO(bias_ok.message);
    REQUIRE(bias_ok);
  }
  CHECK(values_of(problem.unused) == std::vector<double>{1.0, 1.0});
}

std::vector<std::string> buffer_keys(const OptimizerState& state) {
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : state.buffers) keys.push_back(key);
  return keys;
}

std::vector<NamedParameter> params() {
  Tensor t = Tensor::zeros({2});
  t.requires_grad_();
  return {{"w", t}};
}

std::vector<ParamGroupSpec> group_with(void (*set)(ParamGroupSpec&)) {
  std::vector<ParamGroupSpec> specs = single_group(params());
  set(specs[0]);
  return specs;
}

}  // namespace

TEST_CASE("the extra optimizers follow torch.optim in f64", "[optim][golden]") {
  for (const OptimizerCase& c : extra_cases()) {
    SECTION(c.name) { check_trajectory(c, DType::f64, 1e-12, 1e-14); }
  }
}

TEST_CASE("the extra optimizers follow torch.optim in f32", "[optim][golden]") {
  for (const OptimizerCase& c : extra_cases()) {
    SECTION(c.name) { check_trajectory(c, DType::f32, 5e-5, 5e-6); }
  }
}

TEST_CASE("every extra fixture case has a C++ configuration and the other way round",
          "[optim][golden]") {
  const std::set<std::string> in_file(extra_file().cases().begin(), extra_file().cases().end());
  std::set<std::string> in_table;
  for (const OptimizerCase& c : extra_cases()) in_table.insert(c.name);
  CHECK(in_file == in_table);
}

TEST_CASE("the extra optimizers continue bit-identically after a restore", "[optim][state]") {
  for (const OptimizerCase& c : extra_cases()) {
    SECTION(c.name) {
      for (DType dtype : {DType::f64, DType::f32}) {
        const Problem original(dtype);
        const auto optimizer = c.make(original);
        run_steps(*optimizer, original, kBefore);
        const OptimizerState saved = optimizer->state();
        const Problem restored(dtype);
        {
          NoGradGuard no_grad;
          restored.weight.copy_(original.weight);
          restored.bias.copy_(original.bias);
        }
        run_steps(*optimizer, original, kAfter);

        const auto resumed = c.make(restored);
        resumed->load_state(saved);
        run_steps(*resumed, restored, kAfter);
        INFO(c.name << " in " << dtype);
        CHECK(values_of(restored.weight) == values_of(original.weight));
        CHECK(values_of(restored.bias) == values_of(original.bias));
        CHECK(resumed->state().scalars == optimizer->state().scalars);
        // The restarted run reached the fixture's end too, not just the same wrong place.
        const CloseResult at_end =
            allclose(restored.weight, extra_file().get(c.name + "/weight").select(0, kSteps),
                     dtype == DType::f64 ? 1e-12 : 5e-5, dtype == DType::f64 ? 1e-14 : 5e-6);
        INFO(at_end.message);
        CHECK(at_end);
      }
    }
  }
}

TEST_CASE("the extra optimizers keep PyTorch's buffers per parameter", "[optim][state]") {
  const Problem problem(DType::f64);
  SECTION("Adadelta") {
    Adadelta adadelta(problem.params());
    run_steps(adadelta, problem, 2);
    CHECK(buffer_keys(adadelta.state()) ==
          std::vector<std::string>{"fc.bias.acc_delta", "fc.bias.square_avg", "fc.weight.acc_delta",
                                   "fc.weight.square_avg"});
    CHECK(adadelta.state().scalars.at("fc.weight.step") == 2.0);
    CHECK(adadelta.state().scalars.at("group.0.lr") == 1.0);
  }
  SECTION("Adagrad's sum starts at initial_accumulator_value") {
    Adagrad adagrad(problem.params(), {.initial_accumulator_value = 0.25});
    problem.backward();
    const std::vector<double> grad = values_of(problem.bias.grad());
    adagrad.step();
    const OptimizerState state = adagrad.state();
    CHECK(buffer_keys(state) == std::vector<std::string>{"fc.bias.sum", "fc.weight.sum"});
    const std::vector<double> sum = values_of(state.buffers.at("fc.bias.sum"));
    // Approx: the compiler may fuse this multiply-add, the tensor ops round twice.
    for (std::size_t i = 0; i < grad.size(); ++i)
      CHECK(sum[i] == Approx(0.25 + grad[i] * grad[i]).epsilon(1e-15));
    CHECK_FALSE(state.scalars.contains("fc.unused.step"));
  }
  SECTION("RMSprop creates grad_avg only centered and momentum_buffer only with momentum") {
    RMSprop plain(problem.params());
    run_steps(plain, problem, 1);
    CHECK(buffer_keys(plain.state()) ==
          std::vector<std::string>{"fc.bias.square_avg", "fc.weight.square_avg"});
    RMSprop grouped(bias_apart(problem, overrides({}, {}, 0.0)),
                    {.momentum = 0.9, .centered = true});
    run_steps(grouped, problem, 1);
    CHECK(buffer_keys(grouped.state()) ==
          std::vector<std::string>{"fc.bias.grad_avg", "fc.bias.square_avg", "fc.weight.grad_avg",
                                   "fc.weight.momentum_buffer", "fc.weight.square_avg"});
    CHECK(grouped.state().scalars.at("group.1.momentum") == 0.0);
  }
}

TEST_CASE("the extra optimizers refuse state of another optimizer", "[optim][state]") {
  const Problem problem(DType::f64);
  Adam adam(problem.params(), {.lr = 0.05});
  run_steps(adam, problem, 1);
  Adagrad adagrad(problem.params());
  CHECK_THROWS_MATCHES(adagrad.load_state(adam.state()), Error,
                       MessageContains({"Adagrad", "exp_avg"}));
  RMSprop rmsprop(problem.params());
  CHECK_THROWS_MATCHES(rmsprop.load_state(adam.state()), Error,
                       MessageContains({"RMSprop", "exp_avg"}));
  Adadelta adadelta(problem.params());
  OptimizerState rms_state = RMSprop(problem.params()).state();
  rms_state.scalars["group.0.eps"] = -1.0;
  CHECK_THROWS_MATCHES(adadelta.load_state(rms_state), Error, MessageContains({"Adadelta", "eps"}));
}

TEST_CASE("Adadelta refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(Adadelta(params(), {.lr = -1.0}), Error,
                       MessageContains({"Adadelta", "lr", "-1"}));
  CHECK_THROWS_MATCHES(Adadelta(params(), {.rho = 1.5}), Error, MessageContains({"rho", "1.5"}));
  CHECK_THROWS_MATCHES(Adadelta(params(), {.rho = -0.1}), Error, MessageContains({"rho"}));
  CHECK_THROWS_MATCHES(Adadelta(params(), {.eps = -1e-6}), Error, MessageContains({"eps"}));
  CHECK_THROWS_MATCHES(Adadelta(params(), {.weight_decay = -0.1}), Error,
                       MessageContains({"weight_decay"}));
  CHECK_THROWS_MATCHES(Adadelta(group_with([](ParamGroupSpec& g) { g.eps = -1.0; })), Error,
                       MessageContains({"Adadelta", "eps"}));
  // PyTorch's bounds are inclusive for rho.
  CHECK_NOTHROW(Adadelta(params(), {.lr = 0.0, .rho = 1.0, .eps = 0.0}));
  CHECK_NOTHROW(Adadelta(params(), {.rho = 0.0}));
}

TEST_CASE("Adagrad refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(Adagrad(params(), {.lr = -0.01}), Error,
                       MessageContains({"Adagrad", "lr", "-0.01"}));
  CHECK_THROWS_MATCHES(Adagrad(params(), {.lr_decay = -0.1}), Error, MessageContains({"lr_decay"}));
  CHECK_THROWS_MATCHES(Adagrad(params(), {.weight_decay = -0.1}), Error,
                       MessageContains({"weight_decay"}));
  CHECK_THROWS_MATCHES(Adagrad(params(), {.initial_accumulator_value = -1.0}), Error,
                       MessageContains({"initial_accumulator_value"}));
  CHECK_THROWS_MATCHES(Adagrad(params(), {.eps = -1e-10}), Error, MessageContains({"eps"}));
  CHECK_THROWS_MATCHES(Adagrad(group_with([](ParamGroupSpec& g) { g.lr = -1.0; })), Error,
                       MessageContains({"Adagrad", "lr"}));
  CHECK_NOTHROW(Adagrad(params(), {.lr = 0.0, .initial_accumulator_value = 0.0, .eps = 0.0}));
}

TEST_CASE("RMSprop refuses invalid hyper-parameters", "[optim][errors]") {
  CHECK_THROWS_MATCHES(RMSprop(params(), {.lr = -0.01}), Error,
                       MessageContains({"RMSprop", "lr", "-0.01"}));
  CHECK_THROWS_MATCHES(RMSprop(params(), {.alpha = -0.5}), Error, MessageContains({"alpha"}));
  CHECK_THROWS_MATCHES(RMSprop(params(), {.eps = -1e-8}), Error, MessageContains({"eps"}));
  CHECK_THROWS_MATCHES(RMSprop(params(), {.weight_decay = -0.1}), Error,
                       MessageContains({"weight_decay"}));
  CHECK_THROWS_MATCHES(RMSprop(params(), {.momentum = -0.9}), Error, MessageContains({"momentum"}));
  CHECK_THROWS_MATCHES(RMSprop(group_with([](ParamGroupSpec& g) { g.momentum = -0.5; })), Error,
                       MessageContains({"RMSprop", "momentum"}));
  CHECK_NOTHROW(RMSprop(params(), {.lr = 0.0, .alpha = 0.0, .eps = 0.0, .centered = true}));
}
