#pragma once
// The composed convolution behind Backend::conv2d and conv2d_backward's defaults, with the
// bound on its working memory as an argument so that tests can make it small.
#include <cstddef>

#include "tensor/backend.hpp"

namespace ds {

// What the defaults allow: the columns of a few dozen ImageNet images at a time (a 64-channel
// 3x3 layer at 56x56 takes 7 MB per image), all of a CIFAR or MNIST batch at once.
inline constexpr std::size_t kConvWorkspaceBytes = std::size_t(256) << 20;

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
