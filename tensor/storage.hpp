#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/device.hpp"

namespace ds {

// A reference-counted block of device memory shared by a tensor and all of its views.
// The version counter lets autograd notice when a tensor saved for backward was modified
// in place afterwards (which would silently corrupt gradients).
class Storage {
 public:
  Storage() = default;
  Storage(std::size_t nbytes, Device device);  // allocates through the device's backend
  // Adopts memory owned elsewhere (the deleter in `data` decides how it is freed).
  Storage(std::shared_ptr<void> data, std::size_t nbytes, Device device);

  void* data() const { return block_ ? block_->data.get() : nullptr; }
  std::size_t nbytes() const { return block_ ? block_->nbytes : 0; }
  Device device() const { return block_ ? block_->device : Device::cpu(); }
  std::uint64_t version() const { return block_ ? block_->version.load() : 0; }
  void bump_version() const {
    if (block_) ++block_->version;
  }
  bool same_block(const Storage& other) const { return block_ == other.block_; }
  // No other storage (no other tensor or view) refers to this block.
  bool sole_owner() const { return block_.use_count() == 1; }

 private:
  struct Block {
    std::shared_ptr<void> data;
    std::size_t nbytes = 0;
    Device device;
    std::atomic<std::uint64_t> version{0};
  };
  std::shared_ptr<Block> block_;
};

}  // namespace ds
