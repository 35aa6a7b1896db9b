// Batch normalisation: in floating point the back-end's fused passes with a closed-form backward
// (the terms through the batch mean and variance included), in other dtypes composed of
// differentiable ops.
#include <cstdint>
#include <vector>

#include "autograd/function.hpp"
#include "autograd/grad_mode.hpp"
#include "nn/functional.hpp"
#include "tensor/batch_norm.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

namespace {

// What follows the normalisation in the same passes: nothing, a relu, or a residual added and
// then a relu (a residual block's ending).
struct Ending {
  bool relu = false;
  Tensor residual;  // defined only with relu
};

// With the batch's statistics, or at inference the running ones (given_statistics: then the
// output is x * scale + shift per channel, and its gradient has no terms through the
// statistics), in the back-end's fused passes (tensor/batch_norm.hpp). With a relu in the
// ending, the output is clamped as it is written, and backward masks the gradient by the saved
// output as it reads it; the residual's gradient is that masked gradient.
Tensor batch_norm_fused(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                        const Tensor& weight, const Tensor& bias, bool training, double momentum,
                        double eps, const Ending& ending) {
  const Tensor x = x_in.detach().contiguous();
  const Device device = x.device();
  const BatchNormLayout layout{x.shape()[0], x.shape()[1],
                               x.dim() == 4 ? x.shape()[2] * x.shape()[3] : 1};
  const bool given_statistics = !training && running_mean.defined();
  const auto per_channel = [&](const Tensor& t, DType dtype) {
    return t.defined() ? t.detach().to(dtype).contiguous() : Tensor();
  };
  BatchNormForward pass{
      layout, x, per_channel(weight, x.dtype()), per_channel(bias, x.dtype()),
      given_statistics ? per_channel(running_mean, DType::f64) : Tensor(),
      given_statistics ? per_channel(running_var, DType::f64) : Tensor(), eps, ending.relu,
      ending.residual.defined() ? ending.residual.detach().contiguous() : Tensor(),
      // Per channel: mean, 1/sqrt(var + eps) (both kept for backward) and the
      // variance (the batch's, biased, for the running statistics' update).
      Tensor::empty({3, layout.channels}, DType::f64, device),
      Tensor::empty(x.shape(), x.dtype(), device)};
  backend_for(device).batch_norm(pass);
  if (training && running_mean.defined()) {
    NoGradGuard no_grad;
    const double unbias =
        static_cast<double>(layout.count()) / static_cast<double>(layout.count() - 1);
    running_mean.mul_(1 - momentum)
        .add_(pass.stats.select(0, 0).to(running_mean.dtype()), momentum);
    running_var.mul_(1 - momentum)
        .add_(pass.stats.select(0, 2).to(running_var.dtype()), momentum * unbias);
  }
  const char* name = ending.residual.defined() ? "batch_norm_add_relu"
                     : ending.relu             ? "batch_norm_relu"
                                               : "batch_norm";
  const Tensor y = pass.y.reshape(x_in.shape());
  return autograd::record(
      name, y, {x_in, weight, bias, ending.residual},
      [x, layout, name, given_statistics, stats = pass.stats, sw = autograd::SavedTensor(weight),
       sy = ending.relu ? autograd::SavedTensor(pass.y) : autograd::SavedTensor()](
          const Tensor& g_in, const std::vector<bool>& needs) {
        const Tensor& weight = sw.get(name);
        const Device device = x.device();
        const auto like_x = [&](bool wanted) {
          return wanted ? Tensor::empty(x.shape(), x.dtype(), device) : Tensor();
        };
        const BatchNormBackward pass{
            layout,
            g_in.contiguous(),
            x,
            sy.get(name),
            stats,
            weight.defined() ? weight.detach().to(x.dtype()).contiguous() : Tensor(),
            given_statistics,
            like_x(needs[0]),
            like_x(needs[3]),
            needs[1] || needs[2] ? Tensor::empty({2, layout.channels}, DType::f64, device)
                                 : Tensor()};
        backend_for(device).batch_norm_backward(pass);
        const auto sum = [&](int which) { return pass.sums.select(0, which).to(x.dtype()); };
        return std::vector<Tensor>{
            pass.grad_x.defined() ? pass.grad_x.reshape(g_in.shape()) : Tensor(),
            needs[1] ? sum(0) : Tensor(), needs[2] ? sum(1) : Tensor(),
            pass.grad_residual.defined() ? pass.grad_residual.reshape(g_in.shape()) : Tensor()};
      });
}

Tensor normalize(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                 const Tensor& weight, const Tensor& bias, bool training, double momentum,
                 double eps, const Ending& ending) {
  if (x.dim() != 2 && x.dim() != 4)
    fail("batch_norm: expects [N, C] or [N, C, H, W], got shape ", x.shape());
  const Tensor& residual = ending.residual;
  if (residual.defined() && (residual.shape() != x.shape() || residual.dtype() != x.dtype() ||
                             residual.device() != x.device()))
    fail("batch_norm_add_relu: the residual (", residual.shape(), ", ", residual.dtype(), ", ",
         residual.device(), ") must match the input (", x.shape(), ", ", x.dtype(), ", ",
         x.device(), ")");
  const std::int64_t channels = x.shape()[1];
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias}) {
    if (t->defined() && t->shape() != Shape{channels})
      fail("batch_norm: per-channel tensor of shape ", t->shape(), " for ", channels,
           " channels (input ", x.shape(), ")");
    // The back-ends read them as the input's device memory.
    if (t->defined() && t->device() != x.device())
      fail("batch_norm: a per-channel tensor on ", t->device().str(), " for an input on ",
           x.device().str());
  }
  if (running_mean.defined() != running_var.defined())
    fail("batch_norm: running_mean and running_var must be given together");
  // As PyTorch: the running statistics are buffers, which take no gradient.
  if ((running_mean.defined() && running_mean.requires_grad()) ||
      (running_var.defined() && running_var.requires_grad()))
    fail("batch_norm: the running statistics require grad; they are buffers, detach them");
  Shape channel_shape(x.dim(), 1);
  channel_shape[1] = channels;

  const std::int64_t count = channels > 0 ? x.numel() / channels : 0;
  if (count < 2 && training)
    fail("batch_norm: training needs more than one value per channel, got input ", x.shape());
  if (is_floating(x.dtype()))
    return batch_norm_fused(x, running_mean, running_var, weight, bias, training, momentum, eps,
                            ending);
  // In other dtypes, composed of differentiable ops.
  const auto end = [&](Tensor y) {
    if (residual.defined()) y = y + residual;
    return ending.relu ? relu(y) : y;
  };
  if (!training && running_mean.defined()) {
    // Inference folds the statistics into a per-channel scale and shift, as PyTorch does:
    // y = x * (weight / sqrt(var + eps)) + (bias - mean * scale).
    Tensor scale = 1.0 / sqrt(running_var + eps);
    if (weight.defined()) scale = scale * weight;
    // A copy of the mean: the product keeps its operands for the gradient, and a later training
    // step updates the running statistics in place.
    Tensor shift = -(running_mean.clone() * scale);
    if (bias.defined()) shift = shift + bias;
    return end(x * scale.reshape(channel_shape) + shift.reshape(channel_shape));
  }
  // Batch statistics.
  const std::vector<std::int64_t> dims =
      x.dim() == 2 ? std::vector<std::int64_t>{0} : std::vector<std::int64_t>{0, 2, 3};
  const Tensor mu = mean(x, dims, /*keepdim=*/true);
  const Tensor sigma2 = var(x, dims, /*keepdim=*/true, /*correction=*/0);
  if (training && running_mean.defined()) {
    NoGradGuard no_grad;
    const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    running_mean.mul_(1 - momentum).add_(mu.reshape({channels}), momentum);
    running_var.mul_(1 - momentum).add_(sigma2.reshape({channels}), momentum * unbias);
  }
  Tensor y = (x - mu) / sqrt(sigma2 + eps);
  if (weight.defined()) y = y * weight.reshape(channel_shape);
  if (bias.defined()) y = y + bias.reshape(channel_shape);
  return end(y);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  return normalize(x, running_mean, running_var, weight, bias, training, momentum, eps, {});
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps) {
  return normalize(x, running_mean, running_var, weight, bias, training, momentum, eps,
                   {.relu = true, .residual = Tensor()});
}

Tensor batch_norm_add_relu(const Tensor& x, const Tensor& residual, const Tensor& running_mean,
                           const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                           bool training, double momentum, double eps) {
  if (!residual.defined()) fail("batch_norm_add_relu: the residual is undefined");
  return normalize(x, running_mean, running_var, weight, bias, training, momentum, eps,
                   {.relu = true, .residual = residual});
}

}  // namespace ds::nn::functional
