#include "nn/models/blocks.hpp"
#include "nn/models/cifar.hpp"

namespace ds::nn::models {

namespace {

constexpr std::int64_t M = 0;  // a 2x2 max pool in a layer list

std::vector<std::int64_t> cifar_vgg_layers(int depth) {
  switch (depth) {
    case 11:
      return {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512};
    case 13:
      return {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512};
    case 16:
      return {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512};
    case 19:
      return {64, 64,  M,   128, 128, M, 256, 256, 256, 256,
              M,  512, 512, 512, 512, M, 512, 512, 512, 512};
    default:
      fail("cifar_vgg: no CIFAR VGG of depth ", depth, " (valid: 11, 13, 16, 19)");
  }
}

class CifarVGG : public detail::Composite {
 public:
  CifarVGG(int depth, std::int64_t num_classes) : Composite("vgg") {
    auto feature = make<Sequential>();
    std::int64_t in = 3;
    for (const std::int64_t v : cifar_vgg_layers(depth)) {
      if (v == M) {
        feature->add(make<MaxPool2d>(2, 2));
        continue;
      }
      feature->add(detail::conv(in, v, 3, 1, 1)).add(batch_norm2d(v)).add(make<ReLU>());
      in = v;
    }
    add("feature", feature);
    add("classifier", make<Linear>(in, num_classes));
    // The original's _initialize_weights: N(0, sqrt(2 / (k * k * out))) is kaiming-normal
    // with fan_out.
    detail::kaiming_normal_convs(*this, init::FanMode::fan_out, true);
    detail::fill_batchnorms(*this, 0.5, 0.0);
    detail::normal_linears(*this, 0.01, true);
  }

  Tensor forward(const Tensor& input) override {
    const Tensor x = functional::avg_pool2d(call("feature", input), Window{2, 2, 2, 2});
    return call("classifier", x.flatten(1));
  }
};

}  // namespace

ModulePtr cifar_vgg(int depth, std::int64_t num_classes) {
  return make<CifarVGG>(depth, num_classes);
}

}  // namespace ds::nn::models
