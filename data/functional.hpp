#pragma once
// Deterministic image operations with torchvision's tensor semantics (torchvision.transforms
// .functional on a [C, H, W] tensor). Each takes u8 or f32 images [C, H, W] and returns a new
// tensor of the same dtype unless said otherwise; inputs are never modified.
#include <cstdint>
#include <vector>

#include "tensor/tensor.hpp"

namespace ds::data {

// u8 [C, H, W] (or [H, W], read as one channel) -> f32 [C, H, W] in [0, 1]: value / 255.
// As torchvision's ToTensor.
Tensor to_float_image(const Tensor& image);

// f32: (x - mean[c]) / std[c]; mean and std hold C values, or one value for every channel.
Tensor normalize(const Tensor& image, const std::vector<float>& mean,
                 const std::vector<float>& std);

// The window rows [top, top + height), columns [left, left + width). Parts outside the image
// are zero (torchvision's F.crop pads the same way), so negative corners pad the image.
Tensor crop(const Tensor& image, std::int64_t top, std::int64_t left, std::int64_t height,
            std::int64_t width);
// Zero padding on every side (torchvision's F.pad with padding_mode="constant", fill=0).
Tensor pad(const Tensor& image, std::int64_t padding);
Tensor hflip(const Tensor& image);

// Bilinear resize to exactly [height, width]: PyTorch's interpolate(mode="bilinear",
// align_corners=False, antialias=False), computed in f32. A u8 image is resized as f32 and
// rounded half to even, as torchvision's tensor resize. Downscaling by much more than 2 aliases
// (no antialiasing, unlike PIL's resize).
Tensor resize(const Tensor& image, std::int64_t height, std::int64_t width);
// Resizes so that the shorter side becomes `size`, keeping the aspect ratio as torchvision's
// Resize(int): the longer side becomes floor(size * long / short).
Tensor resize_shorter(const Tensor& image, std::int64_t size);
// The centred [height, width] window; the top-left corner is rounded half to even as
// torchvision's F.center_crop, and a window larger than the image pads it with zeros.
Tensor center_crop(const Tensor& image, std::int64_t height, std::int64_t width);
// crop then resize, as torchvision's F.resized_crop.
Tensor resized_crop(const Tensor& image, std::int64_t top, std::int64_t left, std::int64_t height,
                    std::int64_t width, std::int64_t out_height, std::int64_t out_width);

}  // namespace ds::data
