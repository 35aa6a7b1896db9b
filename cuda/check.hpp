#pragma once
// CUDA error checks that throw ds::Error carrying the CUDA message.
#include <cuda_runtime_api.h>

namespace ds::cuda {

// Throws ds::Error "<what>: <CUDA message> (<error name>)" unless status is cudaSuccess.
void check(cudaError_t status, const char* what);
// Called after every kernel launch: reports a bad launch configuration at once, and an
// earlier asynchronous fault at the first launch after it.
void check_launch(const char* kernel);

}  // namespace ds::cuda
