// Activations and dropout beyond the tensor library's relu.
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

Tensor relu6(const Tensor& x) { return clamp(x, 0.0, 6.0); }

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  if (p < 0.0 || p > 1.0) fail("dropout: probability ", p, " is outside [0, 1]");
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  const Tensor keep = bernoulli(x.shape(), 1.0 - p, x.dtype(), gen).to(x.device());
  return x * (keep / (1.0 - p));
}

}  // namespace ds::nn::functional
