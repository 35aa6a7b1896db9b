#include "cuda/cuda.hpp"

#include <cuda_runtime_api.h>

#include "cuda/allocator.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/runtime.hpp"
#include "cuda/shift.hpp"
#include "tensor/error.hpp"

namespace ds::cuda {

namespace {

thread_local int current = 0;

Backend& cuda_backend() {
  static CudaBackend backend;
  return backend;
}

// Installs the back-end and the shift layers' weight uploader when the library is loaded. It
// only records pointers: the driver is first touched when a tensor is put on the GPU, so loading
// the library costs nothing on a machine without one.
[[maybe_unused]] const bool registered = [] {
  register_backend(DeviceKind::cuda, &cuda_backend());
  shift::register_weight_uploader(DeviceKind::cuda, upload_shift_weights);
  return true;
}();

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device is an answer here, not a sticky error
    return 0;
  }
  return count;
}

bool is_available() { return device_count() > 0; }

void set_device(int device) {
  use_device(device);  // validates the index
  current = device;
}

int current_device() { return current; }

void synchronize(int device) {
  check(cudaStreamSynchronize(use_device(device)), "cuda::synchronize");
}

MemoryStats memory_stats(int device) {
  const BlockCache& cache = block_cache(device);
  return {cache.in_use_bytes(), cache.cached_bytes(), cache.raw_allocations()};
}

void empty_cache() {
  for (int d = 0; d < device_count() && d < kMaxDevices; ++d) block_cache(d).release_cached();
}

}  // namespace ds::cuda
