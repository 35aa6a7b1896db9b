#pragma once
// The shared launch machinery of the elementwise kernels: one thread per element over a
// grid-stride loop, operand offsets computed from a merged Layout. Index arithmetic runs in
// 32 bits whenever the tensor allows it (64-bit division is several times slower on a GPU).
#include <cstdint>
#include <type_traits>

#include "cuda/check.hpp"
#include "cuda/layout.hpp"
#include "tensor/error.hpp"

namespace ds::cuda {

inline constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `work` items.
inline unsigned blocks_for(std::int64_t work) {
  const std::int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20));
}

// Blocks for kernels where each block owns `per_block` work items outright (no grid-stride loop).
inline unsigned blocks_covering(std::int64_t work, std::int64_t per_block) {
  const std::int64_t blocks = (work + per_block - 1) / per_block;
  if (blocks > INT32_MAX) fail("a CUDA launch of ", work, " work items needs too many blocks");
  return static_cast<unsigned>(blocks);
}

template <typename Index, int N>
__device__ inline void offsets_of(const Layout<N>& layout, std::int64_t element,
                                  std::int64_t (&offset)[N]) {
  if (layout.ndim <= 1) {  // contiguous or uniformly strided operands: no division at all
    for (int k = 0; k < N; ++k) offset[k] = layout.ndim ? element * layout.strides[k][0] : 0;
    return;
  }
  for (int k = 0; k < N; ++k) offset[k] = 0;
  Index rest = static_cast<Index>(element);
  for (int d = layout.ndim - 1; d >= 0; --d) {
    const Index size = static_cast<Index>(layout.sizes[d]);
    const auto index = static_cast<std::int64_t>(rest % size);
    rest /= size;
    for (int k = 0; k < N; ++k) offset[k] += index * layout.strides[k][d];
  }
}

template <typename Index, int N, typename Fn>
__global__ void elementwise_kernel(const Layout<N> layout, Fn fn) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < layout.numel; i += step) {
    std::int64_t offset[N];
    offsets_of<Index>(layout, i, offset);
    fn(offset);
  }
}

// fn(const std::int64_t (&offset)[N]) does the work of one element.
template <int N, typename Fn>
void for_each_element(const Layout<N>& layout, cudaStream_t stream, const char* name, Fn fn) {
  if (layout.numel == 0) return;
  const unsigned blocks = blocks_for(layout.numel);
  if (layout.numel <= static_cast<std::int64_t>(UINT32_MAX))
    elementwise_kernel<std::uint32_t, N><<<blocks, kThreads, 0, stream>>>(layout, fn);
  else
    elementwise_kernel<std::uint64_t, N><<<blocks, kThreads, 0, stream>>>(layout, fn);
  check_launch(name);
}

}  // namespace ds::cuda
