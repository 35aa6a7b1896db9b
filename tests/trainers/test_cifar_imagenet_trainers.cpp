// The cifar10 and imagenet trainers as a user runs them, on tiny data sets the test writes: the
// CIFAR-10 binary files and image-folder trees. One epoch trains and saves a model, -e on it
// prints exactly the final accuracy, and a data folder of the wrong shape fails clearly.
#include <catch2/catch.hpp>
#include <filesystem>

#include "data/fixtures.hpp"
#include "data/image.hpp"
#include "run_program.hpp"

namespace {

using ds::test::line_after;
using ds::test::run_program;
namespace fs = std::filesystem;

const std::string kCifar10 = DS_CIFAR10_PROGRAM;
const std::string kImagenet = DS_IMAGENET_PROGRAM;
const std::string kFinal = "Final test set (rounded weights): ";

// The official binary layout: five training files and the test file, `records` each, labels
// cycling through the ten classes.
void write_cifar_binaries(const fs::path& dir, std::uint8_t records) {
  std::vector<std::vector<std::uint8_t>> labels;
  for (std::uint8_t i = 0; i < records; ++i) labels.push_back({static_cast<std::uint8_t>(i % 10)});
  const std::string bytes = ds::test::cifar_bytes(labels);
  fs::create_directories(dir);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
    ds::test::write_bytes((dir / name).string(), bytes);
}

// split/<class>/<n>.png for two classes: class 0 dark, class 1 bright, with some texture.
void write_image_split(const fs::path& split, std::int64_t size, int per_class) {
  for (int label = 0; label < 2; ++label) {
    const fs::path folder = split / (label == 0 ? "cat" : "dog");
    fs::create_directories(folder);
    for (int n = 0; n < per_class; ++n) {
      std::vector<std::uint8_t> pixels(static_cast<std::size_t>(3 * size * size));
      for (std::size_t i = 0; i < pixels.size(); ++i)
        pixels[i] = static_cast<std::uint8_t>(label * 150 + (i * 7 + n * 13) % 100);
      ds::data::write_png((folder / (std::to_string(n) + ".png")).string(),
                          ds::Tensor::from_vector(pixels, {3, size, size}));
    }
  }
}

fs::path only_weights_file(const fs::path& models) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(models))
    if (entry.path().filename() == "weights.safetensors") found.push_back(entry.path());
  REQUIRE(found.size() == 1);
  return found.front();
}

// Trains with `data` (how the program is told where the data is) and `training` into
// models/ under `dir`, then evaluates the saved weights with -e: the evaluation prints the
// training run's final accuracy line exactly.
void require_train_then_evaluate(const std::string& program, const ds::test::TempDir& dir,
                                 const std::vector<std::string>& data,
                                 const std::vector<std::string>& training) {
  const fs::path models = dir.path() / "models";
  std::vector<std::string> common = data;
  common.insert(common.end(), {"--models-dir", models.string()});
  std::vector<std::string> train_args = common;
  train_args.insert(train_args.end(), training.begin(), training.end());
  train_args.insert(train_args.end(), {"--epochs", "1", "--print-weights", "false"});
  const auto trained = run_program(program, train_args);
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const std::string final_line = line_after(trained.output, kFinal);
  REQUIRE_FALSE(final_line.empty());
  std::vector<std::string> eval_args = common;
  eval_args.insert(eval_args.end(), {"-e", "--model", only_weights_file(models).string()});
  const auto evaluated = run_program(program, eval_args);
  INFO(evaluated.output);
  REQUIRE(evaluated.status == 0);
  CHECK(line_after(evaluated.output, "Test set: ") == final_line);
}

}  // namespace

TEST_CASE("cifar10 trains a shift resnet20 on the binary files and evaluates it", "[trainers]") {
  ds::test::TempDir dir;
  write_cifar_binaries(dir.path() / "cifar-10-batches-bin", 12);
  require_train_then_evaluate(kCifar10, dir, {"--data-dir", dir.path().string()},
                              {"-a", "resnet20", "-s", "1000", "-st", "PS", "-b", "16",
                               "--test-batch-size", "20", "-j", "0"});
}

TEST_CASE("cifar10 reads an image-folder tree such as the CIFAR-10 JPEGs", "[trainers]") {
  ds::test::TempDir dir;
  write_image_split(dir.path() / "train", 32, 6);
  write_image_split(dir.path() / "test", 32, 3);
  require_train_then_evaluate(
      kCifar10, dir, {"--data-dir", dir.path().string()},
      {"-a", "resnet20", "-s", "2", "-st", "Q", "-b", "4", "--test-batch-size", "6", "-j", "2"});
}

