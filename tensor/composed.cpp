// The back-end operations that have a default composed of the primitive ones, for back-ends
// without a dedicated kernel.
#include "tensor/composed.hpp"

#include "autograd/grad_mode.hpp"
#include "tensor/ops.hpp"
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

void composed_conv2d(Backend& backend, const Tensor& x, const Tensor& weight, const Window& window,
                     const Tensor& out, std::size_t workspace_bytes) {
  const std::int64_t out_channels = weight.shape()[0], taps = weight.shape()[1];
  const std::int64_t positions = out.shape()[2];
  for_each_group(x.shape()[0], taps * positions, x.dtype(), workspace_bytes,
                 [&](std::int64_t first, std::int64_t count) {
                   const Tensor columns = columns_of(backend, x.narrow(0, first, count), window);
                   backend.matmul(weight.expand({count, out_channels, taps}), columns,
                                  out.narrow(0, first, count));
                 });
}

void composed_conv2d_backward(Backend& backend, const Tensor& x, const Tensor& weight,
                              const Tensor& grad_out, const Window& window, const Tensor& grad_x,
                              const Tensor& grad_weight, std::size_t workspace_bytes) {
  const std::int64_t batch = x.shape()[0];
  const std::int64_t out_channels = weight.shape()[0], taps = weight.shape()[1];
  const std::int64_t positions = grad_out.shape()[2];
  // A group's columns and per-image weight gradients, or its column gradient. The gradients
  // count twice: the sum over the group reads them permuted, which a back-end may copy first
  // (CUDA's reduce does).
  const std::int64_t elements_per_image =
      taps * positions + (grad_weight.defined() ? 2 * out_channels * taps : 0);
  // The weight gradient of each group after the first, added to grad_weight.
  Tensor group_sum;
  if (grad_weight.defined() && batch == 0) backend.fill(grad_weight, 0.0);
  for_each_group(
      batch, elements_per_image, x.dtype(), workspace_bytes,
      [&](std::int64_t first, std::int64_t count) {
        const Tensor g = grad_out.narrow(0, first, count);
        if (grad_weight.defined()) {
          const Tensor columns = columns_of(backend, x.narrow(0, first, count), window);
          const Tensor per_image =
              Tensor::empty({count, out_channels, taps}, grad_out.dtype(), grad_out.device());
          backend.matmul(g, columns.transpose(1, 2), per_image);
          if (first == 0) {
            backend.reduce(ReduceOp::sum, per_image.permute({1, 2, 0}), 1, grad_weight);
          } else {
            if (!group_sum.defined())
              group_sum =
                  Tensor::empty(grad_weight.shape(), grad_weight.dtype(), grad_weight.device());
            backend.reduce(ReduceOp::sum, per_image.permute({1, 2, 0}), 1, group_sum);
            backend.binary(BinaryOp::add, grad_weight, group_sum, grad_weight);
          }
        }
        if (grad_x.defined()) {
          const Tensor grad_columns =
              Tensor::empty({count, taps, positions}, grad_out.dtype(), grad_out.device());
          backend.matmul(weight.t().expand({count, taps, out_channels}), g, grad_columns);
          const Tensor grad_image = grad_x.narrow(0, first, count);
          backend.fill(grad_image, 0.0);
          backend.col2im(grad_columns, window, grad_image);
        }
      });
}

void composed_depthwise_conv2d(Backend& backend, const Tensor& x, const Tensor& weight,
                               const Window& window, const Tensor& out,
                               std::size_t workspace_bytes) {
  const std::int64_t channels = x.shape()[1], taps = weight.shape()[1];
  const std::int64_t multiplier = channels == 0 ? 0 : weight.shape()[0] / channels;
  const std::int64_t positions = out.shape()[2];
  // Per image, a product batched over the channels: [C, M, taps] @ [C, taps, L].
  const Tensor kernels = weight.reshape({channels, multiplier, taps});
  for_each_group(x.shape()[0], channels * taps * positions, x.dtype(), workspace_bytes,
                 [&](std::int64_t first, std::int64_t count) {
                   const Tensor columns = columns_of(backend, x.narrow(0, first, count), window);
                   for (std::int64_t i = 0; i < count; ++i)
                     backend.matmul(
                         kernels, columns.select(0, i).reshape({channels, taps, positions}),
                         out.select(0, first + i).view({channels, multiplier, positions}));
                 });
}

