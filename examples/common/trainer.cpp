#include "examples/common/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "examples/common/checkpoint.hpp"
#include "examples/common/evaluation.hpp"
#include "examples/common/learning_curve.hpp"
#include "examples/common/optimizers.hpp"
#include "examples/common/outputs.hpp"
#include "nn/io/atomic_file.hpp"
#include "nn/io/safetensors.hpp"
#include "nn/models/zoo.hpp"
#include "nn/summary.hpp"
#include "shiftops/convert.hpp"
#include "shiftops/kernel.hpp"
#include "shiftops/packed.hpp"
#include "tensor/backend.hpp"
#include "tensor/denormals.hpp"
#include "tensor/random.hpp"

namespace ds::trainer {
namespace {

namespace fs = std::filesystem;

// `limit` samples spread evenly over a dataset (--train-limit, --test-limit): sample i is
// inner sample floor(i * size / limit), so an image folder sorted by class keeps every class.
class EvenSubset final : public data::Dataset {
 public:
  EvenSubset(std::shared_ptr<const data::Dataset> inner, std::int64_t limit)
      : inner_(std::move(inner)), size_(limit) {}
  std::int64_t size() const override { return size_; }
  data::Example get(std::int64_t index) const override {
    if (index < 0 || index >= size_) fail("sample ", index, " is outside the subset of ", size_);
    return inner_->get(inner_index(index));
  }
  std::int64_t num_classes() const override { return inner_->num_classes(); }
  std::string sample_name(std::int64_t index) const override {
    return inner_->sample_name(inner_index(index));
  }

 private:
  std::int64_t inner_index(std::int64_t index) const { return index * inner_->size() / size_; }

  std::shared_ptr<const data::Dataset> inner_;
  std::int64_t size_;
};

std::shared_ptr<const data::Dataset> limited(std::shared_ptr<const data::Dataset> dataset,
                                             std::int64_t limit) {
  if (limit <= 0 || limit >= dataset->size()) return dataset;
  return std::make_shared<EvenSubset>(std::move(dataset), limit);
}

// Refuses data a model cannot honestly be trained or tested on, before anything is written: an
// empty split, more classes than the model has outputs, image folders whose splits have
// different class folders (each numbers its own, so the labels would not match), or a first
// sample that its transforms do not turn into the model's input shape (later samples of another
// size stop the loader, naming the sample).
void check_data(const DataSpec& spec, const TrainerConfig& config, const TrainOptions& o) {
  const std::string where = "--data-dir " + o.data_dir + ": ";
  const std::int64_t classes = nn::models::default_num_classes(o.dataset);
  const auto check_split = [&](const char* name, const data::Dataset* dataset,
                               const data::Transform& transform) {
    if (!dataset) return;
    if (dataset->size() == 0) fail(where, "the ", name, " set holds no samples");
    if (dataset->num_classes() > classes)
      fail(where, "the ", name, " set has ", dataset->num_classes(), " classes; the ", o.dataset,
           " models have ", classes, " outputs");
    Generator gen(o.seed);
    const Tensor first = dataset->get(0).image;
    const Tensor sample = transform ? transform(first, gen) : first;
    if (sample.shape() != config.input_shape) {
      std::ostringstream made;
      if (sample.shape() != first.shape()) made << ", which its transforms make " << sample.shape();
      fail(where, "the ", name, " set's first sample (", dataset->sample_name(0), ") is ",
           first.shape(), made.str(), "; the model takes ", config.input_shape);
    }
  };
  check_split("test", spec.test.get(), spec.test_transform);
  check_split("training", spec.train.get(), spec.train_transform);
  const auto* train_folder = dynamic_cast<const data::ImageFolder*>(spec.train.get());
  const auto* test_folder = dynamic_cast<const data::ImageFolder*>(spec.test.get());
  if (train_folder && test_folder && train_folder->classes() != test_folder->classes()) {
    const auto& train = train_folder->classes();
    const auto& test = test_folder->classes();
    const auto [a, b] = std::mismatch(train.begin(), train.end(), test.begin(), test.end());
    fail(where, "the training and test folders have different classes (", train.size(), " and ",
         test.size(), "; first difference: ", a == train.end() ? "(none)" : "'" + *a + "'",
         " against ", b == test.end() ? "(none)" : "'" + *b + "'",
         "): each numbers its own class folders, so their labels would not match");
  }
}

Device choose_device(const std::string& name) {
  const Device device = Device::parse(name);
  if (!device.is_cpu() && !has_backend(device.kind)) {
    fail("--device ", name,
         ": this build has no CUDA backend (configure with -Dcuda=enabled on a machine with "
         "nvcc and a GPU), use --device cpu");
  }
  return device;
}

// Round-trip through a snapshot: the training weights stay unrounded while the rounded model
// is evaluated and saved (DeepShift rounds shift weights for evaluation and saving only).
class RoundedView {
 public:
  explicit RoundedView(nn::Module& model) : model_(model) {
    for (const auto& [name, tensor] : model.state_dict()) saved_.push_back({name, tensor.clone()});
    shift::round_shift_weights(model);
  }
  ~RoundedView() { model_.load_state_dict(saved_, "training snapshot"); }
  RoundedView(const RoundedView&) = delete;
  RoundedView& operator=(const RoundedView&) = delete;