TEST_CASE("imagenet trains on the train/val folder layout and evaluates", "[trainers]") {
  ds::test::TempDir dir;
  write_image_split(dir.path() / "train", 40, 2);
  write_image_split(dir.path() / "val", 40, 1);
  // The data folder is positional, as in the original's imagenet.py.
  require_train_then_evaluate(
      kImagenet, dir, {dir.path().string()},
      {"-a", "resnet18", "-s", "3", "-st", "PS", "-b", "2", "--test-batch-size", "2", "-j", "0"});
}

TEST_CASE("cifar10 and imagenet refuse data folders of the wrong shape", "[trainers]") {
  ds::test::TempDir dir;
  fs::create_directories(dir.path() / "empty");
  const auto cifar =
      run_program(kCifar10, {"--data-dir", (dir.path() / "missing").string(), "--epochs", "1"});
  CHECK(cifar.status != 0);
  CHECK(cifar.output.find("missing") != std::string::npos);
  CHECK(cifar.output.find("is not a folder") != std::string::npos);
  const auto imagenet = run_program(kImagenet, {(dir.path() / "empty").string(), "--epochs", "1"});
  CHECK(imagenet.status != 0);
  CHECK(imagenet.output.find("has no val/ sub-folder") != std::string::npos);
  write_cifar_binaries(dir.path() / "truncated", 3);
  ds::test::write_bytes((dir.path() / "truncated" / "test_batch.bin").string(), "short");
  const auto truncated =
      run_program(kCifar10, {"--data-dir", (dir.path() / "truncated").string(), "--epochs", "1"});
  CHECK(truncated.status != 0);
  CHECK(truncated.output.find("test_batch.bin") != std::string::npos);
}

TEST_CASE("image folders whose splits disagree, or do not fit the model, fail before training",
          "[trainers]") {
  ds::test::TempDir dir;
  const auto run = [&](const std::string& data) {
    return run_program(
        kCifar10, {"--data-dir", (dir.path() / data).string(), "--models-dir",
                   (dir.path() / "models").string(), "-a", "resnet20", "--epochs", "1", "-j", "0"});
  };
  // Each split numbers its own class folders: a class missing from one shifts the labels.
  write_image_split(dir.path() / "classes" / "train", 32, 1);
  write_image_split(dir.path() / "classes" / "test", 32, 1);
  fs::remove_all(dir.path() / "classes" / "train" / "cat");
  fs::create_directories(dir.path() / "classes" / "train" / "bird");
  fs::copy(dir.path() / "classes" / "test" / "cat" / "0.png",
           dir.path() / "classes" / "train" / "bird" / "0.png");
  for (const char* limit : {"0", "1"}) {  // limited splits are subsets of the folders
    const auto classes =
        run_program(kCifar10, {"--data-dir", (dir.path() / "classes").string(), "--models-dir",
                               (dir.path() / "models").string(), "-a", "resnet20", "--epochs", "1",
                               "-j", "0", "--test-limit", limit});
    INFO(classes.output);
    CHECK(classes.status != 0);
    CHECK(classes.output.find("different classes") != std::string::npos);
    CHECK(classes.output.find("'bird' against 'cat'") != std::string::npos);
  }
  // 64x64 images: the test split (no crop) would reach the model at the wrong size.
  write_image_split(dir.path() / "large" / "train", 64, 1);
  write_image_split(dir.path() / "large" / "test", 64, 1);
  const auto large = run("large");
  INFO(large.output);
  CHECK(large.status != 0);
  CHECK(large.output.find("is [3, 64, 64]; the model takes [3, 32, 32]") != std::string::npos);
  // More class folders than the model has outputs.
  for (const char* split : {"train", "test"}) {
    for (int c = 0; c < 11; ++c) {
      const fs::path folder = dir.path() / "many" / split / ("class" + std::to_string(c));
      fs::create_directories(folder);
      fs::copy(dir.path() / "classes" / "test" / "cat" / "0.png", folder / "0.png");
    }
  }
  const auto many = run("many");
  INFO(many.output);
  CHECK(many.status != 0);
  CHECK(many.output.find("has 11 classes; the cifar10 models have 10 outputs") !=
        std::string::npos);
  // Nothing was written for runs that could not start.
  CHECK_FALSE(fs::exists(dir.path() / "models"));
}
