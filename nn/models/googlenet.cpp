#include "nn/models/blocks.hpp"
#include "nn/models/imagenet.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

// conv (no bias) + BN (eps 1e-3) + ReLU.
class BasicConv2d : public detail::Composite {
 public:
  BasicConv2d(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1,
              std::int64_t padding = 0)
      : Composite("BasicConv2d") {
    add("conv", detail::conv(in, out, kernel, stride, padding));
    add("bn", make<BatchNorm>(out, 2, 1e-3));
  }
  Tensor forward(const Tensor& x) override { return relu(call("bn", call("conv", x))); }
};

ModulePtr basic_conv(std::int64_t in, std::int64_t out, std::int64_t kernel,
                     std::int64_t stride = 1, std::int64_t padding = 0) {
  return make<BasicConv2d>(in, out, kernel, stride, padding);
}

ModulePtr chain(std::vector<ModulePtr> modules) { return make<Sequential>(std::move(modules)); }

class Inception : public detail::Composite {
 public:
  Inception(std::int64_t in, std::int64_t ch1x1, std::int64_t ch3x3red, std::int64_t ch3x3,
            std::int64_t ch5x5red, std::int64_t ch5x5, std::int64_t pool_proj)
      : Composite("Inception") {
    add("branch1", basic_conv(in, ch1x1, 1));
    add("branch2", chain({basic_conv(in, ch3x3red, 1), basic_conv(ch3x3red, ch3x3, 3, 1, 1)}));
    // A 3x3 where the paper has 5x5: torchvision's known deviation (pytorch/vision#906),
    // kept so that its checkpoints load.
    add("branch3", chain({basic_conv(in, ch5x5red, 1), basic_conv(ch5x5red, ch5x5, 3, 1, 1)}));
    add("branch4", chain({make<MaxPool2d>(3, 1, 1, true), basic_conv(in, pool_proj, 1)}));
  }
  Tensor forward(const Tensor& x) override {
    return cat({call("branch1", x), call("branch2", x), call("branch3", x), call("branch4", x)}, 1);
  }
};

class GoogLeNet : public detail::Composite {
 public:
  explicit GoogLeNet(std::int64_t num_classes) : Composite("GoogLeNet") {
    add("conv1", basic_conv(3, 64, 7, 2, 3));
    add("maxpool1", make<MaxPool2d>(3, 2, 0, true));
    add("conv2", basic_conv(64, 64, 1));
    add("conv3", basic_conv(64, 192, 3, 1, 1));
    add("maxpool2", make<MaxPool2d>(3, 2, 0, true));
    add("inception3a", make<Inception>(192, 64, 96, 128, 16, 32, 32));
    add("inception3b", make<Inception>(256, 128, 128, 192, 32, 96, 64));
    add("maxpool3", make<MaxPool2d>(3, 2, 0, true));
    add("inception4a", make<Inception>(480, 192, 96, 208, 16, 48, 64));
    add("inception4b", make<Inception>(512, 160, 112, 224, 24, 64, 64));
    add("inception4c", make<Inception>(512, 128, 128, 256, 24, 64, 64));
    add("inception4d", make<Inception>(512, 112, 144, 288, 32, 64, 64));
    add("inception4e", make<Inception>(528, 256, 160, 320, 32, 128, 128));
    add("maxpool4", make<MaxPool2d>(2, 2, 0, true));
    add("inception5a", make<Inception>(832, 256, 160, 320, 32, 128, 128));
    add("inception5b", make<Inception>(832, 384, 192, 384, 48, 128, 128));
    add("avgpool", make<AdaptiveAvgPool2d>(1, 1));
    add("dropout", make<Dropout>(0.2));
    add("fc", make<Linear>(1024, num_classes));
    detail::normal_convs_and_linears(*this, 0.01);
  }

  // Every child in order (no auxiliary classifiers), flattening before the classifier.
  Tensor forward(const Tensor& input) override {
    Tensor x = input;
    for (const auto& child : named_children()) {
      if (child.name == "dropout") x = x.flatten(1);
      x = (*child.module)(x);
    }
    return x;
  }
};

}  // namespace

ModulePtr googlenet(std::int64_t num_classes) { return make<GoogLeNet>(num_classes); }

}  // namespace ds::nn::models
