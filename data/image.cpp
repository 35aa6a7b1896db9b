#include "data/image.hpp"

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "data/file_bytes.hpp"
#include "tensor/error.hpp"

// Private copies of stb: static linkage keeps them from clashing with a program that compiles
// its own, and only the formats we promise are compiled in (less decoder surface to trust).
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS (1 << 16)
#include <stb/stb_image.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace ds::data {
namespace {

constexpr int kRgb = 3;

// stb_image wants an int length; larger inputs are no image it could read anyway.
int checked_length(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) fail(name, ": cannot decode image: empty file");
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    fail(name, ": cannot decode image: file of ", bytes.size(), " bytes is too large");
  }
  return static_cast<int>(bytes.size());
}

// stb_image_write writes interleaved pixels: [C, H, W] -> [H, W, C].
std::vector<std::uint8_t> interleave(const Tensor& image, const std::string& path) {
  if (image.dtype() != DType::u8 || image.dim() != 3 || image.size(0) < 1 || image.size(0) > 4) {
    fail(path, ": can only write u8 [C, H, W] images with 1 to 4 channels, got ", describe(image));
  }
  const Tensor hwc = image.permute({1, 2, 0}).contiguous();
  const std::uint8_t* data = hwc.data<std::uint8_t>();
  return std::vector<std::uint8_t>(data, data + hwc.numel());
}

// stb_image 2.27 (Debian 12's) trusts the symbol counts of a JPEG Huffman table: a table of
// more than 256 symbols overruns its arrays (found by fuzz_image; stb 2.28 checks it). This walks
// the JPEG's segments as stb does and reports such a table before stb sees it. Entropy-coded
// data cannot hold an unescaped 0xFF, so the byte scan between segments finds every marker.
bool has_oversized_huffman_table(std::string_view bytes) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  if (n < 2 || b[0] != 0xFF || b[1] != 0xD8) return false;
  const auto byte_at = [&](std::size_t at) -> std::size_t { return at < n ? b[at] : 0; };
  std::size_t pos = 2;
  while (pos + 1 < n) {
    const unsigned char marker = b[pos + 1];
    if (b[pos] != 0xFF || marker == 0xFF) {
      ++pos;
      continue;
    }
    // Markers without a length: stuffed zero, TEM, restarts, SOI and EOI.
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9)) {
      pos += 2;
      continue;
    }
    const std::size_t length = (byte_at(pos + 2) << 8) | byte_at(pos + 3);
    if (marker == 0xC4) {
      // As stb reads a DHT segment: tables one after another while the length lasts.
      std::int64_t remaining = static_cast<std::int64_t>(length) - 2;
      std::size_t table = pos + 4;
      while (remaining > 0 && table < n) {
        std::size_t symbols = 0;
        for (std::size_t i = 1; i <= 16; ++i) symbols += byte_at(table + i);
        if (symbols > 256) return true;
        remaining -= static_cast<std::int64_t>(17 + symbols);
        table += 17 + symbols;
      }
    }
    pos += 2 + length;
  }
  return false;
}

}  // namespace

Tensor decode_image(std::string_view bytes, const std::string& name) {
  const int length = checked_length(bytes, name);
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  int width = 0;
  int height = 0;
  int channels = 0;
  if (has_oversized_huffman_table(bytes)) {
    fail(name, ": cannot decode image: corrupt JPEG (a Huffman table has more than 256 codes)");
  }
  if (!stbi_info_from_memory(data, length, &width, &height, &channels)) {
    fail(name, ": cannot decode image: ", stbi_failure_reason());
  }
  if (static_cast<long long>(width) * height > kMaxImagePixels) {
    fail(name, ": cannot decode image: ", width, "x", height, " is more than ", kMaxImagePixels,
         " pixels");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, length, &width, &height, &channels, kRgb), stbi_image_free);
  if (!pixels) fail(name, ": cannot decode image: ", stbi_failure_reason());
  const std::int64_t plane = static_cast<std::int64_t>(width) * height;
  Tensor out = Tensor::empty({kRgb, height, width}, DType::u8);
  std::uint8_t* dst = out.data<std::uint8_t>();
  const stbi_uc* src = pixels.get();
  for (std::int64_t p = 0; p < plane; ++p) {
    dst[p] = src[kRgb * p];
    dst[plane + p] = src[kRgb * p + 1];
    dst[2 * plane + p] = src[kRgb * p + 2];
  }
  return out;
}

Tensor read_image(const std::string& path) { return decode_image(read_file(path), path); }

void write_jpeg(const std::string& path, const Tensor& image, int quality) {
  const std::vector<std::uint8_t> pixels = interleave(image, path);
  const int channels = static_cast<int>(image.size(0));
  if (!stbi_write_jpg(path.c_str(), static_cast<int>(image.size(2)),
                      static_cast<int>(image.size(1)), channels, pixels.data(), quality)) {
    fail(path, ": cannot write JPEG file");
  }
}

void write_png(const std::string& path, const Tensor& image) {
  const std::vector<std::uint8_t> pixels = interleave(image, path);
  const int channels = static_cast<int>(image.size(0));
  const int width = static_cast<int>(image.size(2));
  if (!stbi_write_png(path.c_str(), width, static_cast<int>(image.size(1)), channels, pixels.data(),
                      width * channels)) {
    fail(path, ": cannot write PNG file");
  }
}

}  // namespace ds::data
