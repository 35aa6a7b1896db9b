// Trains and evaluates the original DeepShift MNIST models (--type linear|conv) on MNIST-format
// data such as Fashion-MNIST from Debian's dataset-fashion-mnist, with the options of the
// original mnist.py. `mnist --help` lists them; docs/trainers.md explains them.
#include "data/mnist.hpp"

#include "examples/common/trainer.hpp"

namespace {

ds::trainer::TrainerConfig mnist_config() {
  ds::trainer::TrainerConfig config;
  config.program = "mnist";
  config.description = "DeepShift MNIST trainer: simple FC or conv model, FP32, Q or PS";
  ds::trainer::TrainOptions& o = config.defaults.options;
  o.dataset = "mnist";
  o.arch = "linear";
  o.data_dir = "/usr/share/datasets/fashion-mnist";
  o.batch_size = 64;
  o.test_batch_size = 1000;
  o.epochs = 10;
  o.optimizer = "sgd";
  o.lr = 0.01;
  o.momentum = 0.0;
  o.log_interval = 10;
  o.workers = 1;
  config.defaults.archs = {"linear", "conv"};
  config.defaults.arch_is_type = true;
  config.input_shape = {1, 28, 28};
  config.arch_label = [](const std::string& type) { return "simple_" + type; };
  config.load_data = [](const ds::trainer::TrainOptions& options, bool need_train) {
    // The original normalises with the MNIST statistics, also for other MNIST-format data.
    const auto transform =
        ds::data::compose({ds::data::to_tensor(), ds::data::normalize({0.1307f}, {0.3081f})});
    ds::trainer::DataSpec spec;
    spec.test = std::make_shared<ds::data::TensorDataset>(
        ds::data::load_mnist(options.data_dir, ds::data::Split::test));
    if (need_train) {
      spec.train = std::make_shared<ds::data::TensorDataset>(
          ds::data::load_mnist(options.data_dir, ds::data::Split::train));
    }
    spec.train_transform = transform;
    spec.test_transform = transform;
    return spec;
  };
  return config;
}

}  // namespace

int main(int argc, char** argv) { return ds::trainer::trainer_main(argc, argv, mnist_config()); }
