#include "nn/models/blocks.hpp"
#include "nn/models/imagenet.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

using detail::conv;

constexpr std::int64_t growth_rate = 32, bn_size = 4;

// BN-ReLU-conv1x1 (bottleneck to bn_size * growth) then BN-ReLU-conv3x3 (growth channels).
// Its input is the concatenation of every earlier feature map of the block.
class DenseLayer : public detail::Composite {
 public:
  explicit DenseLayer(std::int64_t in) : Composite("_DenseLayer") {
    add("norm1", batch_norm2d(in));
    add("relu1", make<ReLU>());
    add("conv1", conv(in, bn_size * growth_rate, 1));
    add("norm2", batch_norm2d(bn_size * growth_rate));
    add("relu2", make<ReLU>());
    add("conv2", conv(bn_size * growth_rate, growth_rate, 3, 1, 1));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor bottleneck = call("conv1", call("relu1", call("norm1", x)));
    return call("conv2", call("relu2", call("norm2", bottleneck)));
  }
};

class DenseBlock : public detail::Composite {
 public:
  DenseBlock(std::int64_t layers, std::int64_t in) : Composite("_DenseBlock") {
    for (std::int64_t i = 0; i < layers; ++i)
      add(concat("denselayer", i + 1), make<DenseLayer>(in + i * growth_rate));
  }
  Tensor forward(const Tensor& x) override {
    std::vector<Tensor> features{x};
    for (const auto& layer : named_children())
      features.push_back((*layer.module)(cat(features, 1)));
    return cat(features, 1);
  }
};

ModulePtr transition(std::int64_t in, std::int64_t out) {
  auto t = make<detail::NamedSequential>();
  t->add("norm", batch_norm2d(in));
  t->add("relu", make<ReLU>());
  t->add("conv", conv(in, out, 1));
  t->add("pool", make<AvgPool2d>(2, 2));
  return t;
}

class DenseNet : public detail::Composite {
 public:
  DenseNet(const std::vector<std::int64_t>& block_layers, std::int64_t num_classes)
      : Composite("DenseNet") {
    auto features = make<detail::NamedSequential>();
    std::int64_t channels = 64;
    features->add("conv0", conv(3, channels, 7, 2, 3));
    features->add("norm0", batch_norm2d(channels));
    features->add("relu0", make<ReLU>());
    features->add("pool0", make<MaxPool2d>(3, 2, 1));
    for (std::size_t i = 0; i < block_layers.size(); ++i) {
      features->add(concat("denseblock", i + 1), make<DenseBlock>(block_layers[i], channels));
      channels += block_layers[i] * growth_rate;
      if (i + 1 == block_layers.size()) break;
      features->add(concat("transition", i + 1), transition(channels, channels / 2));
      channels /= 2;
    }
    features->add("norm5", batch_norm2d(channels));
    add("features", features);
    add("classifier", make<Linear>(channels, num_classes));
    detail::kaiming_normal_convs(*this, init::FanMode::fan_in, false);
    detail::zero_linear_biases(*this);
  }

  Tensor forward(const Tensor& input) override {
    const Tensor x = functional::adaptive_avg_pool2d(relu(call("features", input)), 1, 1);
    return call("classifier", x.flatten(1));
  }
};

}  // namespace

ModulePtr densenet121(std::int64_t num_classes) {
  return make<DenseNet>(std::vector<std::int64_t>{6, 12, 24, 16}, num_classes);
}

}  // namespace ds::nn::models
