#pragma once
// The trainer shared by examples/mnist.cpp, cifar10.cpp and imagenet.cpp: option parsing, model
// construction and shift conversion, training with checkpoints and logs, evaluation. A program
// only says which data it reads and how (TrainerConfig).
#include <functional>
#include <memory>
#include <string>

#include "data/dataset.hpp"
#include "data/transforms.hpp"
#include "examples/common/options.hpp"

namespace ds::trainer {

struct DataSpec {
  std::shared_ptr<const data::Dataset> train;  // null when only evaluating
  std::shared_ptr<const data::Dataset> test;
  data::Transform train_transform;
  data::Transform test_transform;
};

struct TrainerConfig {
  std::string program;      // "mnist": the program name in messages
  std::string description;  // the --help header
  TrainerDefaults defaults;
  Shape input_shape;  // one sample, [C, H, W]
  // The output folder's architecture part ("simple_conv" for --type conv).
  std::function<std::string(const std::string& arch)> arch_label;
  // Reads the datasets; `need_train` is false with -e.
  std::function<DataSpec(const TrainOptions& options, bool need_train)> load_data;
};

// Parses the command line and runs. Returns the exit status: 0, or non-zero after printing a
// message that names the option or file at fault (CLI11 usage errors and ds::Error alike).
int trainer_main(int argc, const char* const* argv, const TrainerConfig& config);

}  // namespace ds::trainer
