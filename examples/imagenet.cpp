// Trains and evaluates DeepShift ImageNet models (-a resnet18, resnet50, vgg16, alexnet...)
// with the original imagenet.py's options and recipe: SGD with momentum 0.9 and weight decay
// 1e-4, StepLR every 30 epochs, RandomResizedCrop(224) and flips for training, Resize(256) and
// CenterCrop(224) for validation. The data folder holds train/<class>/* and val/<class>/*.
#include <filesystem>

#include "data/image_folder.hpp"
#include "examples/common/trainer.hpp"
#include "nn/models/zoo.hpp"

namespace {

namespace fs = std::filesystem;

ds::trainer::DataSpec load_imagenet(const ds::trainer::TrainOptions& options, bool need_train) {
  const fs::path dir = options.data_dir;
  if (!fs::is_directory(dir / "val")) {
    ds::fail("data folder ", dir.string(),
             " has no val/ sub-folder (expected the ImageNet layout train/<class>/*, "
             "val/<class>/*)");
  }
  ds::trainer::DataSpec spec;
  spec.test = std::make_shared<ds::data::ImageFolder>((dir / "val").string());
  if (need_train) spec.train = std::make_shared<ds::data::ImageFolder>((dir / "train").string());
  const auto normalize = ds::data::normalize({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
  spec.train_transform =
      ds::data::compose({ds::data::random_resized_crop(224), ds::data::random_horizontal_flip(),
                         ds::data::to_tensor(), normalize});
  spec.test_transform = ds::data::compose(
      {ds::data::resize(256), ds::data::center_crop(224), ds::data::to_tensor(), normalize});
  return spec;
}

ds::trainer::TrainerConfig imagenet_config() {
  ds::trainer::TrainerConfig config;
  config.program = "imagenet";
  config.description = "DeepShift ImageNet trainer: FP32, DeepShift-Q or DeepShift-PS";
  ds::trainer::TrainOptions& o = config.defaults.options;
  o.dataset = "imagenet";
  o.arch = "resnet18";
  o.data_dir = "";
  o.batch_size = 256;
  o.test_batch_size = 256;
  o.epochs = 90;
  o.optimizer = "sgd";
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.lr_schedule = "true";
  o.lr_step_size = 30;
  o.log_interval = 10;
  o.workers = 4;
  config.defaults.archs = ds::nn::models::list_models("imagenet");
  config.defaults.print_freq_name = "-p,--print-freq";
  config.defaults.data_positional = true;
  config.input_shape = {3, 224, 224};
  config.arch_label = [](const std::string& arch) { return arch; };
  config.load_data = load_imagenet;
  return config;
}

}  // namespace

int main(int argc, char** argv) { return ds::trainer::trainer_main(argc, argv, imagenet_config()); }
