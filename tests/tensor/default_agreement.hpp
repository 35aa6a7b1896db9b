#pragma once
// A CPU convolution kernel of the device interface against Backend's composed default for the
// same call: the forward, both gradients together, and each gradient alone into buffers holding
// other values (a kernel writes what it is asked for and leaves the rest).
#include <catch2/catch.hpp>
#include <functional>
#include <vector>

#include "deepshift.hpp"
#include "support/golden.hpp"

namespace ds::test {

// forward(out) and backward(grad_out, grad_x, grad_weight), the kernel's and the default's.
struct ConvolutionCalls {
  std::function<void(const Tensor&)> forward, default_forward;
  std::function<void(const Tensor&, const Tensor&, const Tensor&)> backward, default_backward;
};

inline void require_default_agreement(const ConvolutionCalls& calls, const Tensor& x,
                                      const Tensor& weight, const Shape& out_shape,
                                      Generator& gen) {
  const Tensor out = Tensor::empty(out_shape), out_default = Tensor::empty(out_shape);
  calls.forward(out);
  calls.default_forward(out_default);
  CHECK(allclose(out, out_default, 1e-5, 1e-5).ok);

  const Tensor g = randn(out_shape, DType::f32, gen);
  const Tensor grad_x = Tensor::empty(x.shape()), grad_x_default = Tensor::empty(x.shape());
  const Tensor grad_w = Tensor::empty(weight.shape());
  const Tensor grad_w_default = Tensor::empty(weight.shape());
  // A weight's gradient sums a few thousand products of random normals (7 images of up to
  // 32x32 positions): summed in another order it moves by up to about 3e-5.
  calls.backward(g, grad_x, grad_w);
  calls.default_backward(g, grad_x_default, grad_w_default);
  CHECK(allclose(grad_x, grad_x_default, 1e-5, 1e-5).ok);
  CHECK(allclose(grad_w, grad_w_default, 1e-4, 1e-4).ok);
  grad_x.fill_(7.0);
  grad_w.fill_(7.0);
  calls.backward(g, grad_x, Tensor());
  CHECK(grad_w.to_vector<float>() == std::vector<float>(grad_w.numel(), 7.0f));
  calls.backward(g, Tensor(), grad_w);
  CHECK(allclose(grad_x, grad_x_default, 1e-5, 1e-5).ok);
  CHECK(allclose(grad_w, grad_w_default, 1e-4, 1e-4).ok);
}

}  // namespace ds::test