void composed_depthwise_conv2d_backward(Backend& backend, const Tensor& x, const Tensor& weight,
                                        const Tensor& grad_out, const Window& window,
                                        const Tensor& grad_x, const Tensor& grad_weight,
                                        std::size_t workspace_bytes) {
  const std::int64_t batch = x.shape()[0], channels = x.shape()[1], taps = weight.shape()[1];
  const std::int64_t multiplier = channels == 0 ? 0 : weight.shape()[0] / channels;
  const std::int64_t positions = grad_out.shape()[2];
  const Tensor kernels = weight.reshape({channels, multiplier, taps});
  const auto grad_of = [&](std::int64_t image) {
    return grad_out.select(0, image).reshape({channels, multiplier, positions});
  };
  // Each image's weight gradient, [C, M, L] @ [C, L, taps], added up in grad_weight.
  Tensor image_sum;
  if (grad_weight.defined() && batch == 0) backend.fill(grad_weight, 0.0);
  for_each_group(
      batch, 2 * channels * taps * positions, x.dtype(), workspace_bytes,
      [&](std::int64_t first, std::int64_t count) {
        if (grad_weight.defined()) {
          const Tensor columns = columns_of(backend, x.narrow(0, first, count), window);
          const Tensor sum = grad_weight.view({channels, multiplier, taps});
          for (std::int64_t i = 0; i < count; ++i) {
            const Tensor image_columns = columns.select(0, i).reshape({channels, taps, positions});
            if (first + i == 0) {
              backend.matmul(grad_of(first + i), image_columns.transpose(1, 2), sum);
              continue;
            }
            if (!image_sum.defined())
              image_sum = Tensor::empty(sum.shape(), grad_out.dtype(), grad_out.device());
            backend.matmul(grad_of(first + i), image_columns.transpose(1, 2), image_sum);
            backend.binary(BinaryOp::add, sum, image_sum, sum);
          }
        }
        if (grad_x.defined()) {
          // [C, taps, M] @ [C, M, L] per image, folded back into the images.
          const Tensor grad_columns = Tensor::empty({count, channels * taps, positions},
                                                    grad_out.dtype(), grad_out.device());
          for (std::int64_t i = 0; i < count; ++i)
            backend.matmul(kernels.transpose(1, 2), grad_of(first + i),
                           grad_columns.select(0, i).view({channels, taps, positions}));
          const Tensor grad_image = grad_x.narrow(0, first, count);
          backend.fill(grad_image, 0.0);
          backend.col2im(grad_columns, window, grad_image);
        }
      });
}

void Backend::relu_backward(const Tensor& output, const Tensor& grad, const Tensor& out) {
  const Tensor zero = Tensor::empty({}, output.dtype(), output.device());
  fill(zero, 0.0);
  const Tensor positive = Tensor::empty(output.shape(), DType::u8, output.device());
  binary(BinaryOp::gt, output, zero.expand(output.shape()), positive);
  where(positive, grad, zero.to(grad.dtype()).expand(grad.shape()), out);
}

void Backend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer,
                       const SgdUpdate& update) {
  NoGradGuard no_grad;
  Tensor direction = update.weight_decay != 0.0 ? grad + param * update.weight_decay : grad;
  if (buffer.defined()) {
    if (update.first_step)
      buffer.copy_(direction);
    else
      buffer.mul_(update.momentum).add_(direction, 1.0 - update.dampening);
    direction = update.nesterov ? direction + buffer * update.momentum : buffer;
  }
  param.add_(direction, -update.lr);
}

void Backend::conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                     const Tensor& out) {
  composed_conv2d(*this, x, weight, window, out, kConvWorkspaceBytes);
}

void Backend::conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad_out,
                              const Window& window, const Tensor& grad_x,
                              const Tensor& grad_weight) {
  composed_conv2d_backward(*this, x, weight, grad_out, window, grad_x, grad_weight,
                           kConvWorkspaceBytes);
}

void Backend::depthwise_conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                               const Tensor& out) {
  composed_depthwise_conv2d(*this, x, weight, window, out, kConvWorkspaceBytes);
}

void Backend::depthwise_conv2d_backward(const Tensor& x, const Tensor& weight,
                                        const Tensor& grad_out, const Window& window,
                                        const Tensor& grad_x, const Tensor& grad_weight) {
  composed_depthwise_conv2d_backward(*this, x, weight, grad_out, window, grad_x, grad_weight,
                                     kConvWorkspaceBytes);
}

}  // namespace ds
