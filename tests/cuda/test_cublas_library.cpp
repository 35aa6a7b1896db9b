// cuBLAS is opened on first use: a program that never multiplies on a GPU does not load it
// (loading it costs about 0.36 s). Runs on every machine with the toolkit, since
// opening the library needs no GPU.
#include <link.h>

#include <catch2/catch.hpp>
#include <string>

#include "cuda/cuda.hpp"

namespace {

// Whether an object whose file name contains `fragment` is loaded in this process.
bool loaded(const std::string& fragment) {
  struct Search {
    const std::string* fragment;
    bool found = false;
  } search{&fragment};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        if (info->dlpi_name && std::string(info->dlpi_name).find(*s->fragment) != std::string::npos)
          s->found = true;
        return 0;
      },
      &search);
  return search.found;
}

}  // namespace

TEST_CASE("cuBLAS is loaded on first use, not at program start", "[cuda][cublas]") {
  // No test of this program multiplies on a GPU (the others use a host stand-in): only the
  // call below may load it.
  REQUIRE(loaded("libcudart"));
  CHECK_FALSE(loaded("libcublas"));
  const std::string path = ds::cuda::blas_library_path();
  CHECK(path.find("libcublas.so.") != std::string::npos);
  CHECK(loaded("libcublas"));
  CHECK(ds::cuda::blas_library_path() == path);
}
