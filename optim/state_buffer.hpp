#pragma once
// Lazily created per-parameter buffers for the optimizers' state (internal header).
#include "optim/optimizer.hpp"

namespace ds::optim {

// The buffer `name` of `state`, created at the parameter's shape, dtype and device and filled
// with `initial` the first time it is asked for (or restored by load_state).
const Tensor& state_buffer(ParamState& state, const char* name, const Tensor& param,
                           double initial = 0.0);

}  // namespace ds::optim
