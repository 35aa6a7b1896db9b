#include "autograd/grad_mode.hpp"
#include "nn/layers.hpp"

namespace ds::nn {

BatchNorm::BatchNorm(std::int64_t features, int spatial_dims, double eps, double momentum,
                     bool affine, bool then_relu)
    : Module(spatial_dims == 0 ? "BatchNorm1d" : "BatchNorm2d"),
      features_(features),
      spatial_dims_(spatial_dims),
      eps_(eps),
      momentum_(momentum),
      then_relu_(then_relu) {
  if (features < 1) fail(type_name(), ": features must be positive, got ", features);
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({features}));
    bias_ = register_parameter("bias", Tensor::zeros({features}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({features}));
  running_var_ = register_buffer("running_var", Tensor::ones({features}));
  // PyTorch stores an int64 counter; i32 is our widest integer (the weights file converts).
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i32));
}

Tensor BatchNorm::forward(const Tensor& input) { return apply(input, Tensor()); }

Tensor BatchNorm::add_relu(const Tensor& input, const Tensor& residual) {
  if (then_relu_)
    fail(type_name(), ": add_relu on a layer that applies relu itself (made with then_relu)");
  if (!residual.defined()) fail(type_name(), ": add_relu with an undefined residual");
  return noted(input.shape(), apply(input, residual));
}

Tensor BatchNorm::apply(const Tensor& input, const Tensor& residual) {
  const std::size_t expected = spatial_dims_ == 0 ? 2 : 4;
  if (input.dim() != expected)
    fail(type_name(), ": expects a ", expected, "-D input, got shape ", input.shape());
  const Tensor output =
      residual.defined()
          ? functional::batch_norm_add_relu(input, residual, running_mean_, running_var_, weight_,
                                            bias_, is_training(), momentum_, eps_)
          : (then_relu_ ? functional::batch_norm_relu : functional::batch_norm)(
                input, running_mean_, running_var_, weight_, bias_, is_training(), momentum_, eps_);
  // Counted once the batch is taken: a call refused for its input leaves the layer unchanged.
  if (is_training()) {
    NoGradGuard no_grad;
    num_batches_tracked_.add_(1.0);
  }
  return output;
}

std::string BatchNorm::describe() const {
  return concat(features_, ", eps=", eps_, ", momentum=", momentum_,
                ", affine=", weight_.defined() ? "True" : "False", then_relu_ ? ", then ReLU" : "");
}

std::shared_ptr<BatchNorm> batch_norm1d(std::int64_t features) {
  return std::make_shared<BatchNorm>(features, 0);
}

std::shared_ptr<BatchNorm> batch_norm2d(std::int64_t features) {
  return std::make_shared<BatchNorm>(features, 2);
}

std::shared_ptr<BatchNorm> batch_norm2d_relu(std::int64_t features) {
  return std::make_shared<BatchNorm>(features, 2, 1e-5, 0.1, true, true);
}

}  // namespace ds::nn
