#include "cuda/cublas_library.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <type_traits>

#include "cuda/cuda.hpp"
#include "tensor/error.hpp"

namespace ds::cuda {

namespace {

// Compiles only if cublas_api.h declares a cublasGemmStridedBatchedEx of exactly this type (the
// cast is unevaluated, so nothing links against the library).
using DeclaredGemm =
    decltype(static_cast<CublasLibrary::GemmStridedBatchedEx*>(&cublasGemmStridedBatchedEx));

// The toolkit keeps cuBLAS in the same folder as the runtime: where dlopen's search does not
// reach (a toolkit outside the loader's paths), the runtime's own location does.
std::string beside_runtime(const std::string& name) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&cudaGetDeviceCount), &info) == 0 || !info.dli_fname)
    return {};
  return (std::filesystem::path(info.dli_fname).parent_path() / name).string();
}

CublasLibrary open_cublas() {
  const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  std::string path = name;
  void* library = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    std::string reasons = dlerror();
    path = beside_runtime(name);
    if (!path.empty()) library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      if (!path.empty()) reasons += "; " + std::string(dlerror());
      fail("cuBLAS: cannot load ", name, " (", reasons,
           "); install the CUDA toolkit's cuBLAS or add its folder to LD_LIBRARY_PATH");
    }
  }
  const auto resolve = [&](auto*& function, const char* symbol) {
    void* address = dlsym(library, symbol);
    if (!address) {
      dlclose(library);  // a later call tries the load again
      fail("cuBLAS: ", path, " has no function ", symbol);
    }
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(address);
  };
  CublasLibrary cublas;
  resolve(cublas.create, "cublasCreate_v2");
  resolve(cublas.destroy, "cublasDestroy_v2");
  resolve(cublas.set_stream, "cublasSetStream_v2");
  cublas.status_string =
      reinterpret_cast<decltype(cublas.status_string)>(dlsym(library, "cublasGetStatusString"));
  resolve(cublas.gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
  Dl_info info{};
  cublas.path = dladdr(reinterpret_cast<const void*>(cublas.create), &info) && info.dli_fname
                    ? info.dli_fname
                    : path;
  return cublas;
}

}  // namespace

// A failed load throws out of the initialiser, so a later call tries again.
const CublasLibrary& cublas() {
  static const CublasLibrary library = open_cublas();
  return library;
}

std::string blas_library_path() { return cublas().path; }

}  // namespace ds::cuda
