// add, sub, mul, div, pow, maximum, minimum, neg: forward kernels and their gradients. A
// broadcast operand receives its gradient summed back to its own shape.
#include <cmath>
#include <numbers>

#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

using autograd::record;
using autograd::SavedTensor;
using detail::run_binary;
using detail::scalar_like;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

Tensor add(const Tensor& a, const Tensor& b) {
  return record(
      "add", run_binary(BinaryOp::add, a, b), {a, b},
      [sa = a.shape(), sb = b.shape()](const Tensor& g, const Needs& needs) {
        return Grads{needs[0] ? sum_to(g, sa) : Tensor(), needs[1] ? sum_to(g, sb) : Tensor()};
      });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return record(
      "sub", run_binary(BinaryOp::sub, a, b), {a, b},
      [sa = a.shape(), sb = b.shape()](const Tensor& g, const Needs& needs) {
        return Grads{needs[0] ? sum_to(g, sa) : Tensor(), needs[1] ? sum_to(neg(g), sb) : Tensor()};
      });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return record("mul", run_binary(BinaryOp::mul, a, b), {a, b},
                [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g, const Needs& needs) {
                  const Tensor& x = sa.get("mul");
                  const Tensor& y = sb.get("mul");
                  return Grads{needs[0] ? sum_to(g * y, x.shape()) : Tensor(),
                               needs[1] ? sum_to(g * x, y.shape()) : Tensor()};
                });
}

Tensor div(const Tensor& a, const Tensor& b) {
  if (!is_floating(a.dtype()))
    fail("div: integer division is not defined here; convert ", describe(a), " to f32 first");
  Tensor out = run_binary(BinaryOp::div, a, b);
  return record("div", out, {a, b},
                [sa = a.shape(), sb = SavedTensor(b), so = SavedTensor(out)](const Tensor& g,
                                                                             const Needs& needs) {
                  const Tensor& y = sb.get("div");
                  return Grads{needs[0] ? sum_to(g / y, sa) : Tensor(),
                               needs[1] ? sum_to(neg(g * so.get("div") / y), y.shape()) : Tensor()};
                });
}

Tensor pow(const Tensor& base, const Tensor& exponent) {
  if (!is_floating(base.dtype())) fail("pow: needs floating-point tensors, got ", describe(base));
  Tensor out = run_binary(BinaryOp::pow, base, exponent);
  return record(
      "pow", out, {base, exponent},
      [sx = SavedTensor(base), se = SavedTensor(exponent), so = SavedTensor(out)](
          const Tensor& g, const Needs& needs) {
        const Tensor& x = sx.get("pow");
        const Tensor& e = se.get("pow");
        Grads grads(2);
        if (needs[0]) grads[0] = sum_to(g * e * pow(x, e - 1.0), x.shape());
        if (needs[1]) {
          // d/de x^e = x^e ln x, taken as 0 where x == 0 and e >= 0 (the limit), as PyTorch does.
          const Tensor zero_base = mul(eq(x, scalar_like(0, x)), ge(e, scalar_like(0, e)));
          const Tensor slope = where(zero_base, scalar_like(0, x), so.get("pow") * log(x));
          grads[1] = sum_to(g * slope, e.shape());
        }
        return grads;
      });
}

Tensor pow(const Tensor& base, double exponent) {
  if (!is_floating(base.dtype())) fail("pow: needs a floating-point tensor, got ", describe(base));
  Tensor out = run_binary(BinaryOp::pow, base, scalar_like(exponent, base));
  return record("pow", out, {base},
                [sx = SavedTensor(base), exponent](const Tensor& g, const Needs&) {
                  if (exponent == 0.0)
                    return Grads{Tensor::zeros(g.shape(), g.dtype(), g.device())};
                  return Grads{g * exponent * pow(sx.get("pow"), exponent - 1.0)};
                });
}

Tensor pow(double base, const Tensor& exponent) {
  if (base == 2.0) return exp2(exponent);
  if (!is_floating(exponent.dtype()))
    fail("pow: needs a floating-point exponent, got ", describe(exponent));
  Tensor out = run_binary(BinaryOp::pow, scalar_like(base, exponent), exponent);
  return record("pow", out, {exponent},
                [so = SavedTensor(out), base](const Tensor& g, const Needs&) {
                  return Grads{g * so.get("pow") * std::log(base)};
                });
}

namespace {
// maximum/minimum: the gradient goes to the selected operand, split equally on ties.
Tensor select_extreme(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  return record(
      name, run_binary(op, a, b), {a, b},
      [sa = SavedTensor(a), sb = SavedTensor(b), op, name](const Tensor& g, const Needs& needs) {
        const Tensor& x = sa.get(name);
        const Tensor& y = sb.get(name);
        const Tensor wins = op == BinaryOp::maximum ? gt(x, y) : lt(x, y);
        const Tensor share = wins.to(g.dtype()) + eq(x, y).to(g.dtype()) * 0.5;
        return Grads{needs[0] ? sum_to(g * share, x.shape()) : Tensor(),
                     needs[1] ? sum_to(g * (1.0 - share), y.shape()) : Tensor()};
      });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return select_extreme(BinaryOp::maximum, "maximum", a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return select_extreme(BinaryOp::minimum, "minimum", a, b);
}

Tensor neg(const Tensor& a) {
  return record("neg", detail::run_unary(UnaryOp::neg, a), {a},
                [](const Tensor& g, const Needs&) { return Grads{neg(g)}; });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

}  // namespace ds
