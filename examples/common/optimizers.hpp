#pragma once
// Optimizer and learning-rate schedule by name, with the original's parameter groups: the
// ordinary parameters, the PS .sign parameters (own lr, no weight decay) and the PS .shift
// parameters (no weight decay: their L2 term is added to the loss instead).
#include <memory>

#include "examples/common/options.hpp"
#include "nn/module.hpp"
#include "optim/lr_scheduler.hpp"
#include "optim/optimizer.hpp"

namespace ds::trainer {

// Parameters that do not require grad (frozen ones) are left out.
std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& options, nn::Module& model);

// Null when --lr-schedule is false.
std::unique_ptr<optim::LRScheduler> make_scheduler(const TrainOptions& options,
                                                   optim::Optimizer& optimizer);

}  // namespace ds::trainer
