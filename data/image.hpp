#pragma once
// Image decoding (JPEG, PNG, BMP) with stb_image. Grey and grey+alpha images are replicated to
// RGB and RGBA loses its alpha channel (as PIL's convert("RGB")), so every image comes out RGB.
#include <string>
#include <string_view>

#include "tensor/tensor.hpp"

namespace ds::data {

// Images with more pixels than this are refused rather than decoded: a corrupt header could
// otherwise ask for gigabytes.
inline constexpr long long kMaxImagePixels = 1LL << 26;

// Decodes to u8 [3, H, W]. Throws, naming `name`, on an empty, corrupt, truncated or
// unsupported image and on one larger than kMaxImagePixels.
Tensor decode_image(std::string_view bytes, const std::string& name);
Tensor read_image(const std::string& path);

// Encodes u8 [C, H, W] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; JPEG drops alpha) as a JPEG file
// of the given quality (1-100) or as PNG; for test fixtures and benchmarks that need image files.
void write_jpeg(const std::string& path, const Tensor& image, int quality = 90);
void write_png(const std::string& path, const Tensor& image);

}  // namespace ds::data
