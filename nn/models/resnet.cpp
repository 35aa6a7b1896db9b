#include "nn/models/blocks.hpp"
#include "nn/models/imagenet.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

using detail::conv;

// Adds torchvision's "downsample" (conv1x1 with the block's stride + BN) where the block
// changes the shape; the residual is the identity elsewhere.
class ResidualBlock : public detail::Composite {
 public:
  using Composite::Composite;

 protected:
  void add_downsample(std::int64_t in, std::int64_t out, std::int64_t stride) {
    has_downsample_ = stride != 1 || in != out;
    if (has_downsample_)
      add("downsample",
          make<Sequential>(std::vector<ModulePtr>{conv(in, out, 1, stride), batch_norm2d(out)}));
  }
  Tensor identity(const Tensor& x) const { return has_downsample_ ? call("downsample", x) : x; }

 private:
  bool has_downsample_ = false;
};

class BasicBlock : public ResidualBlock {
 public:
  static constexpr std::int64_t expansion = 1;

  BasicBlock(std::int64_t in, std::int64_t planes, std::int64_t stride)
      : ResidualBlock("BasicBlock") {
    add("conv1", conv(in, planes, 3, stride, 1));
    add("bn1", batch_norm2d(planes));
    add("relu", make<ReLU>());
    add("conv2", conv(planes, planes, 3, 1, 1));
    add("bn2", batch_norm2d(planes));
    add_downsample(in, planes, stride);
  }

  Tensor forward(const Tensor& x) override {
    const Tensor out = call("relu", call("bn1", call("conv1", x)));
    return call("relu", call("bn2", call("conv2", out)) + identity(x));
  }
};

class Bottleneck : public ResidualBlock {
 public:
  static constexpr std::int64_t expansion = 4;

  Bottleneck(std::int64_t in, std::int64_t planes, std::int64_t stride)
      : ResidualBlock("Bottleneck") {
    add("conv1", conv(in, planes, 1));
    add("bn1", batch_norm2d(planes));
    add("conv2", conv(planes, planes, 3, stride, 1));
    add("bn2", batch_norm2d(planes));
    add("conv3", conv(planes, planes * expansion, 1));
    add("bn3", batch_norm2d(planes * expansion));
    add("relu", make<ReLU>());
    add_downsample(in, planes * expansion, stride);
  }

  Tensor forward(const Tensor& x) override {
    Tensor out = call("relu", call("bn1", call("conv1", x)));
    out = call("relu", call("bn2", call("conv2", out)));
    return call("relu", call("bn3", call("conv3", out)) + identity(x));
  }
};

template <typename Block>
class ResNet : public detail::Composite {
 public:
  ResNet(const std::vector<std::int64_t>& blocks, std::int64_t num_classes) : Composite("ResNet") {
    add("conv1", conv(3, 64, 7, 2, 3));
    add("bn1", batch_norm2d(64));
    add("relu", make<ReLU>());
    add("maxpool", make<MaxPool2d>(3, 2, 1));
    std::int64_t in = 64;
    for (std::size_t stage = 0; stage < 4; ++stage) {
      const std::int64_t planes = std::int64_t{64} << stage;
      auto layer = make<Sequential>();
      for (std::int64_t b = 0; b < blocks[stage]; ++b) {
        layer->add(make<Block>(in, planes, stage > 0 && b == 0 ? 2 : 1));
        in = planes * Block::expansion;
      }
      add(concat("layer", stage + 1), layer);
    }
    add("avgpool", make<AdaptiveAvgPool2d>(1, 1));
    add("fc", make<Linear>(in, num_classes));
    detail::kaiming_normal_convs(*this, init::FanMode::fan_out, false);
  }

  Tensor forward(const Tensor& input) override {
    Tensor x = call("maxpool", call("relu", call("bn1", call("conv1", input))));
    for (const char* layer : {"layer1", "layer2", "layer3", "layer4"}) x = call(layer, x);
    return call("fc", call("avgpool", x).flatten(1));
  }
};

}  // namespace

ModulePtr resnet(int depth, std::int64_t num_classes) {
  using Blocks = std::vector<std::int64_t>;
  switch (depth) {
    case 18:
      return make<ResNet<BasicBlock>>(Blocks{2, 2, 2, 2}, num_classes);
    case 34:
      return make<ResNet<BasicBlock>>(Blocks{3, 4, 6, 3}, num_classes);
    case 50:
      return make<ResNet<Bottleneck>>(Blocks{3, 4, 6, 3}, num_classes);
    case 101:
      return make<ResNet<Bottleneck>>(Blocks{3, 4, 23, 3}, num_classes);
    case 152:
      return make<ResNet<Bottleneck>>(Blocks{3, 8, 36, 3}, num_classes);
    default:
      fail("resnet: no ImageNet ResNet of depth ", depth, " (valid: 18, 34, 50, 101, 152)");
  }
}

}  // namespace ds::nn::models
