#pragma once
// The composed convolution behind Backend::conv2d and conv2d_backward's defaults, with the
// bound on its working memory as an argument so that tests can make it small.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tensor/backend.hpp"
#include "tensor/dtype.hpp"

namespace ds {

// What the defaults allow: the columns of a few dozen ImageNet images at a time (a 64-channel
// 3x3 layer at 56x56 takes 7 MB per image), all of a CIFAR or MNIST batch at once.
inline constexpr std::size_t kConvWorkspaceBytes = std::size_t(256) << 20;

// Unfolding a whole batch at once can take more memory than the device has: VGG16's 64-channel
// layers at 224x224 and batch 256 would need 30 GB of columns. So the batch is cut into groups
// of images whose working memory (`elements_per_image` each) fits the workspace, and `body(first,
// count)` runs once per group.
template <typename Body>
void for_each_group(std::int64_t batch, std::int64_t elements_per_image, DType dtype,
                    std::size_t workspace_bytes, Body body) {
  const std::size_t image_bytes =
      std::max<std::size_t>(1, static_cast<std::size_t>(elements_per_image) * dtype_size(dtype));
  const std::int64_t group =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(workspace_bytes / image_bytes));
  for (std::int64_t first = 0; first < batch; first += group)
    body(first, std::min(group, batch - first));
}

// Unfolds as many images at a time as fit `workspace_bytes` (at least one) and runs one batched
// product per group of images; the arguments are as for Backend::conv2d / conv2d_backward.
void composed_conv2d(Backend& backend, const Tensor& x, const Tensor& weight, const Window& window,
                     const Tensor& out, std::size_t workspace_bytes);
void composed_conv2d_backward(Backend& backend, const Tensor& x, const Tensor& weight,
                              const Tensor& grad_out, const Window& window, const Tensor& grad_x,
                              const Tensor& grad_weight, std::size_t workspace_bytes);
// The same for Backend::depthwise_conv2d / depthwise_conv2d_backward.
void composed_depthwise_conv2d(Backend& backend, const Tensor& x, const Tensor& weight,
                               const Window& window, const Tensor& out,
                               std::size_t workspace_bytes);
void composed_depthwise_conv2d_backward(Backend& backend, const Tensor& x, const Tensor& weight,
                                        const Tensor& grad_out, const Window& window,
                                        const Tensor& grad_x, const Tensor& grad_weight,
                                        std::size_t workspace_bytes);

}  // namespace ds
