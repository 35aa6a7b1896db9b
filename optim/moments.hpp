#pragma once
// The first and second moment estimates shared by Adam, RAdam and Ranger (internal header).
#include "optim/optimizer.hpp"

namespace ds::optim {

struct Moments {
  Tensor exp_avg;     // m
  Tensor exp_avg_sq;  // v
};

// m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g^2 in place, both starting from zero.
Moments update_moments(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                       ParamState& state);

}  // namespace ds::optim
