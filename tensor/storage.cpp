#include "tensor/storage.hpp"

#include "tensor/backend.hpp"

namespace ds {

Storage::Storage(std::size_t nbytes, Device device) : block_(std::make_shared<Block>()) {
  block_->data = backend_for(device).allocate(nbytes, device);
  block_->nbytes = nbytes;
  block_->device = device;
}

Storage::Storage(std::shared_ptr<void> data, std::size_t nbytes, Device device)
    : block_(std::make_shared<Block>()) {
  block_->data = std::move(data);
  block_->nbytes = nbytes;
  block_->device = device;
}

}  // namespace ds
