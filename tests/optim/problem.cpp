#include "problem.hpp"

#include "autograd/grad_mode.hpp"
#include "tensor/ops.hpp"

namespace ds::test {

using namespace ds::optim;

const GoldenFile& trajectory_file() {
  static const GoldenFile file(DS_OPTIM_GOLDEN_DIR "/optim_trajectories.golden");
  return file;
}

const GoldenFile& schedule_file() {
  static const GoldenFile file(DS_OPTIM_GOLDEN_DIR "/lr_schedulers.golden");
  return file;
}

Problem::Problem(DType dtype)
    : x(trajectory_file().get("problem/x").to(dtype)),
      y(trajectory_file().get("problem/y").to(dtype)),
      weight(trajectory_file().get("problem/weight").to(dtype)),
      bias(trajectory_file().get("problem/bias").to(dtype)),
      unused(Tensor::ones({2}, dtype)) {
  weight.requires_grad_();
  bias.requires_grad_();
  unused.requires_grad_();
}

std::vector<NamedParameter> Problem::params() const {
  return {{"fc.weight", weight}, {"fc.bias", bias}, {"fc.unused", unused}};
}

void Problem::backward() const {
  const Tensor error = matmul(x, weight) + bias - y;
  const Tensor loss = mean(pow(error, 2.0)) + sum(pow(weight, 4.0)) * 0.01;
  loss.backward();
}

void run_steps(Optimizer& optimizer, const Problem& problem, int steps) {
  for (int i = 0; i < steps; ++i) {
    optimizer.zero_grad();
    problem.backward();
    optimizer.step();
  }
}

namespace {}  // namespace

const std::vector<OptimizerCase>& optimizer_cases() {
  static const std::vector<OptimizerCase> cases = {
      {"sgd_plain", together<SGD>(SgdOptions{.lr = 0.1})},
      {"sgd_momentum", together<SGD>(SgdOptions{.lr = 0.05, .momentum = 0.9})},
      {"sgd_dampening", together<SGD>(SgdOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.3})},
      {"sgd_nesterov", together<SGD>(SgdOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true})},
      {"sgd_weight_decay",
       together<SGD>(SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.05})},
      {"sgd_groups", grouped<SGD>(SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.02},
                                  overrides(0.01, 0.0, 0.5))},
      {"adam", together<Adam>(AdamOptions{.lr = 0.05})},
      {"adam_weight_decay", together<Adam>(AdamOptions{.lr = 0.05, .weight_decay = 0.1})},
      {"adam_amsgrad", together<Adam>(AdamOptions{.lr = 0.05,
                                                  .beta1 = 0.8,
                                                  .beta2 = 0.99,
                                                  .eps = 1e-6,
                                                  .weight_decay = 0.01,
                                                  .amsgrad = true})},
      {"adam_groups",
       grouped<Adam>(AdamOptions{.lr = 0.05}, overrides(0.01, {}, {}, 0.5, 0.9, 1e-4))},
      {"radam", together<RAdam>(RAdamOptions{.lr = 0.05})},
      {"radam_weight_decay", together<RAdam>(RAdamOptions{.lr = 0.05, .weight_decay = 0.1})},
      {"radam_groups", grouped<RAdam>(RAdamOptions{.lr = 0.05, .weight_decay = 0.05},
                                      overrides(0.01, 0.0, {}, 0.8, 0.99))},
      {"ranger", together<Ranger>(RangerOptions{.lr = 0.05})},
      {"ranger_weight_decay", together<Ranger>(RangerOptions{.lr = 0.05, .weight_decay = 0.1})},
      {"ranger_lookahead",
       together<Ranger>(RangerOptions{
           .lr = 0.05, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .k = 4, .alpha = 0.8})},
  };
  return cases;
}

}  // namespace ds::test
