#pragma once
// The ImageNet models exactly as torchvision 0.14 defines them: the same modules, the same
// state-dict keys (so torchvision checkpoints load one to one) and torchvision's
// initialisation. Inputs are [N, 3, H, W]; 224x224 is the trained size, but every model here
// ends in an adaptive average pool and accepts smaller images (see docs/models.md for each
// model's smallest size).
#include <cstdint>

#include "nn/module.hpp"

namespace ds::nn::models {

// depth 18, 34 (BasicBlock), 50, 101, 152 (Bottleneck, stride in the 3x3 conv: "ResNet v1.5").
ModulePtr resnet(int depth, std::int64_t num_classes = 1000);

// depth 11, 13, 16, 19 (configurations A, B, D, E), with or without batch norm.
ModulePtr vgg(int depth, bool batch_norm, std::int64_t num_classes = 1000);

ModulePtr alexnet(std::int64_t num_classes = 1000);

// GoogLeNet (Inception v1) with aux_logits=False and transform_input=False. torchvision draws
// its weights from a normal(0, 0.01) truncated at +-2, i.e. 200 standard deviations: a plain
// normal(0, 0.01) here.
ModulePtr googlenet(std::int64_t num_classes = 1000);

ModulePtr densenet121(std::int64_t num_classes = 1000);

ModulePtr mobilenet_v2(std::int64_t num_classes = 1000);

}  // namespace ds::nn::models
