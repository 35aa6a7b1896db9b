// libFuzzer target: the CIFAR-10 and CIFAR-100 record parser (tools/fuzz_data.sh runs it).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/cifar.hpp"
#include "tensor/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (auto format : {ds::data::CifarFormat::cifar10, ds::data::CifarFormat::cifar100}) {
    try {
      const ds::data::CifarRecords records = ds::data::parse_cifar(bytes, "fuzz", format);
      const auto* labels = records.labels.data<std::int32_t>();
      for (std::int64_t i = 0; i < records.labels.numel(); ++i) {
        if (labels[i] < 0 || labels[i] >= 100) __builtin_trap();
      }
    } catch (const ds::Error&) {
      // refused with a message: the expected outcome for bad input
    }
  }
  return 0;
}
