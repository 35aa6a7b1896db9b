#pragma once
// Turning FP32 models into DeepShift models, and preparing them for evaluation and saving.
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "shiftops/layers.hpp"

namespace ds::shift {

struct ConversionOptions {
  ShiftType type = ShiftType::PS;
  ShiftOptions shift;
  // Start from the FP32 layer's weights (Q keeps them; PS takes their exponents and signs);
  // otherwise the new layers start from their own initialisation.
  bool convert_weights = false;
  // Convert every Linear regardless of depth, without counting it (the original's default for
  // convolutional models); otherwise Linears count toward the depth like convolutions.
  bool convert_all_linear = true;
};

// Depth 1000 (or any depth above the layer count) converts every layer.
inline constexpr int kConvertAll = 1000;

// Replaces Linear and Conv2d layers by shift layers, walking the module tree depth first in
// reverse definition order (from the output end backwards, as the original code does),
// recursing into a container before looking at it. A Conv2d is converted while fewer than
// `depth` layers have been converted, and counts. Returns the number counted.
int convert_to_shift(nn::Module& model, int depth, const ConversionOptions& options);

// Rounds every shift layer's stored parameters (see ShiftLayer::round_weights_).
void round_shift_weights(nn::Module& model);

struct NamedShiftLayer {
  std::string name;
  ShiftLayer* layer;
};
std::vector<NamedShiftLayer> shift_layers(nn::Module& model);
// True when no FP32 Linear or Conv2d is left.
bool is_fully_shift(nn::Module& model);

// The shift L2 term the trainers add to the loss for weight decay wd > 0:
// wd / 2 * sum over every `.shift` parameter of (2^shift)^2, on the unrounded shifts.
Tensor shift_l2_penalty(nn::Module& model, double weight_decay);

}  // namespace ds::shift
