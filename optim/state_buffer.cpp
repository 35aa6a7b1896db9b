#include "optim/state_buffer.hpp"

namespace ds::optim {

const Tensor& state_buffer(ParamState& state, const char* name, const Tensor& param,
                           double initial) {
  auto found = state.buffers.find(name);
  if (found == state.buffers.end()) {
    found = state.buffers
                .emplace(name, Tensor::full(param.shape(), initial, param.dtype(), param.device()))
                .first;
  }
  return found->second;
}

}  // namespace ds::optim
