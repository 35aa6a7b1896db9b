#include "nn/models/blocks.hpp"
#include "nn/models/cifar.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

using detail::conv;

// Expand (1x1), depthwise 3x3, project (1x1). Stride-1 blocks add a shortcut: the identity,
// or a 1x1 conv + BN where the channel count changes (kuangliu's variant; torchvision's has
// no shortcut there).
class InvertedBlock : public detail::Composite {
 public:
  InvertedBlock(std::int64_t in, std::int64_t out, std::int64_t expansion, std::int64_t stride)
      : Composite("Block"), stride_(stride) {
    const std::int64_t planes = expansion * in;
    add("conv1", conv(in, planes, 1));
    add("bn1", batch_norm2d_relu(planes));
    add("conv2", conv(planes, planes, 3, stride, 1, false, planes));
    add("bn2", batch_norm2d_relu(planes));
    add("conv3", conv(planes, out, 1));
    add("bn3", batch_norm2d(out));
    ModulePtr shortcut = make<Sequential>();
    if (stride == 1 && in != out)
      shortcut = make<Sequential>(std::vector<ModulePtr>{conv(in, out, 1), batch_norm2d(out)});
    add("shortcut", shortcut);
  }

  Tensor forward(const Tensor& x) override {
    Tensor out = call("bn1", call("conv1", x));
    out = call("bn2", call("conv2", out));
    out = call("bn3", call("conv3", out));
    return stride_ == 1 ? out + call("shortcut", x) : out;
  }

 private:
  std::int64_t stride_;
};

class CifarMobileNetV2 : public detail::Composite {
 public:
  explicit CifarMobileNetV2(std::int64_t num_classes) : Composite("MobileNetV2") {
    struct Stage {
      std::int64_t expansion, out, blocks, stride;
    };
    // MobileNetV2's table with the second stage's stride 2 -> 1 for 32x32 inputs.
    const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
                            {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    add("conv1", conv(3, 32, 3, 1, 1));
    add("bn1", batch_norm2d_relu(32));
    auto layers = make<Sequential>();
    std::int64_t in = 32;
    for (const Stage& s : stages)
      for (std::int64_t b = 0; b < s.blocks; ++b) {
        layers->add(make<InvertedBlock>(in, s.out, s.expansion, b == 0 ? s.stride : 1));
        in = s.out;
      }
    add("layers", layers);
    add("conv2", conv(320, 1280, 1));
    add("bn2", batch_norm2d_relu(1280));
    add("linear", make<Linear>(1280, num_classes));
  }

  Tensor forward(const Tensor& input) override {
    Tensor x = call("bn1", call("conv1", input));
    x = call("bn2", call("conv2", call("layers", x)));
    x = functional::avg_pool2d(x, Window{4, 4, 4, 4});
    return call("linear", x.flatten(1));
  }
};

}  // namespace

ModulePtr cifar_mobilenetv2(std::int64_t num_classes) {
  return make<CifarMobileNetV2>(num_classes);
}

}  // namespace ds::nn::models
