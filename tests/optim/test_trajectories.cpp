// Each optimizer configuration, run on the fixed problem, must follow the trajectory PyTorch
// (SGD, Adam) or the reference implementation of DESIGN.md's formulas (RAdam, Ranger) took,
// step by step: in f64 to rounding error, in f32 to f32 accuracy.
#include <catch2/catch.hpp>
#include <set>

#include "problem.hpp"

using namespace ds;
using namespace ds::test;

namespace {

constexpr int kSteps = 40;

void check_trajectory(const OptimizerCase& c, DType dtype, double rtol, double atol) {
  const Problem problem(dtype);
  const auto optimizer = c.make(problem);
  const Tensor weights = trajectory_file().get(c.name + "/weight");
  const Tensor biases = trajectory_file().get(c.name + "/bias");
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
  // The loss never touches fc.unused: it has no gradient, so it must not move.
  CHECK(values_of(problem.unused) == std::vector<double>{1.0, 1.0});
}

}  // namespace

TEST_CASE("optimizer trajectories match the references in f64", "[optim][golden]") {
  for (const OptimizerCase& c : optimizer_cases()) {
    SECTION(c.name) { check_trajectory(c, DType::f64, 1e-12, 1e-14); }
  }
}

TEST_CASE("optimizer trajectories match the references in f32", "[optim][golden]") {
  for (const OptimizerCase& c : optimizer_cases()) {
    SECTION(c.name) { check_trajectory(c, DType::f32, 5e-5, 5e-6); }
  }
}

TEST_CASE("every fixture case has a C++ configuration and the other way round", "[optim][golden]") {
  std::set<std::string> in_file(trajectory_file().cases().begin(), trajectory_file().cases().end());
  in_file.erase("problem");
  std::set<std::string> in_table;
  for (const OptimizerCase& c : optimizer_cases()) in_table.insert(c.name);
  CHECK(in_file == in_table);
}
