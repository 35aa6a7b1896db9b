#include "examples/common/options.hpp"

#include <cmath>
#include <cstdlib>
#include <map>

#include "tensor/error.hpp"

namespace ds::trainer {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : "|") + name;
  return text;
}

// argparse's distutils.strtobool spellings, for --pretrained True and friends.
CLI::Option* add_bool(CLI::App& app, const std::string& name, bool& value,
                      const std::string& help) {
  return app.add_option(name, value, help + " (true|false)")
      ->type_name("BOOL")
      ->capture_default_str();
}

// Numbers a finite value greater than 0 (or at least 0): CLI11's PositiveNumber and
// NonNegativeNumber print their range up to the largest double in full, 300 digits that read as
// if 0 were allowed.
CLI::Validator number_from(double least, bool least_allowed, const std::string& wanted) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        const bool number = !text.empty() && end == text.c_str() + text.size();
        const bool fits =
            std::isfinite(value) && (value > least || (least_allowed && value == least));
        return number && fits ? std::string() : "must be " + wanted + ", got " + text;
      },
      "");
}
const CLI::Validator kPositive = number_from(0.0, false, "a finite number greater than 0");
const CLI::Validator kNonNegative = number_from(0.0, true, "a finite number of at least 0");

const std::vector<std::string> kOptimizers{"sgd",     "adam",  "adadelta", "adagrad",
                                           "rmsprop", "radam", "ranger"};
const std::vector<std::string> kSchedules{"true", "false", "step", "multistep", "cosine"};

}  // namespace

void register_options(CLI::App& app, TrainOptions& o, const TrainerDefaults& defaults) {
  o = defaults.options;
  const std::string archs = join(defaults.archs);
  if (defaults.arch_is_type) {
    app.add_option("--type", o.arch, "model architecture type: " + archs)
        ->check(CLI::IsMember(defaults.archs))
        ->capture_default_str();
  } else {
    app.add_option("-a,--arch", o.arch, "model architecture: " + archs)
        ->check(CLI::IsMember(defaults.archs))
        ->capture_default_str();
  }
  if (defaults.data_positional) {
    app.add_option("data", o.data_dir, "path to the dataset (train/ and val/ folders)");
  }
  app.add_option("--data-dir", o.data_dir, "dataset folder")->capture_default_str();
  app.add_option("--model", o.model,
                 "a weights file written by this trainer: the model is rebuilt with the "
                 "architecture and shift settings stored in it, then loaded (options that "
                 "contradict them are refused)");
  app.add_option("--weights", o.weights,
                 "FP32 weights (safetensors, e.g. exported from PyTorch) loaded before the "
                 "shift conversion, which then starts from them");
  add_bool(app, "--pretrained", o.pretrained,
           "start from the FP32 baseline <models-dir>/<dataset>/<arch>/shift_0/"
           "weights.safetensors");
  app.add_option("-s,--shift-depth", o.shift_depth,
                 "how many layers to convert to shift, counted from the output end (1000: all)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--shift-type", o.shift_type, "DeepShift method: Q|PS (short form -st)")
      ->check(CLI::IsMember({"Q", "PS"}))
      ->capture_default_str();
  app.add_option("-r,--rounding", o.rounding, "rounding: deterministic|stochastic")
      ->check(CLI::IsMember({"deterministic", "stochastic"}))
      ->capture_default_str();
  app.add_option("--weight-bits", o.weight_bits,
                 "bits of a shift weight, sign included, 2..8 (short form -wb)")
      ->capture_default_str();
  app.add_option("--activation-bits", o.activation_bits,
                 "integer and fraction bits of the fixed-point activations (short form -ab)")
      ->expected(2)
      ->capture_default_str();
  app.add_option("-b,--batch-size", o.batch_size, "training batch size")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--test-batch-size", o.test_batch_size, "evaluation batch size")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--epochs", o.epochs, "epochs to train")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--start-epoch", o.start_epoch, "first epoch (0-based; a checkpoint sets it)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--optimizer,--opt", o.optimizer,
                 "optimizer: " + join(kOptimizers) + " (short form -opt)")
      ->transform(CLI::IsMember(kOptimizers, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--lr", o.lr, "learning rate")->check(kPositive)->capture_default_str();
  app.add_option("--momentum", o.momentum, "momentum (sgd)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--wd,--weight-decay", o.weight_decay,
                 "weight decay; shift parameters get wd/2 * sum((2^shift)^2) in the loss instead")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--lr-schedule", o.lr_schedule,
                 "learning-rate schedule: true (StepLR with --lr-step-size, else MultiStepLR at "
                 "80,120,160,180), false, step, multistep, cosine")
      ->transform(CLI::IsMember(kSchedules, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--lr-step-size", o.lr_step_size, "StepLR period in epochs (gamma 0.1)")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--lr-sign", o.lr_sign,
                 "learning rate of the PS .sign parameters (default: --lr; 0 freezes them)")
      ->check(kNonNegative);
  app.add_option("--resume", o.resume, "continue from this checkpoint file");
  app.add_flag("-e,--evaluate", o.evaluate, "only evaluate the model on the test set");
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_option(defaults.print_freq_name, o.log_interval,
                 "batches between progress lines when the output is not a terminal")
      ->check(kPositive)
      ->capture_default_str();
  add_bool(app, "--freeze", o.freeze,
           "train only the shift layers; the other pre-trained parameters stay fixed");
  add_bool(app, "--save-model", o.save_model, "write checkpoints and weights files");
  add_bool(app, "--overwrite", o.overwrite,
           "let a new training run replace the checkpoint and models of an earlier run in its "
           "output folder (without it, such a folder is refused)");
  add_bool(app, "--print-weights", o.print_weights,
           "write the final weights as text to weights_log.txt");
  app.add_option("--desc", o.desc, "description appended to the output folder name");
  add_bool(app, "--use-kernel", o.use_kernel,
           "run the shift layers' forward through the integer shift kernels (training and -e; the "
           "backward stays on the float path)");
  add_bool(app, "--flush-denormal", o.flush_denormal,
           "float results below 1.2e-38 become 0 on the CPU, as torch.set_flush_denormal(True): "
           "a saturated softmax otherwise sends subnormal gradients through the matrix "
           "products, which x86 cores compute many times slower");
  app.add_option("-j,--workers", o.workers, "data loading threads")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--device", o.device, "cpu|cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--models-dir", o.models_dir, "root of the output folders")->capture_default_str();
  app.add_option(
         "--train-limit", o.train_limit,
         "use only N training samples spread evenly over the set (0: all); for quick checks")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--test-limit", o.test_limit,
                 "use only N test samples spread evenly over the set (0: all)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.footer(
      "The original's short forms -st, -wb, -ab and -opt are accepted as well. Outputs go to "
      "<models-dir>/<dataset>/<arch>/<shift label>[_<desc>]/.");
}

