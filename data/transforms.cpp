#include "data/transforms.hpp"

#include <algorithm>
#include <cmath>

#include "data/functional.hpp"
#include "tensor/error.hpp"

namespace ds::data {
namespace {

void check_size(std::int64_t size, const char* transform) {
  if (size <= 0) fail(transform, ": size must be positive, got ", size);
}

void check_range(const std::pair<double, double>& range, const char* what) {
  if (!(range.first > 0) || !(range.first <= range.second) || !std::isfinite(range.second)) {
    fail("random_resized_crop: ", what, " range must satisfy 0 < low <= high, got (", range.first,
         ", ", range.second, ")");
  }
}

}  // namespace

Transform compose(std::vector<Transform> steps) {
  for (const auto& step : steps) {
    if (!step) fail("compose: a step is an empty Transform");
  }
  return [steps = std::move(steps)](const Tensor& image, Generator& gen) {
    Tensor current = image;
    for (const auto& step : steps) current = step(current, gen);
    return current;
  };
}

Transform to_tensor() {
  return [](const Tensor& image, Generator&) { return to_float_image(image); };
}

Transform normalize(std::vector<float> mean, std::vector<float> std) {
  if (mean.empty() || std.empty()) fail("normalize: mean and std must not be empty");
  for (float s : std) {
    if (s == 0.0f || !std::isfinite(s)) fail("normalize: std must be finite and non-zero, got ", s);
  }
  return [mean = std::move(mean), std = std::move(std)](const Tensor& image, Generator&) {
    return data::normalize(image, mean, std);
  };
}

Transform random_crop(std::int64_t size, std::int64_t padding) {
  check_size(size, "random_crop");
  if (padding < 0) fail("random_crop: padding must be non-negative, got ", padding);
  return [size, padding](const Tensor& image, Generator& gen) {
    if (image.dim() != 3) fail("random_crop: expects an image [C, H, W], got ", describe(image));
    const std::int64_t height = image.size(1) + 2 * padding;
    const std::int64_t width = image.size(2) + 2 * padding;
    if (height < size || width < size) {
      fail("random_crop: crop ", size, "x", size, " is larger than the padded image ", height, "x",
           width);
    }
    const std::int64_t top = gen.below(height - size + 1);
    const std::int64_t left = gen.below(width - size + 1);
    return crop(image, top - padding, left - padding, size, size);
  };
}

Transform random_horizontal_flip(double p) {
  if (!(p >= 0.0 && p <= 1.0)) fail("random_horizontal_flip: p must be in [0, 1], got ", p);
  return
      [p](const Tensor& image, Generator& gen) { return gen.uniform() < p ? hflip(image) : image; };
}

Transform resize(std::int64_t size) {
  check_size(size, "resize");
  return [size](const Tensor& image, Generator&) { return resize_shorter(image, size); };
}

Transform resize(std::int64_t height, std::int64_t width) {
  check_size(height, "resize");
  check_size(width, "resize");
  return [height, width](const Tensor& image, Generator&) {
    return data::resize(image, height, width);
  };
}

Transform center_crop(std::int64_t size) {
  check_size(size, "center_crop");
  return [size](const Tensor& image, Generator&) { return data::center_crop(image, size, size); };
}

CropBox random_resized_crop_box(std::int64_t height, std::int64_t width,
                                const RandomResizedCropOptions& options, Generator& gen) {
  if (height <= 0 || width <= 0) {
    fail("random_resized_crop: cannot crop an empty image ", height, "x", width);
  }
  const double area = static_cast<double>(height * width);
  const double log_low = std::log(options.ratio.first);
  const double log_high = std::log(options.ratio.second);
  const auto uniform = [&gen](double low, double high) {
    return low + (high - low) * gen.uniform();
  };
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(options.scale.first, options.scale.second);
    const double aspect = std::exp(uniform(log_low, log_high));
    // Python's round(): half to even, as nearbyint.
    const auto w = static_cast<std::int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
    const auto h = static_cast<std::int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const std::int64_t top = gen.below(height - h + 1);
      const std::int64_t left = gen.below(width - w + 1);
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  std::int64_t w = width;
  std::int64_t h = height;
  if (in_ratio < options.ratio.first) {
    h = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(w) / options.ratio.first));
  } else if (in_ratio > options.ratio.second) {
    w = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(h) * options.ratio.second));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

Transform random_resized_crop(std::int64_t size, RandomResizedCropOptions options) {
  check_size(size, "random_resized_crop");
  check_range(options.scale, "scale");
  check_range(options.ratio, "ratio");
  return [size, options](const Tensor& image, Generator& gen) {
    if (image.dim() != 3) {
      fail("random_resized_crop: expects an image [C, H, W], got ", describe(image));
    }
    const CropBox box = random_resized_crop_box(image.size(1), image.size(2), options, gen);
    return resized_crop(image, box.top, box.left, box.height, box.width, size, size);
  };
}

}  // namespace ds::data
