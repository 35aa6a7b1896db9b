#pragma once
// Composable, seeded transforms with torchvision's semantics. A Transform maps an image tensor
// [C, H, W] to a new one and draws any randomness from the Generator it is given, so that the
// loader can give every sample its own reproducible stream (see data/loader.hpp).
//
// Geometric transforms work on u8 and f32 images alike. The usual pipelines:
//   MNIST:    compose({to_tensor(), normalize({0.1307f}, {0.3081f})})
//   CIFAR:    compose({random_crop(32, 4), random_horizontal_flip(), to_tensor(), normalize(...)})
//   ImageNet: compose({random_resized_crop(224), random_horizontal_flip(), to_tensor(),
//                      normalize({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f})})
//   eval:     compose({resize(256), center_crop(224), to_tensor(), normalize(...)})
// Resizing a u8 image rounds to u8 (torchvision's tensor resize); put to_tensor() first to
// resize in f32. Both follow torch's bilinear interpolate without antialiasing, not PIL.
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace ds::data {

using Transform = std::function<Tensor(const Tensor& image, Generator& gen)>;

// Applies the steps in order. An empty list is the identity.
Transform compose(std::vector<Transform> steps);

// u8 [C, H, W] -> f32 in [0, 1] (torchvision's ToTensor).
Transform to_tensor();
// (x - mean) / std per channel (torchvision's Normalize); std must be non-zero.
Transform normalize(std::vector<float> mean, std::vector<float> std);
// Pads each side with `padding` zeros, then crops a uniformly placed size x size window
// (torchvision's RandomCrop(size, padding)). The padded image must be at least that large.
Transform random_crop(std::int64_t size, std::int64_t padding = 0);
// Mirrors left-right with probability p.
Transform random_horizontal_flip(double p = 0.5);
// Shorter side to `size` (torchvision's Resize(int)), bilinear.
Transform resize(std::int64_t size);
// Exactly height x width (torchvision's Resize((h, w))), bilinear.
Transform resize(std::int64_t height, std::int64_t width);
Transform center_crop(std::int64_t size);

struct CropBox {
  std::int64_t top = 0;
  std::int64_t left = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
};

struct RandomResizedCropOptions {
  std::pair<double, double> scale{0.08, 1.0};         // area fraction range
  std::pair<double, double> ratio{3.0 / 4, 4.0 / 3};  // width / height range (log-uniform)
};

// torchvision's RandomResizedCrop.get_params: up to ten tries at a random area and log-uniform
// aspect ratio, else the central crop with the ratio clamped into range.
CropBox random_resized_crop_box(std::int64_t height, std::int64_t width,
                                const RandomResizedCropOptions& options, Generator& gen);
// A random box from random_resized_crop_box, resized to size x size (bilinear).
Transform random_resized_crop(std::int64_t size, RandomResizedCropOptions options = {});

}  // namespace ds::data
