#pragma once
// The fixed problem every optimizer test minimises: mean((x W + b - y)^2) + 0.01 sum(W^4), with
// x, y and the starting W, b from tests/optim/golden/optim_trajectories.golden, plus a third
// parameter that the loss ignores (it never gets a gradient). Also the table of optimizer
// configurations that mirrors OPTIMIZER_CASES in generate_optim.py.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "optim/optim.hpp"
#include "support/golden.hpp"

namespace ds::test {

const GoldenFile& trajectory_file();
const GoldenFile& schedule_file();

struct Problem {
  Tensor x, y;
  Tensor weight, bias;  // "fc.weight", "fc.bias"
  Tensor unused;        // "fc.unused"

  explicit Problem(DType dtype);
  std::vector<optim::NamedParameter> params() const;
  // Zeroes nothing: the caller runs zero_grad, as a training loop does.
  void backward() const;
};

using OptimizerFactory = std::function<std::unique_ptr<optim::Optimizer>(const Problem&)>;

struct OptimizerCase {
  std::string name;  // the fixture case
  OptimizerFactory make;
};

const std::vector<OptimizerCase>& optimizer_cases();

// `steps` rounds of zero_grad, backward and step.
void run_steps(optim::Optimizer& optimizer, const Problem& problem, int steps);

}  // namespace ds::test
