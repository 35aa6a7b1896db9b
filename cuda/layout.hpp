#pragma once
// How an elementwise kernel walks N operands of one shape. The host merges dims that are one
// block in every operand and drops size-1 dims (as the CPU's strided loop does), so that
// contiguous tensors arrive as ndim 1 with stride 1 and broadcasts as stride 0.
#include <array>
#include <cstdint>

namespace ds {
class Tensor;
}

namespace ds::cuda {

inline constexpr int kMaxDims = 12;

template <int N>
struct Layout {
  int ndim = 0;  // 0: a single element
  std::int64_t numel = 1;
  std::int64_t sizes[kMaxDims] = {};
  std::int64_t strides[N][kMaxDims] = {};  // in elements, per operand
};

// operands[0] gives the shape; every operand has it (broadcasts are stride-0 views).
template <int N>
Layout<N> make_layout(const std::array<const Tensor*, N>& operands);

}  // namespace ds::cuda
