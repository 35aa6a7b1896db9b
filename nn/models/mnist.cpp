#include "nn/models/mnist.hpp"

#include "nn/models/blocks.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::models {

namespace {

class LinearMNIST : public detail::Composite {
 public:
  explicit LinearMNIST(std::int64_t num_classes) : Composite("LinearMNIST") {
    add("fc1", make<Linear>(28 * 28, 512));
    add("dropout1", make<Dropout>(0.2));
    add("fc2", make<Linear>(512, 512));
    add("dropout2", make<Dropout>(0.2));
    add("fc3", make<Linear>(512, num_classes));
  }

  Tensor forward(const Tensor& input) override {
    Tensor x = call("dropout1", relu(call("fc1", input.reshape({-1, 28 * 28}))));
    x = call("dropout2", relu(call("fc2", x)));
    return log_softmax(call("fc3", x), 1);
  }
};

class ConvMNIST : public detail::Composite {
 public:
  explicit ConvMNIST(std::int64_t num_classes) : Composite("ConvMNIST") {
    add("conv1", detail::conv(1, 20, 5, 1, 0, true));
    add("conv2", detail::conv(20, 50, 5, 1, 0, true));
    add("fc1", make<Linear>(4 * 4 * 50, 500));
    add("fc2", make<Linear>(500, num_classes));
  }

  Tensor forward(const Tensor& input) override {
    const Window pool{2, 2, 2, 2};
    Tensor x = functional::max_pool2d(relu(call("conv1", input)), pool);
    x = functional::max_pool2d(relu(call("conv2", x)), pool);
    x = relu(call("fc1", x.reshape({-1, 4 * 4 * 50})));
    return log_softmax(call("fc2", x), 1);
  }
};

}  // namespace

ModulePtr linear_mnist(std::int64_t num_classes) { return make<LinearMNIST>(num_classes); }
ModulePtr conv_mnist(std::int64_t num_classes) { return make<ConvMNIST>(num_classes); }

}  // namespace ds::nn::models
