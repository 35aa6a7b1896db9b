#include "cuda/layout.hpp"

#include "tensor/tensor.hpp"

namespace ds::cuda {

template <int N>
Layout<N> make_layout(const std::array<const Tensor*, N>& operands) {
  const Shape& shape = operands[0]->shape();
  Layout<N> layout;
  layout.numel = numel_of(shape);
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int at = layout.ndim;
    // A dim that continues the previous one in every operand is merged into it.
    bool mergeable = at > 0;
    for (int k = 0; k < N && mergeable; ++k)
      mergeable = layout.strides[k][at - 1] == operands[k]->strides()[d] * shape[d];
    if (mergeable) {
      layout.sizes[at - 1] *= shape[d];
      for (int k = 0; k < N; ++k) layout.strides[k][at - 1] = operands[k]->strides()[d];
      continue;
    }
    if (at == kMaxDims)
      fail("CUDA kernels take at most ", kMaxDims, " non-mergeable dims; shape ", shape,
           " has more");
    layout.sizes[at] = shape[d];
    for (int k = 0; k < N; ++k) layout.strides[k][at] = operands[k]->strides()[d];
    ++layout.ndim;
  }
  return layout;
}

template Layout<1> make_layout<1>(const std::array<const Tensor*, 1>&);
template Layout<2> make_layout<2>(const std::array<const Tensor*, 2>&);
template Layout<3> make_layout<3>(const std::array<const Tensor*, 3>&);
template Layout<4> make_layout<4>(const std::array<const Tensor*, 4>&);

}  // namespace ds::cuda
