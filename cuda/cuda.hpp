#pragma once
// The public face of the CUDA back-end, free of CUDA headers so that any program can ask
// whether a GPU is there. Tensors reach the GPU with `tensor.to(Device::cuda())` and modules
// with `module.to(Device::cuda())`; every op then runs on the tensor's device.
//
// The back-end registers itself for DeviceKind::cuda when the shared library is loaded. A
// program linking the static library pulls the registration in by calling any function here
// (is_available() is the natural one).
#include <cstddef>
#include <string>

namespace ds::cuda {

// Number of usable devices; 0 (never an error) when there is no driver or no GPU.
int device_count();
bool is_available();

// The device this thread's ops run on (default 0): an op on a cuda:n tensor requires n to be
// current and otherwise throws ds::Error; a tensor's memory is allocated on its own device,
// whichever is current.
void set_device(int device);
int current_device();

// Waits until every queued kernel and copy on the device has finished (for timing).
void synchronize(int device = 0);
// The back-end's kernel launches so far on all devices, cuBLAS products counted as one each
// (for profiling: launches per training step, and the host time each one costs).
std::size_t kernel_launches();

struct MemoryStats {
  std::size_t in_use_bytes = 0;        // held by live tensors
  std::size_t cached_bytes = 0;        // freed by tensors, kept for reuse
  std::size_t device_allocations = 0;  // cudaMalloc calls so far
};
MemoryStats memory_stats(int device = 0);
// Returns the cached blocks of every device to the driver.
void empty_cache();

// The file cuBLAS was loaded from. cuBLAS is opened on first use, not at program start; this
// opens it if it is not open yet. ds::Error naming the library when it cannot be loaded.
std::string blas_library_path();

// Lets cuBLAS use TF32 tensor cores for f32 products (about 10 mantissa bits, as PyTorch's
// allow_tf32). Off by default so that f32 results match the CPU to f32 rounding.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace ds::cuda