void record_given(const CLI::App& app, TrainOptions& options) {
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() == 0) continue;
    for (const std::string& name : option->get_lnames()) options.given.insert("--" + name);
  }
}

std::vector<std::string> expand_short_forms(int argc, const char* const* argv) {
  static const std::map<std::string, std::string> kLong{{"-st", "--shift-type"},
                                                        {"-wb", "--weight-bits"},
                                                        {"-ab", "--activation-bits"},
                                                        {"-opt", "--optimizer"}};
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto found = kLong.find(arg);
    args.push_back(i > 0 && found != kLong.end() ? found->second : arg);
  }
  return args;
}

void validate(const TrainOptions& o) {
  if (o.weight_bits < 2 || o.weight_bits > 8) {
    fail("-wb/--weight-bits must be in 2..8, got ", o.weight_bits);
  }
  if (o.activation_bits.size() != 2) {
    fail("-ab/--activation-bits takes two numbers: integer bits and fraction bits");
  }
  if (o.activation_bits[0] < 2) {
    fail("-ab/--activation-bits: the integer part needs at least 2 bits (sign included), got ",
         o.activation_bits[0]);
  }
  if (o.activation_bits[1] < 0 || o.activation_bits[0] + o.activation_bits[1] > 32) {
    fail("-ab/--activation-bits: need 0 <= fraction bits and integer + fraction <= 32, got ",
         o.activation_bits[0], " ", o.activation_bits[1]);
  }
  if (o.freeze && o.weights.empty() && !o.pretrained) {
    fail("--freeze keeps pre-trained parameters fixed: give --weights FILE or --pretrained true");
  }
  if (o.pretrained && !o.weights.empty()) {
    fail("--pretrained and --weights both name the starting weights: give only one");
  }
  if (!o.model.empty() && (!o.weights.empty() || o.pretrained)) {
    fail(
        "--model loads a whole trained model: it cannot be combined with --weights or "
        "--pretrained");
  }
  if (o.start_epoch > o.epochs) {
    fail("--start-epoch ", o.start_epoch, " is beyond --epochs ", o.epochs);
  }
  if (o.data_dir.empty()) fail("no dataset folder: give --data-dir DIR (imagenet: or DIR alone)");
  if (o.models_dir.empty()) fail("--models-dir is empty: give the folder the outputs go under");
  if (o.evaluate && o.model.empty() && o.resume.empty() && o.weights.empty() && !o.pretrained) {
    fail(
        "-e/--evaluate needs a trained model: give --model FILE, --resume CHECKPOINT, --weights "
        "FILE or --pretrained true");
  }
}

}  // namespace ds::trainer
