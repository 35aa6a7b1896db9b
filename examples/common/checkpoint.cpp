#include "examples/common/checkpoint.hpp"

#include <map>
#include <sstream>

#include "tensor/random.hpp"

namespace ds::trainer {
namespace {

constexpr const char* kFormat = "deepshift-checkpoint";
constexpr const char* kVersion = "1";
const std::string kModel = "model.", kOptimizer = "optimizer.", kScalar = "optimizer_scalar.";

std::string join(const std::vector<double>& values) {
  std::string text;
  for (double v : values) text += (text.empty() ? "" : ",") + exact(v);
  return text;
}

std::vector<double> split(const std::string& text, const std::string& what) {
  std::vector<double> values;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(parse_double(item, what));
  return values;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

const std::string& entry(const nn::WeightsMetadata& metadata, const std::string& key,
                         const std::string& path) {
  const auto found = metadata.find(key);
  if (found == metadata.end()) fail("--resume: checkpoint ", path, " has no '", key, "' entry");
  return found->second;
}

// Run settings recorded since after version 1, and what a checkpoint without them ran with.
const std::map<std::string, std::string> kAddedSettings{{"config.flush_denormal", "false"}};

const std::string& setting(const nn::WeightsMetadata& metadata, const std::string& key,
                           const std::string& path) {
  const auto added = kAddedSettings.find(key);
  if (added != kAddedSettings.end() && !metadata.contains(key)) return added->second;
  return entry(metadata, key, path);
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model,
                     const optim::Optimizer& optimizer, const optim::LRScheduler* scheduler,
                     const Progress& progress, const nn::WeightsMetadata& config) {
  std::vector<nn::NamedTensor> tensors;
  for (const auto& [name, tensor] : model.state_dict()) tensors.push_back({kModel + name, tensor});
  const optim::OptimizerState state = optimizer.state();
  for (const auto& [key, tensor] : state.buffers) tensors.push_back({kOptimizer + key, tensor});

  nn::WeightsMetadata metadata = config;
  metadata["format"] = kFormat;
  metadata["version"] = kVersion;
  metadata["next_epoch"] = std::to_string(progress.next_epoch);
  metadata["best_top1"] = exact(progress.best_top1);
  metadata["rng"] = default_generator().state();
  metadata["train_log"] = log_csv(progress.log);
  for (const auto& [key, value] : state.scalars) metadata[kScalar + key] = exact(value);
  if (scheduler) {
    const optim::SchedulerState s = scheduler->state();
    metadata["scheduler.last_epoch"] = std::to_string(s.last_epoch);
    metadata["scheduler.base_lrs"] = join(s.base_lrs);
    metadata["scheduler.last_lrs"] = join(s.last_lrs);
  }
  nn::save_safetensors(path, tensors, metadata);
}

Progress load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& optimizer,
                         optim::LRScheduler* scheduler, const nn::WeightsMetadata& config) {
  nn::WeightsFile file;
  try {
    file = nn::read_safetensors(path);
  } catch (const Error& error) {
    fail("--resume: ", path, " is not a readable checkpoint: ", error.what());
  }
  const nn::WeightsMetadata& metadata = file.metadata;
  const auto format = metadata.find("format");
  if (format == metadata.end() || format->second != kFormat) {
    fail("--resume: ", path,
         " is not a checkpoint written by a deepshift trainer (a weights file? use --model)");
  }
  if (entry(metadata, "version", path) != kVersion) {
    fail("--resume: ", path, " has checkpoint version ", metadata.at("version"), ", expected ",
         kVersion);
  }
  for (const auto& [key, value] : config) {
    const std::string& saved = setting(metadata, key, path);
    if (saved != value) {
      fail("--resume: ", path, " was trained with ", key.substr(7), " = ", saved,
           " but this run has ", value, "; give the same options as the run that wrote it");
    }
  }

  std::vector<nn::NamedTensor> weights;
  optim::OptimizerState state;
  for (const auto& [name, tensor] : file.tensors) {
    if (starts_with(name, kModel))
      weights.push_back({name.substr(kModel.size()), tensor});
    else if (starts_with(name, kOptimizer))
      state.buffers[name.substr(kOptimizer.size())] = tensor;
    else
      fail("--resume: ", path, " holds an unexpected tensor '", name, "'");
  }
  for (const auto& [key, value] : metadata) {
    if (starts_with(key, kScalar)) {
      state.scalars[key.substr(kScalar.size())] = parse_double(value, path + " " + key);
    }
  }
  Progress progress;
  progress.next_epoch =
      static_cast<int>(parse_double(entry(metadata, "next_epoch", path), path + " next_epoch"));
  progress.best_top1 = parse_double(entry(metadata, "best_top1", path), path + " best_top1");
  progress.log = parse_log_csv(entry(metadata, "train_log", path), path);

  model.load_state_dict(weights, path);
  optimizer.load_state(state);
  if (scheduler) {
    optim::SchedulerState s;
    s.last_epoch = static_cast<std::int64_t>(
        parse_double(entry(metadata, "scheduler.last_epoch", path), path + " scheduler"));
    s.base_lrs = split(entry(metadata, "scheduler.base_lrs", path), path + " scheduler");
    s.last_lrs = split(entry(metadata, "scheduler.last_lrs", path), path + " scheduler");
    scheduler->load_state(s);
  }
  default_generator().set_state(entry(metadata, "rng", path));
  return progress;
}

}  // namespace ds::trainer
