#include "nn/models/blocks.hpp"
#include "nn/models/imagenet.hpp"

namespace ds::nn::models {

namespace {

constexpr std::int64_t M = 0;  // a 2x2 max pool in a layer list

// torchvision's configurations "A", "B", "D", "E".
std::vector<std::int64_t> vgg_layers(int depth) {
  switch (depth) {
    case 11:
      return {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
    case 13:
      return {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
    case 16:
      return {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M};
    case 19:
      return {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
              512, 512, 512, 512, M,   512, 512, 512, 512, M};
    default:
      fail("vgg: no VGG of depth ", depth, " (valid: 11, 13, 16, 19)");
  }
}

// features -> avgpool (adaptive, 7x7) -> flatten -> classifier, the layout AlexNet shares.
class PooledClassifierNet : public detail::Composite {
 public:
  using Composite::Composite;
  Tensor forward(const Tensor& input) override {
    return call("classifier", call("avgpool", call("features", input)).flatten(1));
  }
};

class VGG : public PooledClassifierNet {
 public:
  VGG(int depth, bool batch_norm, std::int64_t num_classes) : PooledClassifierNet("VGG") {
    auto features = make<Sequential>();
    std::int64_t in = 3;
    for (const std::int64_t v : vgg_layers(depth)) {
      if (v == M) {
        features->add(make<MaxPool2d>(2, 2));
        continue;
      }
      features->add(detail::conv(in, v, 3, 1, 1, true));
      if (batch_norm) features->add(batch_norm2d(v));
      features->add(make<ReLU>());
      in = v;
    }
    add("features", features);
    add("avgpool", make<AdaptiveAvgPool2d>(7, 7));
    add("classifier", make<Sequential>(std::vector<ModulePtr>{
                          make<Linear>(512 * 7 * 7, 4096), make<ReLU>(), make<Dropout>(0.5),
                          make<Linear>(4096, 4096), make<ReLU>(), make<Dropout>(0.5),
                          make<Linear>(4096, num_classes)}));
    detail::kaiming_normal_convs(*this, init::FanMode::fan_out, true);
    detail::normal_linears(*this, 0.01, true);
  }
};

class AlexNet : public PooledClassifierNet {
 public:
  explicit AlexNet(std::int64_t num_classes) : PooledClassifierNet("AlexNet") {
    using detail::conv;
    add("features",
        make<Sequential>(std::vector<ModulePtr>{
            conv(3, 64, 11, 4, 2, true), make<ReLU>(), make<MaxPool2d>(3, 2),
            conv(64, 192, 5, 1, 2, true), make<ReLU>(), make<MaxPool2d>(3, 2),
            conv(192, 384, 3, 1, 1, true), make<ReLU>(), conv(384, 256, 3, 1, 1, true),
            make<ReLU>(), conv(256, 256, 3, 1, 1, true), make<ReLU>(), make<MaxPool2d>(3, 2)}));
    add("avgpool", make<AdaptiveAvgPool2d>(6, 6));
    add("classifier",
        make<Sequential>(std::vector<ModulePtr>{
            make<Dropout>(0.5), make<Linear>(256 * 6 * 6, 4096), make<ReLU>(), make<Dropout>(0.5),
            make<Linear>(4096, 4096), make<ReLU>(), make<Linear>(4096, num_classes)}));
  }
};

}  // namespace

ModulePtr vgg(int depth, bool batch_norm, std::int64_t num_classes) {
  return make<VGG>(depth, batch_norm, num_classes);
}

ModulePtr alexnet(std::int64_t num_classes) { return make<AlexNet>(num_classes); }

}  // namespace ds::nn::models
