#include "examples/common/evaluation.hpp"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "examples/common/progress.hpp"
#include "nn/functional.hpp"
#include "shiftops/convert.hpp"
#include "tensor/ops.hpp"

namespace ds::trainer {
namespace {

struct Hits {
  std::int64_t top1 = 0, top5 = 0;
};

// Top-1 is the first maximum (as argmax); a label is in the top 5 when fewer than five classes
// score strictly higher. (A NaN score would pass as class 0 and as in the top 5: the callers
// stop first, on the loss it makes NaN.)
Hits count_hits(const Tensor& output, const Tensor& labels) {
  const auto scores = output.detach().to(Device::cpu()).contiguous().to_vector<float>();
  const auto targets = labels.to(Device::cpu()).to_vector<std::int32_t>();
  const std::int64_t classes = output.size(1);
  Hits hits;
  for (std::size_t row = 0; row < targets.size(); ++row) {
    const float* s = scores.data() + row * classes;
    std::int64_t best = 0, higher = 0;
    for (std::int64_t c = 0; c < classes; ++c) {
      if (s[c] > s[best]) best = c;
      if (s[c] > s[targets[row]]) ++higher;
    }
    hits.top1 += best == targets[row];
    hits.top5 += higher < 5;
  }
  return hits;
}

}  // namespace

EpochResult train_epoch(const TrainStep& step, data::DataLoader& loader, std::int64_t epoch,
                        const std::string& label, int log_interval) {
  step.model.train();
  loader.start_epoch(epoch);
  ProgressLine progress(label, loader.batches_per_epoch(), log_interval);
  std::int64_t batches = 0;
  while (std::optional<data::Batch> batch = loader.next()) {
    ++batches;
    const Tensor images = batch->images.to(step.device);
    const Tensor labels = batch->labels.to(step.device);
    // Dropped rather than zeroed (PyTorch's default): backward then hands each parameter its
    // gradient without a zero fill and an add.
    step.optimizer.zero_grad(/*set_to_none=*/true);
    const Tensor output = step.model(images);
    Tensor loss = nn::functional::cross_entropy(output, labels);
    if (step.shift_weight_decay > 0) {
      loss = loss + shift::shift_l2_penalty(step.model, step.shift_weight_decay);
    }
    loss.backward();
    const double value = loss.item();
    // A diverged run stops here rather than train on, report made-up accuracy and save NaN
    // weights.
    if (!std::isfinite(value))
      fail(label, ": the training loss is ", value, " at batch ", batches, " of ",
           loader.batches_per_epoch(), " (the run diverged: try a lower --lr)");
    step.optimizer.step();
    const std::int64_t n = labels.size(0);
    progress.update(n, value * n, count_hits(output, labels).top1);
  }
  progress.finish();
  return {progress.mean_loss(), progress.accuracy()};
}

EvalResult evaluate(nn::Module& model, data::DataLoader& loader, Device device,
                    const std::string& label, int log_interval) {
  NoGradGuard no_grad;
  model.eval();
  loader.start_epoch(0);
  ProgressLine progress(label, loader.batches_per_epoch(), log_interval);
  EvalResult result;
  double loss_sum = 0.0;
  std::int64_t batches = 0;
  while (std::optional<data::Batch> batch = loader.next()) {
    ++batches;
    const Tensor images = batch->images.to(device);
    const Tensor labels = batch->labels.to(device);
    const Tensor output = model(images);
    const double batch_loss =
        nn::functional::cross_entropy(output, labels, nn::functional::Reduction::sum).item();
    if (!std::isfinite(batch_loss))
      fail(label, ": the test loss is ", batch_loss, " at batch ", batches,
           ": the model's outputs are not finite (weights with NaN or infinities?)");
    const Hits hits = count_hits(output, labels);
    loss_sum += batch_loss;
    result.top1_correct += hits.top1;
    result.top5_correct += hits.top5;
    result.total += labels.size(0);
    progress.update(labels.size(0), batch_loss, hits.top1);
  }
  progress.finish();
  result.loss = result.total ? loss_sum / result.total : 0.0;
  return result;
}

}  // namespace ds::trainer
