#pragma once
// Checkpoints: everything needed to continue training bit for bit, in one safetensors file
// (written to <path>.tmp and renamed, so an interrupted save keeps the previous checkpoint).
// Tensors: "model.<state-dict name>" (unrounded training weights) and "optimizer.<buffer key>".
// Metadata: format and version, the next epoch, the best top-1, the default generator's state,
// the optimizer's scalars, the scheduler's state, the training log, and the configuration
// ("config.*") that a resumed run must share.
#include <string>
#include <vector>

#include "examples/common/train_log.hpp"
#include "nn/io/safetensors.hpp"
#include "nn/module.hpp"
#include "optim/lr_scheduler.hpp"
#include "optim/optimizer.hpp"

namespace ds::trainer {

struct Progress {
  int next_epoch = 0;  // 0-based: the epochs before it are done
  double best_top1 = 0.0;
  std::vector<EpochRecord> log;
};

void save_checkpoint(const std::string& path, const nn::Module& model,
                     const optim::Optimizer& optimizer, const optim::LRScheduler* scheduler,
                     const Progress& progress, const nn::WeightsMetadata& config);

// Restores model, optimizer, scheduler and the default generator. Throws a ds::Error naming the
// file when it is not a checkpoint, when its configuration differs from `config` (naming the
// setting and both values) or when its tensors do not fit the model.
Progress load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& optimizer,
                         optim::LRScheduler* scheduler, const nn::WeightsMetadata& config);

}  // namespace ds::trainer
