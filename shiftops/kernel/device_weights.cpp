#include "shiftops/device_weights.hpp"

#include <map>
#include <mutex>

#include "tensor/error.hpp"

namespace ds::shift {

namespace {

struct Uploaders {
  std::mutex mutex;
  std::map<DeviceKind, WeightUploader> by_kind;
};

// Constructed on first use: device modules register from their own static initialisers.
Uploaders& uploaders() {
  static Uploaders registry;
  return registry;
}

}  // namespace

WeightUploader register_weight_uploader(DeviceKind kind, WeightUploader uploader) {
  Uploaders& registry = uploaders();
  std::lock_guard<std::mutex> lock(registry.mutex);
  WeightUploader& slot = registry.by_kind[kind];
  WeightUploader previous = std::move(slot);
  slot = std::move(uploader);
  return previous;
}

std::shared_ptr<const DeviceWeights> upload_weights(const PackedWeights& weights, Device device,
                                                    const char* op) {
  WeightUploader uploader;
  {
    Uploaders& registry = uploaders();
    std::lock_guard<std::mutex> lock(registry.mutex);
    const auto found = registry.by_kind.find(device.kind);
    if (found != registry.by_kind.end()) uploader = found->second;
  }
  if (!uploader) fail(op, ": this build has no shift kernels for ", device.str(), " tensors");
  return uploader(weights, device);
}

}  // namespace ds::shift
