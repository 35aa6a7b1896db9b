#pragma once
// Batch normalisation's fused passes, as each back-end runs them (Backend::batch_norm and
// Backend::batch_norm_backward). nn/functional/normalization.cpp validates the arguments,
// updates the running statistics and records the passes for autograd; the back-ends only loop.
#include "tensor/backend.hpp"
#include "tensor/tensor.hpp"

namespace ds {

// The forward: y = (x - mean) * invstd * weight + bias, + residual, then a relu.
struct BatchNormForward {
  BatchNormLayout layout;
  Tensor x;                      // contiguous, f32 or f64
  Tensor weight, bias;           // [C] contiguous of x's dtype, each optional
  Tensor given_mean, given_var;  // [C] f64 contiguous: inference on given statistics, or undefined
  double eps = 1e-5;
  bool relu = false;
  Tensor residual;  // like x, added before the relu; only with relu
  Tensor stats;     // [3, C] f64, written: mean, 1 / sqrt(var + eps), the biased variance
  Tensor y;         // like x, written
};

// The backward, the closed form of the composed ops' gradients (the terms through the batch
// statistics included unless they were given).
struct BatchNormBackward {
  BatchNormLayout layout;
  Tensor grad;    // like x, contiguous
  Tensor x;       // the forward's
  Tensor output;  // the forward's y when its ending had a relu (it masks grad), else undefined
  Tensor stats;   // the forward's
  Tensor weight;  // [C] of x's dtype, or undefined
  bool given_statistics = false;
  Tensor grad_x;         // like x, written when defined
  Tensor grad_residual;  // like x, written when defined: the masked gradient
  Tensor sums;  // [2, C] f64, written when defined: sum(g * xhat) and sum(g), g masked by the relu
};

}  // namespace ds
