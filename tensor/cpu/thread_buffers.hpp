#pragma once
// Per-thread scratch for the CPU kernels that work image by image inside an OpenMP region.
#include <omp.h>

#include <cstdint>

#include "tensor/tensor.hpp"

namespace ds::cpu {

// One scratch buffer per thread, allocated before the parallel region (an allocation failure
// inside it could not be reported), from the tensor allocator, whose cache of freed blocks
// spares the page faults of fresh memory in every call.
template <typename T>
struct ThreadBuffers {
  ThreadBuffers(int threads, std::int64_t size)
      : size(size), memory(Tensor::empty({threads * size}, dtype_of<T>())) {}
  T* of(int thread) const { return memory.data<T>() + thread * size; }
  T* of_thread() const { return of(omp_get_thread_num()); }
  std::int64_t size;
  Tensor memory;
};

}  // namespace ds::cpu
