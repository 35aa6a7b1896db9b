#pragma once
// cuBLAS, opened on first use rather than linked. Loading libcublas (and the cublasLt it pulls
// in) runs static initialisers that cost about 0.36 s at every program start (on the CI machine),
// which every program of a CUDA build paid even when it never touched a GPU.
#include <cublas_v2.h>

#include <string>

namespace ds::cuda {

// The cuBLAS functions the back-end calls, resolved from the library.
struct CublasLibrary {
  std::string path;  // the file the library was loaded from
  decltype(cublasCreate_v2)* create = nullptr;
  decltype(cublasDestroy_v2)* destroy = nullptr;
  decltype(cublasSetStream_v2)* set_stream = nullptr;
  // Only formats error messages, and is missing before CUDA 11.4 update 2: may be null.
  decltype(cublasGetStatusString)* status_string = nullptr;
  // The C function; cublas_api.h also declares a C++ overload of the same name.
  using GemmStridedBatchedEx = cublasStatus_t(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                              int, int, int, const void*, const void*,
                                              cudaDataType_t, int, long long, const void*,
                                              cudaDataType_t, int, long long, const void*, void*,
                                              cudaDataType_t, int, long long, int,
                                              cublasComputeType_t, cublasGemmAlgo_t);
  GemmStridedBatchedEx* gemm_strided_batched_ex = nullptr;
};

// Opens the library on the first call (thread-safe) and keeps it open. Looks for
// libcublas.so.<major of the headers> where dlopen looks, then beside the CUDA runtime this
// program loaded. ds::Error naming the library and dlerror's reason when it cannot be loaded.
const CublasLibrary& cublas();

}  // namespace ds::cuda
