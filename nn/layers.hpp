#pragma once
// The standard layers. Each takes an options struct where it has more than two settings,
// initialises itself as PyTorch does, and names its parameters as PyTorch does.
#include <cstdint>
#include <vector>

#include "nn/functional.hpp"
#include "nn/module.hpp"

namespace ds::nn {

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  std::int64_t macs(const Shape& input, const Shape& output) const override;
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  std::int64_t in_features_, out_features_;
  Tensor weight_, bias_;
};

struct Conv2dOptions {
  std::int64_t in_channels = 0, out_channels = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
  bool bias = true;

  // Square kernel, stride, padding and dilation: the common case.
  static Conv2dOptions square(std::int64_t in, std::int64_t out, std::int64_t kernel,
                              std::int64_t stride = 1, std::int64_t padding = 0, bool bias = true,
                              std::int64_t groups = 1, std::int64_t dilation = 1);
  functional::Conv2dParams params() const;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  std::int64_t macs(const Shape& input, const Shape& output) const override;
  const Conv2dOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  Conv2dOptions options_;
  Tensor weight_, bias_;
};

// BatchNorm1d ([N, C]) and BatchNorm2d ([N, C, H, W]) share one implementation. With then_relu
// the layer's output is relu of the normalised values (functional::batch_norm_relu): a model
// whose forward applies relu right after the layer folds it in, with the same parameters and
// state-dict names.
class BatchNorm : public Module {
 public:
  BatchNorm(std::int64_t features, int spatial_dims, double eps = 1e-5, double momentum = 0.1,
            bool affine = true, bool then_relu = false);
  Tensor forward(const Tensor& input) override;
  // relu(forward(input) + residual) in the same passes (functional::batch_norm_add_relu), for a
  // residual block's ending. A layer made with then_relu refuses: its output is clamped already.
  Tensor add_relu(const Tensor& input, const Tensor& residual);
  std::string describe() const override;

 private:
  // forward() or, with a residual, add_relu().
  Tensor apply(const Tensor& input, const Tensor& residual);

  std::int64_t features_;
  int spatial_dims_;
  double eps_, momentum_;
  bool then_relu_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

std::shared_ptr<BatchNorm> batch_norm1d(std::int64_t features);
std::shared_ptr<BatchNorm> batch_norm2d(std::int64_t features);
// BatchNorm2d followed by relu, in one layer.
std::shared_ptr<BatchNorm> batch_norm2d_relu(std::int64_t features);

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& input) override;
};

class ReLU6 : public Module {
 public:
  ReLU6() : Module("ReLU6") {}
  Tensor forward(const Tensor& input) override;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  double p_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(std::int64_t dim = 1) : Module("LogSoftmax"), dim_(dim) {}
  Tensor forward(const Tensor& input) override;

 private:
  std::int64_t dim_;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0,
            bool ceil_mode = false);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  Window window_;
  bool ceil_mode_;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  Window window_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(std::int64_t out_h, std::int64_t out_w);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  std::int64_t out_h_, out_w_;
};

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1) : Module("Flatten"), start_dim_(start_dim) {}
  Tensor forward(const Tensor& input) override;

 private:
  std::int64_t start_dim_;
};

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& input) override { return input; }
};

// Children named "0", "1", ... applied in order.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<ModulePtr> modules);
  Sequential& add(ModulePtr module);
  Tensor forward(const Tensor& input) override;
  std::size_t size() const { return named_children().size(); }
};

// The CIFAR ResNet "option A" shortcut: keep every second pixel and pad the channels with
// zeros on both sides (planes / 4 each), as He et al. and the original code do.
class ShortcutA : public Module {
 public:
  explicit ShortcutA(std::int64_t planes) : Module("LambdaLayer"), planes_(planes) {}
  Tensor forward(const Tensor& input) override;

 private:
  std::int64_t planes_;
};

}  // namespace ds::nn
