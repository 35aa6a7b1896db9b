#pragma once
// Stateless neural-network operations. Most are compositions of differentiable tensor ops
// (so their gradients come from autograd); max pooling and the losses record their own
// backward where routing or validation needs it.
#include <cstdint>

#include "tensor/backend.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace ds::nn::functional {

// y = x W^T + b, x [..., in], weight [out, in], bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

struct Conv2dParams {
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
};

// x [N, C, H, W], weight [O, C / groups, kh, kw], bias [O] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dParams& params);

// The gradients of linear and conv2d for the output's gradient g: {x, weight} or {x, weight,
// bias} as `needs` has 2 or 3 entries, each only where it asks. Their own backward, for layers
// whose forward takes another route (the integer shift kernel).
std::vector<Tensor> linear_gradients(const Tensor& x, const Tensor& weight, const Tensor& g,
                                     const std::vector<bool>& needs);
std::vector<Tensor> conv2d_gradients(const Tensor& x, const Tensor& weight, const Tensor& g,
                                     const Conv2dParams& params, const std::vector<bool>& needs);

// Pooling over x [N, C, H, W]. Max pooling pads with -inf and sends the gradient to the first
// maximum of each window (as PyTorch); average pooling counts the zero padding. With
// ceil_mode the last window may hang over the bottom/right edge (PyTorch's rule: it must start
// inside the input or its left padding).
Tensor max_pool2d(const Tensor& x, const Window& window, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& x, const Window& window);
// PyTorch's adaptive bins: cell i covers [floor(i * H / out), ceil((i + 1) * H / out)).
Tensor adaptive_avg_pool2d(const Tensor& x, std::int64_t out_h, std::int64_t out_w);

// Batch normalisation over dim 1 of x [N, C] or [N, C, H, W]. In training it normalises with
// the batch statistics and, when running stats are given, updates them in place with
// `momentum` (the running variance takes the unbiased batch variance, as PyTorch does).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps);
// relu(batch_norm(...)), fused where batch_norm has a direct loop (the CPU): the output is
// clamped as it is written and the gradient masked as it is read, two passes over memory fewer
// than the two ops.
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps);
// relu(batch_norm(x, ...) + residual), a residual block's ending, fused in the same way: the
// residual (x's shape, dtype and device) is added as the output is written, and its gradient is
// the masked one the normalisation reads.
Tensor batch_norm_add_relu(const Tensor& x, const Tensor& residual, const Tensor& running_mean,
                           const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                           bool training, double momentum, double eps);

// Zeroes each element with probability p and scales the rest by 1 / (1 - p) in training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

Tensor relu6(const Tensor& x);

enum class Reduction { mean, sum };
// log_probs [N, C], target i32 [N] with labels in [0, C).
Tensor nll_loss(const Tensor& log_probs, const Tensor& target,
                Reduction reduction = Reduction::mean);
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::mean);

}  // namespace ds::nn::functional
