// Trains and evaluates DeepShift CIFAR-10 models (-a resnet20, resnet18, mobilenetv2, vgg16...)
// with the original cifar10.py's options and recipe: SGD with momentum 0.9 and weight decay
// 1e-4, MultiStepLR at epochs 80, 120, 160 and 180, random crop with 4-pixel padding and
// horizontal flips. Reads the official binary files or an image-folder tree with train/ and
// test/ (or val/) sub-folders, such as the CIFAR-10 JPEGs.
#include <filesystem>

#include "data/cifar.hpp"
#include "data/image_folder.hpp"
#include "examples/common/trainer.hpp"
#include "nn/models/zoo.hpp"

namespace {

namespace fs = std::filesystem;

bool has_binary_files(const fs::path& dir) {
  return fs::exists(dir / "data_batch_1.bin") || fs::exists(dir / "cifar-10-batches-bin");
}

// The image-folder split: train/, and test/ or val/ for evaluation.
std::shared_ptr<const ds::data::Dataset> image_folder(const fs::path& dir, bool train) {
  if (train) return std::make_shared<ds::data::ImageFolder>((dir / "train").string());
  const fs::path test = fs::exists(dir / "test") ? dir / "test" : dir / "val";
  return std::make_shared<ds::data::ImageFolder>(test.string());
}

ds::trainer::DataSpec load_cifar10(const ds::trainer::TrainOptions& options, bool need_train) {
  const fs::path dir = options.data_dir;
  if (!fs::is_directory(dir)) {
    ds::fail("--data-dir ", dir.string(),
             " is not a folder (give the CIFAR-10 binary files or an image folder with train/ "
             "and test/)");
  }
  ds::trainer::DataSpec spec;
  if (has_binary_files(dir)) {
    spec.test = std::make_shared<ds::data::TensorDataset>(
        ds::data::load_cifar10(dir.string(), ds::data::Split::test));
    if (need_train) {
      spec.train = std::make_shared<ds::data::TensorDataset>(
          ds::data::load_cifar10(dir.string(), ds::data::Split::train));
    }
  } else {
    spec.test = image_folder(dir, false);
    if (need_train) spec.train = image_folder(dir, true);
  }
  const auto normalize =
      ds::data::normalize({0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f});
  spec.train_transform =
      ds::data::compose({ds::data::random_crop(32, 4), ds::data::random_horizontal_flip(),
                         ds::data::to_tensor(), normalize});
  spec.test_transform = ds::data::compose({ds::data::to_tensor(), normalize});
  return spec;
}

ds::trainer::TrainerConfig cifar10_config() {
  ds::trainer::TrainerConfig config;
  config.program = "cifar10";
  config.description = "DeepShift CIFAR-10 trainer: FP32, DeepShift-Q or DeepShift-PS";
  ds::trainer::TrainOptions& o = config.defaults.options;
  o.dataset = "cifar10";
  o.arch = "resnet18";
  o.data_dir = "data/cifar10";
  o.batch_size = 128;
  o.test_batch_size = 1000;
  o.epochs = 200;
  o.optimizer = "sgd";
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.lr_schedule = "true";
  o.log_interval = 50;
  o.workers = 4;
  config.defaults.archs = ds::nn::models::list_models("cifar10");
  config.defaults.print_freq_name = "-p,--print-freq";
  config.input_shape = {3, 32, 32};
  config.arch_label = [](const std::string& arch) { return arch; };
  config.load_data = load_cifar10;
  return config;
}

}  // namespace

int main(int argc, char** argv) { return ds::trainer::trainer_main(argc, argv, cifar10_config()); }
