// The back-end operations that have a default composed of the primitive ones, for back-ends
// without a dedicated kernel.
#include "tensor/backend.hpp"
#include "tensor/tensor.hpp"

namespace ds {

namespace {

// x [N, C, H, W] unfolded into [N, C * kh * kw, L] columns.
Tensor columns_of(Backend& backend, const Tensor& x, const Window& window) {
  const auto& s = x.shape();
  const std::int64_t taps = window.kernel_h * window.kernel_w;
  const Tensor columns = Tensor::empty({s[0], s[1] * taps, window.out_h(s[2]) * window.out_w(s[3])},
                                       x.dtype(), x.device());
  backend.im2col(x, window, 0.0, columns);
  return columns;
}

}  // namespace

void Backend::conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                     const Tensor& out) {
  const Tensor columns = columns_of(*this, x, window);
  matmul(weight.expand({x.shape()[0], weight.shape()[0], weight.shape()[1]}), columns, out);
}

void Backend::conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad_out,
                              const Window& window, const Tensor& grad_x,
                              const Tensor& grad_weight) {
  const std::int64_t batch = x.shape()[0];
  const std::int64_t out_channels = weight.shape()[0], taps = weight.shape()[1];
  if (grad_weight.defined()) {
    const Tensor columns = columns_of(*this, x, window);
    const Tensor per_image =
        Tensor::empty({batch, out_channels, taps}, grad_out.dtype(), grad_out.device());
    matmul(grad_out, columns.transpose(1, 2), per_image);
    reduce(ReduceOp::sum, per_image.permute({1, 2, 0}), 1, grad_weight);
  }
  if (grad_x.defined()) {
    const Tensor grad_columns =
        Tensor::empty({batch, taps, grad_out.shape()[2]}, grad_out.dtype(), grad_out.device());
    matmul(weight.t().expand({batch, taps, out_channels}), grad_out, grad_columns);
    fill(grad_x, 0.0);
    col2im(grad_columns, window, grad_x);
  }
}

}  // namespace ds
