#pragma once
// Error checks, the current device, and the one stream and cuBLAS handle per device that every
// kernel and copy of the back-end is queued on. One stream keeps the caching allocator simple:
// a block freed by the host can be reused at once because later work on the same stream runs
// after the work that still reads it.
#include <cublas_v2.h>

#include "cuda/check.hpp"

namespace ds::cuda {

inline constexpr int kMaxDevices = 16;

void check(cublasStatus_t status, const char* what);

// Makes `device` current for this thread and returns its stream.
cudaStream_t use_device(int device);
// The cuBLAS handle of `device`, bound to its stream (makes the device current).
cublasHandle_t blas_handle(int device);

}  // namespace ds::cuda
