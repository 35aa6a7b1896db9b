// libFuzzer target: the IDX parser, including gzip inflation (tools/fuzz_data.sh runs it).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/mnist.hpp"
#include "tensor/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const ds::Tensor array =
        ds::data::parse_idx(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    // Touch every element so that ASan sees any read past the array.
    const auto* bytes = array.data<std::uint8_t>();
    unsigned sum = 0;
    for (std::int64_t i = 0; i < array.numel(); ++i) sum += bytes[i];
    return static_cast<int>(sum & 0);
  } catch (const ds::Error&) {
    return 0;  // refused with a message: the expected outcome for bad input
  }
}
