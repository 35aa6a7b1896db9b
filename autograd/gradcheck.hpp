#pragma once
// Compares the analytic gradient of a function of tensors with central finite differences,
// in f64, over the full Jacobian (every output element against every input element).
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace ds::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatch: input, element, analytic and numeric values
};

// `inputs` must be f64; those that require grad are checked.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace ds::autograd
