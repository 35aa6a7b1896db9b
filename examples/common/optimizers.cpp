#include "examples/common/optimizers.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "optim/adadelta.hpp"
#include "optim/adagrad.hpp"
#include "optim/optim.hpp"
#include "optim/rmsprop.hpp"

namespace ds::trainer {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<optim::ParamGroupSpec> parameter_groups(const TrainOptions& o, nn::Module& model) {
  optim::ParamGroupSpec other, sign, shift;
  sign.lr = o.lr_sign.value_or(o.lr);
  sign.weight_decay = 0.0;
  shift.lr = o.lr;
  shift.weight_decay = 0.0;
  for (const auto& [name, tensor] : model.named_parameters()) {
    if (!tensor.requires_grad()) continue;
    auto& group = ends_with(name, ".sign") ? sign : ends_with(name, ".shift") ? shift : other;
    group.params.push_back({name, tensor});
  }
  return {other, sign, shift};
}

}  // namespace

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, nn::Module& model) {
  auto groups = parameter_groups(o, model);
  const std::string& name = o.optimizer;
  if (name == "sgd") {
    return std::make_unique<optim::SGD>(
        std::move(groups),
        optim::SgdOptions{.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
  }
  if (name == "adam") {
    return std::make_unique<optim::Adam>(
        std::move(groups), optim::AdamOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  }
  if (name == "adadelta") {
    return std::make_unique<optim::Adadelta>(
        std::move(groups), optim::AdadeltaOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  }
  if (name == "adagrad") {
    return std::make_unique<optim::Adagrad>(
        std::move(groups), optim::AdagradOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  }
  if (name == "rmsprop") {
    return std::make_unique<optim::RMSprop>(
        std::move(groups), optim::RMSpropOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  }
  if (name == "radam") {
    return std::make_unique<optim::RAdam>(
        std::move(groups), optim::RAdamOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  }
  if (name == "ranger") {
    return std::make_unique<optim::Ranger>(
        std::move(groups), optim::RangerOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  }
  fail("--optimizer: unknown optimizer '", name,
       "' (sgd, adam, adadelta, adagrad, rmsprop, radam, ranger)");
}

std::unique_ptr<optim::LRScheduler> make_scheduler(const TrainOptions& o,
                                                   optim::Optimizer& optimizer) {
  std::string schedule = o.lr_schedule;
  if (schedule == "false") return nullptr;
  if (schedule == "true") schedule = o.lr_step_size > 0 ? "step" : "multistep";
  if (schedule == "step") {
    if (o.lr_step_size <= 0) fail("--lr-schedule step needs --lr-step-size N");
    return std::make_unique<optim::StepLR>(optimizer, o.lr_step_size);
  }
  if (schedule == "multistep") {
    return std::make_unique<optim::MultiStepLR>(optimizer,
                                                std::vector<std::int64_t>{80, 120, 160, 180});
  }
  if (schedule == "cosine") {
    return std::make_unique<optim::CosineAnnealingLR>(optimizer, std::max(o.epochs, 1));
  }
  fail("--lr-schedule: unknown schedule '", schedule, "'");
}

}  // namespace ds::trainer
