#pragma once
// The one way to define a differentiable operation: a forward computation and a backward
// closure that captures only what it needs. Every built-in op, the straight-through
// estimators and the shift layers are defined through it.
#include <functional>
#include <string>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "tensor/tensor.hpp"

namespace ds::autograd {

// needs_grad[i] says whether input i wants a gradient; backward may leave the others undefined.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output,
                                                     const std::vector<bool>& needs_grad)>;

// Attaches `backward` to `result` when grad mode is on and any input requires grad; returns
// `result`. `result` must be a fresh tensor computed from `inputs` without recording.
Tensor record(const char* name, Tensor result, const std::vector<Tensor>& inputs,
              BackwardFn backward);

// Runs `forward` with recording off, then records `backward` for its result.
template <typename Forward>
Tensor custom_function(const char* name, const std::vector<Tensor>& inputs, Forward&& forward,
                       BackwardFn backward) {
  Tensor result;
  {
    NoGradGuard no_grad;
    result = forward(inputs);
  }
  return record(name, std::move(result), inputs, std::move(backward));
}

// A tensor captured for backward together with its storage version, so that an in-place
// change between forward and backward is reported instead of giving wrong gradients.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& tensor);
  const Tensor& get(const char* op) const;  // throws ds::Error if modified in place since

 private:
  Tensor tensor_;
  std::uint64_t version_ = 0;
};

}  // namespace ds::autograd
