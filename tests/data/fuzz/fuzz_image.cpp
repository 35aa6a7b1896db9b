// libFuzzer target: image decoding (JPEG, PNG, BMP through stb_image), the path every
// ImageFolder sample takes (tools/fuzz_data.sh runs it).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/image.hpp"
#include "tensor/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const ds::Tensor image =
        ds::data::decode_image(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    if (image.dim() != 3 || image.size(0) != 3) __builtin_trap();
    const auto* pixels = image.data<std::uint8_t>();
    unsigned sum = 0;
    for (std::int64_t i = 0; i < image.numel(); ++i) sum += pixels[i];
    return static_cast<int>(sum & 0);
  } catch (const ds::Error&) {
    return 0;  // refused with a message: the expected outcome for bad input
  }
}