 private:
  nn::Module& model_;
  std::vector<nn::NamedTensor> saved_;
};

void print_result(const char* what, const EvalResult& r) {
  std::printf("%s: loss %.4f  top-1 %.2f%% (%lld/%lld)  top-5 %.2f%%\n", what, r.loss, r.top1(),
              static_cast<long long>(r.top1_correct), static_cast<long long>(r.total), r.top5());
  std::fflush(stdout);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string quoted_command(const std::vector<std::string>& args) {
  std::string text;
  for (const auto& arg : args) {
    const bool plain = !arg.empty() && arg.find_first_of(" \t'\"$\\") == std::string::npos;
    text += (text.empty() ? "" : " ") + (plain ? arg : "'" + arg + "'");
  }
  return text;
}

class Run {
 public:
  Run(const TrainerConfig& config, TrainOptions options, std::string command_line,
      std::string settings)
      : config_(config),
        o_(std::move(options)),
        command_line_(std::move(command_line)),
        settings_(std::move(settings)) {}

  void execute() {
    validate(o_);
    device_ = choose_device(o_.device);
    if (!o_.model.empty()) apply_model_config(o_.model, o_);
    manual_seed(o_.seed);
    build_model();
    // The data first: a folder is written only for a run that can start.
    load_data();
    prepare_output_folder();
    model_->to(device_);
    if (o_.evaluate) {
      evaluate_only();
    } else {
      train();
    }
  }

 private:
  std::string fp32_weights_path() const {
    return (fs::path(o_.models_dir) / o_.dataset / config_.arch_label(o_.arch) / "shift_0" /
            "weights.safetensors")
        .string();
  }

  void build_model() {
    model_ = nn::models::create(o_.dataset, o_.arch);
    const std::string start = o_.pretrained ? fp32_weights_path() : o_.weights;
    if (!start.empty()) {
      if (!fs::exists(start)) {
        fail(o_.pretrained ? "--pretrained: no FP32 baseline at " : "--weights: no file ", start,
             o_.pretrained ? " (train it first with --shift-depth 0, or give --weights FILE)" : "");
      }
      nn::load_weights(*model_, start);
      std::printf("Loaded FP32 weights from %s\n", start.c_str());
    }
    if (o_.shift_depth > 0) {
      shift::ConversionOptions conversion;
      conversion.type = shift::parse_shift_type(o_.shift_type);
      conversion.shift.weight_bits = o_.weight_bits;
      conversion.shift.activation = {o_.activation_bits[0], o_.activation_bits[1]};
      conversion.shift.rounding = shift::parse_rounding(o_.rounding);
      conversion.shift.freeze_sign = o_.lr_sign.has_value() && *o_.lr_sign == 0.0;
      conversion.convert_weights = !start.empty();
      conversion.convert_all_linear = o_.arch != "linear";
      shift::convert_to_shift(*model_, o_.shift_depth, conversion);
      std::printf("Converted %zu layer(s) to DeepShift-%s\n", shift::shift_layers(*model_).size(),
                  o_.shift_type.c_str());
    }
    if (o_.freeze) freeze_non_shift_parameters();
    if (!o_.model.empty()) {
      nn::load_weights(*model_, o_.model);
      std::printf("Loaded model from %s\n", o_.model.c_str());
    }
  }

  void freeze_non_shift_parameters() {
    std::vector<std::string> trainable;
    for (const auto& layer : shift::shift_layers(*model_)) trainable.push_back(layer.name + ".");
    for (auto [name, tensor] : model_->named_parameters()) {
      bool in_shift_layer = false;
      for (const auto& prefix : trainable) in_shift_layer |= name.rfind(prefix, 0) == 0;
      if (!in_shift_layer) tensor.requires_grad_(false);
    }
  }

  void prepare_output_folder() {
    const bool fully_shift = o_.shift_depth > 0 && shift::is_fully_shift(*model_);
    dir_ = fs::path(o_.models_dir) / o_.dataset / config_.arch_label(o_.arch) /
           shift_label(o_, fully_shift);
    // A new run would replace an earlier run's models after its first epoch and, stopped, leave
    // a mix of both runs' files.
    const fs::path earlier = dir_ / "checkpoint.safetensors";
    if (!o_.evaluate && o_.resume.empty() && !o_.overwrite && fs::exists(earlier)) {
      fail(dir_.string(), " holds an earlier run (", earlier.string(),
           "): continue it with --resume ", earlier.string(),
           ", start a new folder with --desc NAME, or replace it with --overwrite true");
    }
    fs::create_directories(dir_);
    // -e usually runs in the folder of the training run that wrote the model: its own record
    // goes beside that run's, not over it.
    const std::string prefix = o_.evaluate ? "eval_" : "";
    nn::write_text_atomically(path(prefix + "command_args.txt"),
                              command_line_ + "\n\n" + settings_);
    Shape input{1};
    input.insert(input.end(), config_.input_shape.begin(), config_.input_shape.end());
    const std::string table = nn::summarize(*model_, input).table();
    nn::write_text_atomically(path(prefix + "model_summary.txt"), table);
    std::printf("%s\n", table.c_str());
  }

  std::string path(const std::string& file) const { return (dir_ / file).string(); }

  void load_data() {
    DataSpec spec = config_.load_data(o_, !o_.evaluate);
    // (On the whole splits: a limited one is a subset, which hides an image folder's classes.)
    check_data(spec, config_, o_);
    spec.test = limited(spec.test, o_.test_limit);
    if (spec.train) spec.train = limited(spec.train, o_.train_limit);
    test_loader_.emplace(spec.test, spec.test_transform,
                         data::LoaderOptions{.batch_size = o_.test_batch_size,
                                             .shuffle = false,
                                             .workers = o_.workers,
                                             .seed = o_.seed});
    if (spec.train) {
      train_loader_.emplace(spec.train, spec.train_transform,
                            data::LoaderOptions{.batch_size = o_.batch_size,
                                                .shuffle = true,
                                                .workers = o_.workers,
                                                .seed = o_.seed});
    }
  }

  EvalResult test(const std::string& label) {
    return trainer::evaluate(*model_, *test_loader_, device_, label, o_.log_interval);
  }

  void save_rounded_weights(const std::string& file) {
    nn::save_weights(*model_, path(file), model_config(o_));
  }

  void evaluate_only() {
    if (!o_.resume.empty()) {
      auto optimizer = make_optimizer(o_, *model_);
      auto scheduler = make_scheduler(o_, *optimizer);
      load_checkpoint(o_.resume, *model_, *optimizer, scheduler.get(), run_config(o_));
    }
    shift::round_shift_weights(*model_);
    const bool has_shift = !shift::shift_layers(*model_).empty();
    use_kernel_if_asked(has_shift);
    const EvalResult result = test("Test");
    print_result(o_.use_kernel ? "Test set (shift kernel)" : "Test set", result);
    if (has_shift && o_.save_model) report_packed_size();
    nn::write_text_atomically(path("test_log.csv"),
                              "test_loss,top1,top5,correct,total\n" + exact(result.loss) + "," +
                                  exact(result.top1()) + "," + exact(result.top5()) + "," +
                                  std::to_string(result.top1_correct) + "," +
                                  std::to_string(result.total) + "\n");
    std::printf("Outputs written to %s\n", dir_.string().c_str());
  }

  void use_kernel_if_asked(bool has_shift) {
    if (!o_.use_kernel) return;
    if (!has_shift) fail("--use-kernel: the model has no shift layers (see --shift-depth)");
    shift::use_kernel(*model_);
    std::printf(
        "Shift layers run through the integer shift kernels (%s)\n",
        device_.is_cpu() ? shift::kernel_path_name(shift::kernel_path()) : device_.str().c_str());
  }

  // The deployed size: FP32 weights of the same architecture against the packed shift file.
  void report_packed_size() {
    const std::string packed = path("weights_packed.safetensors");
    shift::save_packed(*model_, packed);
    std::int64_t fp32_bytes = 0;
    for (const auto& entry : nn::models::create(o_.dataset, o_.arch)->state_dict()) {
      fp32_bytes += entry.tensor.numel() * 4;
    }
    const auto packed_bytes = static_cast<std::int64_t>(fs::file_size(packed));
    std::printf(
        "Model size: FP32 %lld bytes, packed shift weights %lld bytes (%.1fx smaller): %s\n",
        static_cast<long long>(fp32_bytes), static_cast<long long>(packed_bytes),
        static_cast<double>(fp32_bytes) / static_cast<double>(packed_bytes), packed.c_str());
  }

  void train() {
    auto optimizer = make_optimizer(o_, *model_);
    auto scheduler = make_scheduler(o_, *optimizer);
    Progress progress;
    progress.next_epoch = o_.start_epoch;
    if (!o_.resume.empty()) {
      progress = load_checkpoint(o_.resume, *model_, *optimizer, scheduler.get(), run_config(o_));
      std::printf("Resumed from %s at epoch %d\n", o_.resume.c_str(), progress.next_epoch + 1);
    } else if (scheduler && o_.start_epoch > 0) {
      scheduler->step(o_.start_epoch);
    }
    const bool has_shift = !shift::shift_layers(*model_).empty();
    use_kernel_if_asked(has_shift);
    const TrainStep step{*model_, *optimizer, has_shift ? o_.weight_decay : 0.0, device_};

    std::optional<EvalResult> last;
    for (int epoch = progress.next_epoch; epoch < o_.epochs; ++epoch) {
      const std::string tag =
          "Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs);
      const auto started = std::chrono::steady_clock::now();
      const EpochResult trained =
          train_epoch(step, *train_loader_, epoch, tag + " train", o_.log_interval);
      if (scheduler) scheduler->step();
      {
        RoundedView rounded(*model_);
        last = test(tag + " test");
        if (o_.save_model && last->top1() > progress.best_top1) {
          save_rounded_weights("model_best.safetensors");
        }
      }
      print_result((tag + " test").c_str(), *last);
      progress.best_top1 = std::max(progress.best_top1, last->top1());
      progress.log.push_back({epoch + 1, trained.loss, last->loss, last->top1(), last->top5(),
                              seconds_since(started)});
      progress.next_epoch = epoch + 1;
      write_logs(progress);
      if (o_.save_model) {
        save_checkpoint(path("checkpoint.safetensors"), *model_, *optimizer, scheduler.get(),
                        progress, run_config(o_));
      }
    }
    finish(last);
  }

  void write_logs(const Progress& progress) {
    nn::write_text_atomically(path("train_log.csv"), log_csv(progress.log));
    nn::write_text_atomically(path("learning_curve.svg"),
                              learning_curve_svg(progress.log, dir_.filename().string()));
  }

  // The saved model is the rounded one; its accuracy is the one -e reproduces from the file.
  void finish(std::optional<EvalResult> last) {
    shift::round_shift_weights(*model_);
    if (!last) last = test("Test");
    if (o_.save_model) save_rounded_weights("weights.safetensors");
    if (o_.print_weights) write_weights_log(*model_, path("weights_log.txt"));
    print_result("Final test set (rounded weights)", *last);
    std::printf("Outputs written to %s\n", dir_.string().c_str());
  }

  const TrainerConfig& config_;
  TrainOptions o_;
  std::string command_line_, settings_;
  Device device_;
  nn::ModulePtr model_;
  fs::path dir_;
  std::optional<data::DataLoader> train_loader_, test_loader_;
};

}  // namespace

int trainer_main(int argc, const char* const* argv, const TrainerConfig& config) {
  CLI::App app(config.description, config.program);
  TrainOptions options;
  register_options(app, options, config.defaults);
  const std::vector<std::string> args = expand_short_forms(argc, argv);
  std::vector<const char*> pointers;
  for (const auto& arg : args) pointers.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(pointers.size()), pointers.data());
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  record_given(app, options);
  // Before any worker thread starts, so that every thread the run makes inherits it.
  set_flush_denormal(options.flush_denormal);
  try {
    Run run(config, options, quoted_command({argv, argv + argc}), app.config_to_str(true, false));
    run.execute();
  } catch (const Error& error) {
    std::fprintf(stderr, "%s: error: %s\n", config.program.c_str(), error.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& error) {
    std::fprintf(stderr, "%s: error: %s\n", config.program.c_str(), error.what());
    return 1;
  }
  return 0;
}

}  // namespace ds::trainer
