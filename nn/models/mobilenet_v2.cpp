#include "nn/models/blocks.hpp"
#include "nn/models/imagenet.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

using detail::conv;

// torchvision's Conv2dNormActivation with ReLU6: Sequential(conv, BN, ReLU6), "same" padding.
ModulePtr conv_bn_relu6(std::int64_t in, std::int64_t out, std::int64_t kernel,
                        std::int64_t stride = 1, std::int64_t groups = 1) {
  return make<Sequential>(
      std::vector<ModulePtr>{conv(in, out, kernel, stride, (kernel - 1) / 2, false, groups),
                             batch_norm2d(out), make<ReLU6>()});
}

// conv = Sequential([expand 1x1,] depthwise 3x3, project 1x1, BN); adds the input when the
// shapes allow (stride 1, same channels).
class InvertedResidual : public detail::Composite {
 public:
  InvertedResidual(std::int64_t in, std::int64_t out, std::int64_t stride, std::int64_t expand)
      : Composite("InvertedResidual"), residual_(stride == 1 && in == out) {
    const std::int64_t hidden = in * expand;
    auto layers = make<Sequential>();
    if (expand != 1) layers->add(conv_bn_relu6(in, hidden, 1));
    layers->add(conv_bn_relu6(hidden, hidden, 3, stride, hidden));
    layers->add(conv(hidden, out, 1)).add(batch_norm2d(out));
    add("conv", layers);
  }
  Tensor forward(const Tensor& x) override {
    return residual_ ? x + call("conv", x) : call("conv", x);
  }

 private:
  bool residual_;
};

class MobileNetV2 : public detail::Composite {
 public:
  explicit MobileNetV2(std::int64_t num_classes) : Composite("MobileNetV2") {
    struct Stage {
      std::int64_t expand, out, blocks, stride;
    };
    const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                            {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    auto features = make<Sequential>();
    features->add(conv_bn_relu6(3, 32, 3, 2));
    std::int64_t in = 32;
    for (const Stage& s : stages)
      for (std::int64_t b = 0; b < s.blocks; ++b) {
        features->add(make<InvertedResidual>(in, s.out, b == 0 ? s.stride : 1, s.expand));
        in = s.out;
      }
    features->add(conv_bn_relu6(in, 1280, 1));
    add("features", features);
    add("classifier", make<Sequential>(std::vector<ModulePtr>{make<Dropout>(0.2),
                                                              make<Linear>(1280, num_classes)}));
    detail::kaiming_normal_convs(*this, init::FanMode::fan_out, true);
    detail::normal_linears(*this, 0.01, true);
  }

  Tensor forward(const Tensor& input) override {
    const Tensor x = functional::adaptive_avg_pool2d(call("features", input), 1, 1);
    return call("classifier", x.flatten(1));
  }
};

}  // namespace

ModulePtr mobilenet_v2(std::int64_t num_classes) { return make<MobileNetV2>(num_classes); }

}  // namespace ds::nn::models
