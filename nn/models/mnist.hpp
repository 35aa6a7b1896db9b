#pragma once
// The two MNIST models of the original DeepShift mnist.py (`--type linear` and `--type conv`).
// Both end in log_softmax, as the original's forward does; cross entropy on these outputs
// equals the NLL loss because log_softmax is idempotent.
#include <cstdint>

#include "nn/module.hpp"

namespace ds::nn::models {

// "simple FC": flatten, fc1 784-512, ReLU, dropout1 0.2, fc2 512-512, ReLU, dropout2 0.2,
// fc3 512-classes, log_softmax. Input [N, 1, 28, 28] (or [N, 784]).
ModulePtr linear_mnist(std::int64_t num_classes = 10);

// "simple conv": conv1 1->20 5x5, ReLU, maxpool 2, conv2 20->50 5x5, ReLU, maxpool 2,
// fc1 800-500, ReLU, fc2 500-classes, log_softmax. Input [N, 1, 28, 28].
ModulePtr conv_mnist(std::int64_t num_classes = 10);

}  // namespace ds::nn::models
