// exp, exp2, log, log2, sqrt, abs, sign, floor, round, clamp, relu and their gradients.
// floor, round and sign are piecewise constant: their gradient is zero (the straight-through
// versions used by DeepShift live in shiftops/).
#include <cmath>
#include <limits>
#include <numbers>

#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

using autograd::record;
using autograd::SavedTensor;
using detail::run_unary;
using detail::scalar_like;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

namespace {

Tensor floating_unary(UnaryOp op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    fail(op_name(op), ": needs a floating-point tensor, got ", describe(x));
  return run_unary(op, x);
}

// The gradient depends on the output only (d exp = exp, d sqrt = 1 / (2 sqrt)).
template <typename Grad>
Tensor from_output(UnaryOp op, const char* name, const Tensor& x, Grad grad) {
  Tensor out = floating_unary(op, x);
  return record(name, out, {x}, [so = SavedTensor(out), name, grad](const Tensor& g, const Needs&) {
    return Grads{grad(g, so.get(name))};
  });
}

// The gradient depends on the input only.
template <typename Grad>
Tensor from_input(UnaryOp op, const char* name, const Tensor& x, Grad grad) {
  Tensor out = op == UnaryOp::abs ? run_unary(op, x) : floating_unary(op, x);
  return record(name, out, {x}, [sx = SavedTensor(x), name, grad](const Tensor& g, const Needs&) {
    return Grads{grad(g, sx.get(name))};
  });
}

Tensor piecewise_constant(UnaryOp op, const Tensor& x) {
  return record(op_name(op), run_unary(op, x), {x}, [](const Tensor& g, const Needs&) {
    return Grads{Tensor::zeros(g.shape(), g.dtype(), g.device())};
  });
}

}  // namespace

Tensor exp(const Tensor& x) {
  return from_output(UnaryOp::exp, "exp", x,
                     [](const Tensor& g, const Tensor& y) { return g * y; });
}

Tensor exp2(const Tensor& x) {
  return from_output(UnaryOp::exp2, "exp2", x,
                     [](const Tensor& g, const Tensor& y) { return g * y * std::numbers::ln2; });
}

Tensor log(const Tensor& x) {
  return from_input(UnaryOp::log, "log", x, [](const Tensor& g, const Tensor& v) { return g / v; });
}

Tensor log2(const Tensor& x) {
  return from_input(UnaryOp::log2, "log2", x,
                    [](const Tensor& g, const Tensor& v) { return g / (v * std::numbers::ln2); });
}

Tensor sqrt(const Tensor& x) {
  return from_output(UnaryOp::sqrt, "sqrt", x,
                     [](const Tensor& g, const Tensor& y) { return g / (y * 2.0); });
}

Tensor abs(const Tensor& x) {
  return from_input(UnaryOp::abs, "abs", x,
                    [](const Tensor& g, const Tensor& v) { return g * sign(v); });
}

Tensor sign(const Tensor& x) { return piecewise_constant(UnaryOp::sign, x); }
Tensor floor(const Tensor& x) { return piecewise_constant(UnaryOp::floor, x); }
Tensor round(const Tensor& x) { return piecewise_constant(UnaryOp::round, x); }

Tensor clamp(const Tensor& x, std::optional<double> low, std::optional<double> high) {
  const double lo = low.value_or(-std::numeric_limits<double>::infinity());
  const double hi = high.value_or(std::numeric_limits<double>::infinity());
  if (lo > hi) fail("clamp: lower bound ", lo, " is above upper bound ", hi);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device()).clamp(x, lo, hi, out);
  // The gradient passes where the input lies within the bounds (inclusive), as in PyTorch.
  return record("clamp", out, {x}, [sx = SavedTensor(x), lo, hi](const Tensor& g, const Needs&) {
    const Tensor& v = sx.get("clamp");
    const Tensor inside = mul(ge(v, scalar_like(lo, v)), le(v, scalar_like(hi, v)));
    return Grads{g * inside.to(g.dtype())};
  });
}

Tensor relu(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device()).clamp(x, 0.0, std::numeric_limits<double>::infinity(), out);
  return record("relu", out, {x}, [so = SavedTensor(out)](const Tensor& g, const Needs&) {
    const Tensor& y = so.get("relu");
    // The back-end's single pass takes operands of one dtype and device; others meet the
    // composed form's checks and conversions.
    if (g.dtype() != y.dtype() || g.device() != y.device())
      return Grads{where(gt(y, scalar_like(0, y)), g, scalar_like(0, g))};
    Tensor grad = Tensor::empty(g.shape(), g.dtype(), g.device());
    backend_for(g.device()).relu_backward(y, g, grad);
    return Grads{grad};
  });
}

}  // namespace ds
