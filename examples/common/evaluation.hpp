#pragma once
// One training epoch and one evaluation pass over a loader.
#include <cstdint>

#include "data/loader.hpp"
#include "nn/module.hpp"
#include "optim/optimizer.hpp"
#include "tensor/device.hpp"

namespace ds::trainer {

struct EvalResult {
  double loss = 0.0;  // mean cross entropy
  std::int64_t top1_correct = 0, top5_correct = 0, total = 0;
  double top1() const { return total ? 100.0 * top1_correct / total : 0.0; }
  double top5() const { return total ? 100.0 * top5_correct / total : 0.0; }
};

struct EpochResult {
  double loss = 0.0;  // mean over the epoch's samples, shift L2 term included
  double accuracy = 0.0;
};

struct TrainStep {
  nn::Module& model;
  optim::Optimizer& optimizer;
  double shift_weight_decay = 0.0;  // > 0 adds the shift L2 term to the loss
  Device device;
};

EpochResult train_epoch(const TrainStep& step, data::DataLoader& loader, std::int64_t epoch,
                        const std::string& label, int log_interval);

// In eval mode and without recording a graph; `label` heads the progress line.
EvalResult evaluate(nn::Module& model, data::DataLoader& loader, Device device,
                    const std::string& label, int log_interval);

}  // namespace ds::trainer
