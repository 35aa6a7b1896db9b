#pragma once
// The CIFAR-10/100 models of the original DeepShift cifar10.py (its cifar10_models package),
// for 32x32 inputs, with PyTorch's parameter names. See docs/models.md for the sources.
#include <cstdint>

#include "nn/module.hpp"

namespace ds::nn::models {

// depth 20, 32, 44, 56, 110: He et al.'s CIFAR ResNets (16-32-64 channels, BasicBlocks with
// option-A zero-padding shortcuts, kaiming-normal Linear/Conv weights; akamaster's version).
// depth 18, 34, 50: the ImageNet widths (64-512) with a 3x3 stride-1 stem, no max pool,
// 1x1-conv + BN shortcuts and a 4x4 average pool (kuangliu's version), PyTorch default init.
// Children: conv1, bn1, layer1..layer3 (or layer4), linear; blocks name their shortcut
// "shortcut".
ModulePtr cifar_resnet(int depth, std::int64_t num_classes = 10);

// MobileNetV2 with the stem and the second stage at stride 1 and a 4x4 average pool
// (kuangliu's CIFAR version): conv1, bn1, layers.<i>.{conv1..3, bn1..3, shortcut}, conv2, bn2,
// linear.
ModulePtr cifar_mobilenetv2(std::int64_t num_classes = 10);

// depth 11, 13, 16, 19: VGG with batch norm and bias-free convolutions, a 2x2 average pool and
// one Linear 512-classes (the network-slimming VGG the original uses): feature.<i>,
// classifier. Init: conv N(0, 2 / (9 * out_channels)), BN weight 0.5, Linear N(0, 0.01).
ModulePtr cifar_vgg(int depth, std::int64_t num_classes = 10);

}  // namespace ds::nn::models
