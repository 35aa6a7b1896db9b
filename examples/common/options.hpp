#pragma once
// The options every trainer shares, with the names, short forms and defaults of the original
// DeepShift scripts (mnist.py, cifar10.py, imagenet.py). Each program fills a TrainerDefaults
// with its own defaults, then registers the options on its CLI11 app.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ds::trainer {

struct TrainOptions {
  std::string dataset;  // "mnist", "cifar10", "imagenet": the zoo's dataset and the output folder
  std::string arch;     // the zoo's architecture name
  std::string data_dir;
  std::string model;    // a weights file written by a trainer: architecture and shift settings too
  std::string weights;  // FP32 weights loaded before conversion (pre-trained start)
  bool pretrained = false;
  int shift_depth = 0;
  std::string shift_type = "PS";
  std::string rounding = "deterministic";
  int weight_bits = 5;
  std::vector<int> activation_bits{16, 16};
  std::int64_t batch_size = 64;
  std::int64_t test_batch_size = 1000;
  int epochs = 10;
  int start_epoch = 0;
  std::string optimizer = "sgd";
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  std::string lr_schedule = "false";
  int lr_step_size = 0;  // 0: not given
  std::optional<double> lr_sign;
  std::string resume;
  bool evaluate = false;
  std::uint64_t seed = 1;
  int log_interval = 10;
  bool freeze = false;
  bool save_model = true;
  bool overwrite = false;
  bool print_weights = true;
  std::string desc;
  bool use_kernel = false;
  bool flush_denormal = true;
  int workers = 1;
  std::string device = "cpu";
  std::string models_dir = "models";
  std::int64_t train_limit = 0;  // 0: the whole split
  std::int64_t test_limit = 0;
  // The long names of the options given on the command line ("--weight-bits"), so that a file
  // that sets an option (--model) can refuse a contradicting one rather than override it.
  std::set<std::string> given;
};

// What differs between the three programs.
struct TrainerDefaults {
  TrainOptions options;
  std::vector<std::string> archs;  // the valid --arch (or --type) values
  bool arch_is_type = false;       // mnist: --type linear|conv instead of -a/--arch
  bool data_positional = false;    // imagenet: the data folder may be given as a positional
  std::string print_freq_name = "--log-interval";  // mnist; "-p,--print-freq" elsewhere
};

// Adds every option to `app`, bound to `options` (which starts as defaults.options).
void register_options(CLI::App& app, TrainOptions& options, const TrainerDefaults& defaults);

// Fills options.given from the options `app` parsed.
void record_given(const CLI::App& app, TrainOptions& options);

// argparse accepts the original's multi-letter short forms (-st, -wb, -ab, -opt) and CLI11 does
// not: they are rewritten to their long names before parsing.
std::vector<std::string> expand_short_forms(int argc, const char* const* argv);

// Refuses inconsistent combinations with a ds::Error naming the options at fault.
void validate(const TrainOptions& options);

}  // namespace ds::trainer
