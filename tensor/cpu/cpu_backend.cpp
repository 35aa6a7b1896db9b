#include "tensor/cpu/cpu_backend.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tensor/cpu/block_cache.hpp"
#include "tensor/cpu/strided_loop.hpp"
#include "tensor/tensor.hpp"

namespace ds {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

namespace cpu {

// 64-byte alignment so that every SIMD width up to AVX-512 can load a tensor's first element.
constexpr std::size_t kAlignment = 64;

namespace {

// At most 1 GiB of freed blocks. Never destroyed: tensors held by other static objects may be
// freed after main returns.
LargeBlockCache& block_cache() {
  static auto* cache = new LargeBlockCache(std::size_t{1} << 30);
  return *cache;
}

// A new large block. Blocks of 2 MiB or more start on a 2 MiB boundary and ask the kernel for
// transparent huge pages (where it grants them on request, as Debian's default `madvise` mode
// does): first touching such a block then costs one page fault per 2 MiB instead of one per
// 4 KiB, which in a virtual machine, where each fault exits to the hypervisor, was a fifth of
// evaluating the MNIST conv model at batch 1000 (docs/benchmarks.md).
void* new_large_block(std::size_t bytes) {
  constexpr std::size_t kHugePage = std::size_t{1} << 21;
  void* data = nullptr;
  if (posix_memalign(&data, bytes >= kHugePage ? kHugePage : kAlignment, bytes) != 0)
    return nullptr;
#ifdef MADV_HUGEPAGE
  if (bytes >= kHugePage) madvise(data, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return data;
}

}  // namespace

std::shared_ptr<void> CpuBackend::allocate(std::size_t nbytes, Device /*device: the one CPU*/) {
  const std::size_t granule =
      nbytes >= LargeBlockCache::kMinBlock ? LargeBlockCache::kGranule : kAlignment;
  const std::size_t rounded = (std::max<std::size_t>(nbytes, 1) + granule - 1) / granule * granule;
  if (rounded >= LargeBlockCache::kMinBlock) {
    void* data = block_cache().take(rounded);
    if (!data) data = new_large_block(rounded);
    if (!data) fail("out of host memory allocating ", nbytes, " bytes");
    return std::shared_ptr<void>(data, [rounded](void* p) { block_cache().give(p, rounded); });
  }
  void* data = std::aligned_alloc(kAlignment, rounded);
  if (!data) fail("out of host memory allocating ", nbytes, " bytes");
  return std::shared_ptr<void>(data, [](void* p) { std::free(p); });
}

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  dispatch_dtype(src.dtype(), [&](auto src_tag) {
    using S = typename decltype(src_tag)::type;
    dispatch_dtype(dst.dtype(), [&](auto dst_tag) {
      using D = typename decltype(dst_tag)::type;
      const S* in = src.data<S>();
      D* out = dst.data<D>();
      for_each_run<2>(dst.shape(), {&dst.strides(), &src.strides()}, [&](const Run<2>& r) {
        D* o = out + r.offset[0];
        const S* i = in + r.offset[1];
        if (r.stride[0] == 1 && r.stride[1] == 1) {
#pragma omp simd
          for (std::int64_t n = 0; n < r.length; ++n) o[n] = static_cast<D>(i[n]);
        } else {
          for (std::int64_t n = 0; n < r.length; ++n)
            o[n * r.stride[0]] = static_cast<D>(i[n * r.stride[1]]);
        }
      });
    });
  });
}

void CpuBackend::copy_to_host(const Tensor& src, void* host) {
  std::memcpy(host, src.data_ptr(),
              static_cast<std::size_t>(src.numel()) * dtype_size(src.dtype()));
}

void CpuBackend::copy_from_host(const void* host, const Tensor& dst) {
  std::memcpy(dst.data_ptr(), host,
              static_cast<std::size_t>(dst.numel()) * dtype_size(dst.dtype()));
}

void CpuBackend::fill(const Tensor& dst, double value) {
  dispatch_dtype(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = static_cast<T>(value);
    T* out = dst.data<T>();
    for_each_run<1>(dst.shape(), {&dst.strides()}, [&](const Run<1>& r) {
      T* o = out + r.offset[0];
      if (r.stride[0] == 1) {
        std::fill(o, o + r.length, v);
        return;
      }
      for (std::int64_t n = 0; n < r.length; ++n) o[n * r.stride[0]] = v;
    });
  });
}

}  // namespace cpu
}  // namespace ds
