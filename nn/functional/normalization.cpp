// Batch normalisation, composed of differentiable reductions so that its gradient (including
// the terms through the batch mean and variance) comes from autograd.
#include "autograd/grad_mode.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  if (x.dim() != 2 && x.dim() != 4)
    fail("batch_norm: expects [N, C] or [N, C, H, W], got shape ", x.shape());
  const std::int64_t channels = x.shape()[1];
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
    if (t->defined() && t->shape() != Shape{channels})
      fail("batch_norm: per-channel tensor of shape ", t->shape(), " for ", channels,
           " channels (input ", x.shape(), ")");
  const std::vector<std::int64_t> dims =
      x.dim() == 2 ? std::vector<std::int64_t>{0} : std::vector<std::int64_t>{0, 2, 3};
  Shape channel_shape(x.dim(), 1);
  channel_shape[1] = channels;

  Tensor mu, sigma2;
  if (training || !running_mean.defined()) {
    const std::int64_t count = x.numel() / channels;
    if (count < 2 && training)
      fail("batch_norm: training needs more than one value per channel, got input ", x.shape());
    mu = mean(x, dims, /*keepdim=*/true);
    sigma2 = var(x, dims, /*keepdim=*/true, /*correction=*/0);
    if (training && running_mean.defined()) {
      NoGradGuard no_grad;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      running_mean.mul_(1 - momentum).add_(mu.reshape({channels}), momentum);
      running_var.mul_(1 - momentum).add_(sigma2.reshape({channels}), momentum * unbias);
    }
  } else {
    mu = running_mean.reshape(channel_shape);
    sigma2 = running_var.reshape(channel_shape);
  }
  Tensor y = (x - mu) / sqrt(sigma2 + eps);
  if (weight.defined()) y = y * weight.reshape(channel_shape);
  if (bias.defined()) y = y + bias.reshape(channel_shape);
  return y;
}

}  // namespace ds::nn::functional
