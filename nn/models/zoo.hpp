#pragma once
// The model zoo by name, as the trainers' --arch option names the models:
//   mnist:             linear, conv
//   cifar10, cifar100: resnet20, resnet32, resnet44, resnet56, resnet110, resnet18, resnet34,
//                      resnet50, mobilenetv2, vgg11, vgg13, vgg16, vgg19
//   imagenet:          resnet18, resnet34, resnet50, resnet101, resnet152, vgg11, vgg13, vgg16,
//                      vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn, alexnet, googlenet,
//                      densenet121, mobilenet_v2
#include <cstdint>
#include <string>
#include <vector>

#include "nn/models/cifar.hpp"
#include "nn/models/imagenet.hpp"
#include "nn/models/mnist.hpp"

namespace ds::nn::models {

std::vector<std::string> list_datasets();
// The architectures of `dataset`, in the order above; ds::Error for an unknown dataset.
std::vector<std::string> list_models(const std::string& dataset);
// 10 for mnist and cifar10, 100 for cifar100, 1000 for imagenet.
std::int64_t default_num_classes(const std::string& dataset);

// A freshly initialised model. num_classes 0 means the dataset's. An unknown dataset or
// architecture is a ds::Error listing the valid names.
ModulePtr create(const std::string& dataset, const std::string& arch, std::int64_t num_classes = 0);

}  // namespace ds::nn::models
