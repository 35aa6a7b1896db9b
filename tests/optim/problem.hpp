#pragma once
// The fixed problem every optimizer test minimises: mean((x W + b - y)^2) + 0.01 sum(W^4), with
// x, y and the starting W, b from tests/optim/golden/optim_trajectories.golden, plus a third
// parameter that the loss ignores (it never gets a gradient). Also the table of optimizer
// configurations that mirrors OPTIMIZER_CASES in generate_optim.py.
#include <functional>
#include <memory>
#include <optional>
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

// Weight (and the unused parameter) keep the defaults, the bias gets its own group: the way
// the trainers give ".sign" parameters their own lr.
inline std::vector<optim::ParamGroupSpec> bias_apart(const Problem& problem,
                                                     const optim::ParamGroupSpec& bias_group) {
  return optim::split_by_name(problem.params(), optim::name_ends_with({".bias"}), bias_group);
}

// One group with `options`.
template <typename T, typename Options>
OptimizerFactory together(Options options) {
  return
      [options](const Problem& problem) { return std::make_unique<T>(problem.params(), options); };
}

template <typename T, typename Options>
OptimizerFactory grouped(Options defaults, optim::ParamGroupSpec bias_group) {
  return [defaults, bias_group](const Problem& problem) {
    return std::make_unique<T>(bias_apart(problem, bias_group), defaults);
  };
}

inline optim::ParamGroupSpec overrides(std::optional<double> lr, std::optional<double> weight_decay,
                                       std::optional<double> momentum,
                                       std::optional<double> beta1 = {},
                                       std::optional<double> beta2 = {},
                                       std::optional<double> eps = {}) {
  optim::ParamGroupSpec spec;
  spec.lr = lr;
  spec.weight_decay = weight_decay;
  spec.momentum = momentum;
  spec.beta1 = beta1;
  spec.beta2 = beta2;
  spec.eps = eps;
  return spec;
}

// `steps` rounds of zero_grad, backward and step.
void run_steps(optim::Optimizer& optimizer, const Problem& problem, int steps);

}  // namespace ds::test
