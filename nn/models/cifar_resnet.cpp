#include "nn/models/blocks.hpp"
#include "nn/models/cifar.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

using detail::conv;

// The shortcut of a block whose input and output shapes differ: option A (zero padding, no
// parameters) for the 16-32-64 ResNets, a strided 1x1 convolution with BN otherwise. Blocks
// whose shapes match hold an empty Sequential (the identity), as the original does.
enum class Shortcut { zero_pad, projection };

ModulePtr shortcut(Shortcut kind, std::int64_t in, std::int64_t out, std::int64_t stride) {
  if (stride == 1 && in == out) return make<Sequential>();
  if (kind == Shortcut::zero_pad) return make<ShortcutA>(out);
  return make<Sequential>(std::vector<ModulePtr>{conv(in, out, 1, stride), batch_norm2d(out)});
}

class BasicBlock : public detail::Composite {
 public:
  static constexpr std::int64_t expansion = 1;

  BasicBlock(std::int64_t in, std::int64_t planes, std::int64_t stride, Shortcut kind)
      : Composite("BasicBlock") {
    add("conv1", conv(in, planes, 3, stride, 1));
    add("bn1", batch_norm2d_relu(planes));
    add("conv2", conv(planes, planes, 3, 1, 1));
    add("bn2", batch_norm2d(planes));
    add("shortcut", shortcut(kind, in, planes, stride));
  }

  Tensor forward(const Tensor& x) override {
    const Tensor out = call("conv2", call("bn1", call("conv1", x)));
    return call_add_relu("bn2", out, call("shortcut", x));
  }
};

class Bottleneck : public detail::Composite {
 public:
  static constexpr std::int64_t expansion = 4;

  Bottleneck(std::int64_t in, std::int64_t planes, std::int64_t stride, Shortcut)
      : Composite("Bottleneck") {
    add("conv1", conv(in, planes, 1));
    add("bn1", batch_norm2d_relu(planes));
    add("conv2", conv(planes, planes, 3, stride, 1));
    add("bn2", batch_norm2d_relu(planes));
    add("conv3", conv(planes, expansion * planes, 1));
    add("bn3", batch_norm2d(expansion * planes));
    add("shortcut", shortcut(Shortcut::projection, in, expansion * planes, stride));
  }

  Tensor forward(const Tensor& x) override {
    Tensor out = call("bn1", call("conv1", x));
    out = call("conv3", call("bn2", call("conv2", out)));
    return call_add_relu("bn3", out, call("shortcut", x));
  }
};

struct ResNetSpec {
  std::vector<std::int64_t> widths, blocks;
  bool bottleneck;
};

class CifarResNet : public detail::Composite {
 public:
  CifarResNet(const ResNetSpec& spec, std::int64_t num_classes)
      : Composite("ResNet"), stages_(spec.widths.size()) {
    // The 3-stage (16-32-64) nets are He et al.'s, with option-A shortcuts; the 4-stage ones
    // are the ImageNet widths with projection shortcuts.
    const Shortcut kind = stages_ == 3 ? Shortcut::zero_pad : Shortcut::projection;
    const std::int64_t expansion = spec.bottleneck ? Bottleneck::expansion : BasicBlock::expansion;
    std::int64_t in = spec.widths[0];
    add("conv1", conv(3, in, 3, 1, 1));
    add("bn1", batch_norm2d_relu(in));
    for (std::size_t stage = 0; stage < stages_; ++stage) {
      auto layer = make<Sequential>();
      for (std::int64_t b = 0; b < spec.blocks[stage]; ++b) {
        const std::int64_t stride = stage > 0 && b == 0 ? 2 : 1;
        const std::int64_t planes = spec.widths[stage];
        if (spec.bottleneck)
          layer->add(make<Bottleneck>(in, planes, stride, kind));
        else
          layer->add(make<BasicBlock>(in, planes, stride, kind));
        in = planes * expansion;
      }
      add(concat("layer", stage + 1), layer);
    }
    add("linear", make<Linear>(in, num_classes));
    // akamaster's _weights_init; the 4-stage nets keep PyTorch's defaults.
    if (kind == Shortcut::zero_pad) {
      detail::kaiming_normal_convs(*this, init::FanMode::fan_in, false);
      detail::kaiming_normal_linears(*this);
    }
  }

  Tensor forward(const Tensor& input) override {
    Tensor x = call("bn1", call("conv1", input));
    for (std::size_t stage = 0; stage < stages_; ++stage) x = call(concat("layer", stage + 1), x);
    // Option A pools the whole final map (8x8 for 32x32 inputs); the 4-stage nets pool 4x4.
    const std::int64_t k = stages_ == 3 ? x.shape()[3] : 4;
    x = functional::avg_pool2d(x, Window{k, k, k, k});
    return call("linear", x.flatten(1));
  }

 private:
  std::size_t stages_;
};

ResNetSpec spec_for_depth(int depth) {
  switch (depth) {
    case 18:
      return {{64, 128, 256, 512}, {2, 2, 2, 2}, false};
    case 34:
      return {{64, 128, 256, 512}, {3, 4, 6, 3}, false};
    case 50:
      return {{64, 128, 256, 512}, {3, 4, 6, 3}, true};
    case 20:
    case 32:
    case 44:
    case 56:
    case 110: {
      const std::int64_t n = (depth - 2) / 6;
      return {{16, 32, 64}, {n, n, n}, false};
    }
    default:
      fail("cifar_resnet: no CIFAR ResNet of depth ", depth,
           " (valid: 20, 32, 44, 56, 110, 18, 34, 50)");
  }
}

}  // namespace

ModulePtr cifar_resnet(int depth, std::int64_t num_classes) {
  return make<CifarResNet>(spec_for_depth(depth), num_classes);
}

}  // namespace ds::nn::models
