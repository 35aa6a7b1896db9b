#pragma once
// Device memory through one BlockCache per device (see block_cache.hpp).
#include <cstddef>
#include <memory>

#include "cuda/block_cache.hpp"

namespace ds::cuda {

// Throws ds::Error naming the device, the request and the memory held when the device is full.
std::shared_ptr<void> allocate_on(int device, std::size_t nbytes);
BlockCache& block_cache(int device);

}  // namespace ds::cuda
