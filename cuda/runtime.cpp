#include "cuda/runtime.hpp"

#include <array>
#include <atomic>
#include <mutex>

#include "cuda/cublas_library.hpp"
#include "cuda/cuda.hpp"
#include "tensor/error.hpp"

namespace ds::cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    fail(what, ": ", cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(what, ": ", cublas().status_string(status), " (cuBLAS status ", static_cast<int>(status),
         ")");
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
    check(library.create(&d.blas), "cublasCreate");
    check(library.set_stream(d.blas, d.stream), "cublasSetStream");
  });
  return d.blas;
}

}  // namespace ds::cuda
