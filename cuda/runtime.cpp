#include "cuda/runtime.hpp"

#include <array>
#include <atomic>
#include <mutex>

#include "cuda/allocator.hpp"
#include "cuda/cublas_library.hpp"
#include "cuda/cuda.hpp"
#include "tensor/error.hpp"

namespace ds::cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    fail(what, ": ", cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
}

void check(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const auto describe = cublas().status_string;
  fail(what, ": ", describe ? describe(status) : "error", " (cuBLAS status ",
       static_cast<int>(status), ")");
}

namespace {
std::atomic<std::size_t> launches{0};
}  // namespace

void check_launch(const char* kernel) {
  launches.fetch_add(1, std::memory_order_relaxed);
  check(cudaGetLastError(), kernel);
}

std::size_t kernel_launches() { return launches.load(std::memory_order_relaxed); }

namespace {

// The cuBLAS handle is made at the device's first product, apart from its stream: a program
// that only allocates or runs our own kernels never opens cuBLAS (cublas_library.hpp).
struct PerDevice {
  std::once_flag created, blas_created;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
};

// Never destroyed: the driver may already be unloading when static destructors run.
std::array<PerDevice, kMaxDevices>& devices() {
  static auto* all = new std::array<PerDevice, kMaxDevices>;
  return *all;
}

PerDevice& resources(int device) {
  if (device < 0 || device >= kMaxDevices)
    fail("cuda:", device, " is not a valid device index (0..", kMaxDevices - 1, ")");
  static const int count = [] {
    int n = 0;
    check(cudaGetDeviceCount(&n), "no usable CUDA device (cudaGetDeviceCount)");
    return n;
  }();
  if (device >= count)
    fail("cuda:", device, " does not exist: this machine has ", count, " CUDA device(s)");
  PerDevice& d = devices()[static_cast<std::size_t>(device)];
  check(cudaSetDevice(device), "cudaSetDevice");
  std::call_once(d.created, [&] {
    check(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  });
  return d;
}

}  // namespace

cudaStream_t use_device(int device) { return resources(device).stream; }

cublasHandle_t blas_handle(int device) {
  PerDevice& d = resources(device);
  std::call_once(d.blas_created, [&] {
    const CublasLibrary& library = cublas();
    // cuBLAS allocates its own device memory, outside our cache, which by the first product
    // may hold most of the device: on failure the cache's free blocks are released and the
    // handle is tried once more.
    cublasHandle_t handle = nullptr;
    cublasStatus_t status = library.create(&handle);
    if (status == CUBLAS_STATUS_ALLOC_FAILED) {
      block_cache(device).release_cached();
      status = library.create(&handle);
    }
    check(status, "cublasCreate");
    status = library.set_stream(handle, d.stream);
    if (status != CUBLAS_STATUS_SUCCESS) {
      library.destroy(handle);
      check(status, "cublasSetStream");
    }
    d.blas = handle;
  });
  return d.blas;
}

}  // namespace ds::cuda
