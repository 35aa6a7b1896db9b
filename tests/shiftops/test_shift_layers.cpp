// The shift layers of shiftops/layers.hpp: names, options, initialisation, the in-place clamps
// (on the layer's own parameters only), the gradients of DESIGN.md section 2 against a
// reference computed here, conversion from FP32 weights, and the shift L2 regulariser.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "nn/functional.hpp"
#include "shiftops/convert.hpp"
#include "shiftops/layers.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using ds::test::allclose;
using ds::test::values_of;
using ds::testing::MessageContains;
namespace shift = ds::shift;
namespace F = ds::nn::functional;

Tensor f32(const std::vector<float>& values, const ds::Shape& shape) {
  return Tensor::from_vector(values, shape);
}

void assign(const Tensor& parameter, const Tensor& value) {
  ds::NoGradGuard no_grad;
  parameter.copy_(value);
}

std::set<std::string> parameter_names(const ds::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& p : module.named_parameters()) names.insert(p.name);
  return names;
}

ds::nn::Conv2dOptions small_conv() {
  return ds::nn::Conv2dOptions::square(4, 6, 3, /*stride=*/2, /*padding=*/1, /*bias=*/true,
                                       /*groups=*/2, /*dilation=*/1);
}

// Each value is 0 or +-2^k with k in [low, 0].
bool powers_of_two_in(const Tensor& t, int low) {
  for (const double v : values_of(t)) {
    if (v == 0) continue;
    const double k = std::log2(std::abs(v));
    if (k != std::round(k) || k < low || k > 0) return false;
  }
  return true;
}

// A root module whose child "layer" holds one parameter named "shift" (the regulariser looks
// for names ending in ".shift").
class ShiftHolder : public ds::nn::Module {
 public:
  explicit ShiftHolder(const Tensor& shift) : Module("ShiftHolder") {
    register_parameter("shift", shift);
  }
};
class Root : public ds::nn::Module {
 public:
  explicit Root(const Tensor& shift) : Module("Root") {
    register_module("layer", std::make_shared<ShiftHolder>(shift));
  }
};

}  // namespace

TEST_CASE("shift layers: type names and parameter names", "[shiftops][layers]") {
  const shift::ShiftOptions options;
  const shift::ShiftLinear ps_linear(3, 2, true, shift::ShiftType::PS, options);
  const shift::ShiftLinear q_linear(3, 2, false, shift::ShiftType::Q, options);
  const shift::ShiftConv2d ps_conv(small_conv(), shift::ShiftType::PS, options);
  const shift::ShiftConv2d q_conv(small_conv(), shift::ShiftType::Q, options);
  CHECK(ps_linear.type_name() == "LinearShift");
  CHECK(q_linear.type_name() == "LinearShiftQ");
  CHECK(ps_conv.type_name() == "Conv2dShift");
  CHECK(q_conv.type_name() == "Conv2dShiftQ");
  CHECK(parameter_names(ps_linear) == std::set<std::string>{"shift", "sign", "bias"});
  CHECK(parameter_names(q_linear) == std::set<std::string>{"weight"});
  CHECK(parameter_names(q_conv) == std::set<std::string>{"weight", "bias"});
  CHECK(ps_conv.shift().shape() == ds::Shape{6, 2, 3, 3});
  CHECK(ps_conv.sign().shape() == ds::Shape{6, 2, 3, 3});
  CHECK(shift::parse_shift_type("PS") == shift::ShiftType::PS);
  CHECK(shift::parse_shift_type("Q") == shift::ShiftType::Q);
  CHECK_THROWS_MATCHES(shift::parse_shift_type("ps"), ds::Error, MessageContains({"ps"}));
  CHECK(shift::parse_rounding("stochastic") == shift::Rounding::stochastic);
  CHECK_THROWS_MATCHES(shift::parse_rounding("nearest"), ds::Error, MessageContains({"nearest"}));
}

TEST_CASE("shift layers: bad options are rejected", "[shiftops][layers]") {
  for (const int bits : {1, 9}) {
    shift::ShiftOptions options;
    options.weight_bits = bits;
    CHECK_THROWS_MATCHES(shift::ShiftLinear(3, 2, true, shift::ShiftType::PS, options), ds::Error,
                         MessageContains({"weight bits"}));
    CHECK_THROWS_MATCHES(shift::ShiftConv2d(small_conv(), shift::ShiftType::Q, options), ds::Error,
                         MessageContains({"weight bits"}));
  }
  shift::ShiftOptions options;
  options.activation = {1, 16};
  CHECK_THROWS_MATCHES(shift::ShiftLinear(3, 2, true, shift::ShiftType::Q, options), ds::Error,
                       MessageContains({"integer bits"}));
}

TEST_CASE("shift layers: initialisation ranges", "[shiftops][layers]") {
  ds::manual_seed(11);
  shift::ShiftOptions options;
  options.weight_bits = 4;  // PS shifts in [-6, 0]
  const shift::ShiftLinear ps_linear(50, 40, true, shift::ShiftType::PS, options);
  const auto shifts = values_of(ps_linear.shift());
  CHECK(*std::min_element(shifts.begin(), shifts.end()) >= -6.0);
  CHECK(*std::min_element(shifts.begin(), shifts.end()) < -5.5);
  CHECK(*std::max_element(shifts.begin(), shifts.end()) <= 0.0);
  const auto signs = values_of(ps_linear.sign());
  CHECK(*std::min_element(signs.begin(), signs.end()) >= -1.0);
  CHECK(*std::max_element(signs.begin(), signs.end()) <= 1.0);
  const double bound = 1.0 / std::sqrt(50.0);
  for (const double b : values_of(ps_linear.bias())) CHECK(std::abs(b) <= bound);

  const shift::ShiftConv2d ps_conv(small_conv(), shift::ShiftType::PS, options);
  const auto conv_shifts = values_of(ps_conv.shift());
  CHECK(*std::min_element(conv_shifts.begin(), conv_shifts.end()) >= -10.0);
  CHECK(*std::max_element(conv_shifts.begin(), conv_shifts.end()) <= -1.0);

  // Q: kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const shift::ShiftConv2d q_conv(small_conv(), shift::ShiftType::Q, options);
  const double q_bound = 1.0 / std::sqrt(2.0 * 3 * 3);
  const auto weights = values_of(q_conv.weight());
  for (const double w : weights) CHECK(std::abs(w) <= q_bound);
  CHECK(*std::max_element(weights.begin(), weights.end()) > 0.8 * q_bound);
}

TEST_CASE("Q layer: clamps its own weight, never the caller's input", "[shiftops][layers]") {
  shift::ShiftOptions options;
  options.weight_bits = 5;      // magnitudes [2^-15, 1]
  options.activation = {4, 2};  // grid 0.25, range [-8, 7.75]
  shift::ShiftLinear layer(4, 2, false, shift::ShiftType::Q, options);
  const float tiny = 1e-9f, lo = std::ldexp(1.0f, -15);
  assign(layer.weight(), f32({3.0f, -2.0f, 0.0f, -0.0f, tiny, -tiny, 0.3f, -0.7f}, {2, 4}));
  const Tensor x = f32({0.3f, -0.3f, 9.0f, -100.0f}, {1, 4});
  const Tensor out = layer(x);
  CHECK(values_of(x) == values_of(f32({0.3f, -0.3f, 9.0f, -100.0f}, {1, 4})));
  CHECK(values_of(layer.weight()) == values_of(f32({1, -1, 0, 0, lo, -lo, 0.3f, -0.7f}, {2, 4})));
  // w_q = {1, -1, 0, 0, 2^-15, -2^-15, 0.25, -0.5}; x fixed = {0.25, -0.5, 7.75, -8}.
  CHECK(values_of(layer.effective_weight()) ==
        values_of(f32({1, -1, 0, 0, lo, -lo, 0.25f, -0.5f}, {2, 4})));
  const double row1 = lo * 0.25 + lo * 0.5 + 0.25 * 7.75 + 0.5 * 8;
  CHECK(values_of(out)[0] == Approx(0.75));
  CHECK(values_of(out)[1] == Approx(row1));
}

TEST_CASE("PS layer: clamps its own shift into the range", "[shiftops][layers]") {
  shift::ShiftOptions options;
  options.weight_bits = 3;  // shifts in [-2, 0]
  shift::ShiftLinear layer(3, 1, false, shift::ShiftType::PS, options);
  assign(layer.shift(), f32({0.7f, -5.0f, -1.5f}, {1, 3}));
  assign(layer.sign(), f32({1.0f, -1.0f, 1.0f}, {1, 3}));
  layer(Tensor::ones({1, 3}));
  CHECK(values_of(layer.shift()) == std::vector<double>{0.0, -2.0, -1.5});
  CHECK(values_of(layer.effective_weight()) == std::vector<double>{1.0, -0.25, 0.25});
}

TEST_CASE("PS linear: gradients as DESIGN.md declares them", "[shiftops][layers][grad]") {
  shift::ShiftOptions options;
  options.activation = {4, 3};  // grid 1/8, range [-8, 7.875]
  shift::ShiftLinear layer(3, 2, true, shift::ShiftType::PS, options);
  // s = {0, -1, -3; -2, 0, -14}, g = {1, -1, 0; -1, 1, 1}
  assign(layer.shift(), f32({0.4f, -1.2f, -2.6f, -2.5f, 0.6f, -30.0f}, {2, 3}));
  assign(layer.sign(), f32({0.9f, -1.2f, 0.3f, -0.6f, 1.4f, 0.51f}, {2, 3}));
  assign(layer.bias(), f32({0.3f, 100.0f}, {2}));
  const Tensor x = f32({0.3f, -0.06f, 9.0f, 1.0f, -2.2f, 0.5f}, {2, 3}).requires_grad_();
  const Tensor upstream = f32({1.0f, -2.0f, 0.5f, 3.0f}, {2, 2});
  const Tensor out = layer(x);
  out.backward(upstream);

  const std::vector<double> w{1, -0.5, 0, -0.25, 1, std::ldexp(1.0, -14)};
  const std::vector<double> xf{0.25, -0.125, 7.875, 1.0, -2.25, 0.5};  // floor to 1/8, clamp
  const std::vector<double> bf{0.25, 7.875};
  const std::vector<double> R{1.0, -2.0, 0.5, 3.0};
  std::vector<double> y(4), dx(6, 0.0), dw(6, 0.0), db(2, 0.0);
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 2; ++o) {
      y[n * 2 + o] = bf[o];
      db[o] += R[n * 2 + o];
      for (int i = 0; i < 3; ++i) {
        y[n * 2 + o] += xf[n * 3 + i] * w[o * 3 + i];
        dw[o * 3 + i] += R[n * 2 + o] * xf[n * 3 + i];
        dx[n * 3 + i] += R[n * 2 + o] * w[o * 3 + i];
      }
    }
  std::vector<double> dshift(6);
  for (int k = 0; k < 6; ++k) dshift[k] = dw[k] * w[k] * std::numbers::ln2;
  const auto close = [](const Tensor& t, const std::vector<double>& v, const ds::Shape& shape) {
    return allclose(t, Tensor::from_vector(v, shape), 1e-6, 1e-6).message;
  };
  CHECK(close(out, y, {2, 2}) == "");
  CHECK(close(x.grad(), dx, {2, 3}) == "");                  // straight through fixed()
  CHECK(close(layer.sign().grad(), dw, {2, 3}) == "");       // dL/dsign = G, also where g = 0
  CHECK(close(layer.shift().grad(), dshift, {2, 3}) == "");  // G * g * 2^s * ln 2
  CHECK(close(layer.bias().grad(), db, {2}) == "");          // straight through, clamped too
}

TEST_CASE("conv layers: gradients are those of the ordinary conv through w_q",
          "[shiftops][layers][grad]") {
  for (const auto type : {shift::ShiftType::PS, shift::ShiftType::Q}) {
    INFO(shift::shift_type_name(type));
    ds::manual_seed(5);
    shift::ShiftOptions options;
    options.activation = {6, 5};
    shift::ShiftConv2d layer(small_conv(), type, options);
    const Tensor x = ds::randn({2, 4, 5, 5}).requires_grad_();
    const Tensor upstream = ds::randn({2, 6, 3, 3});
    layer(x).backward(upstream);

    // The reference: a plain convolution of fixed(x) with the effective weight as a leaf.
    const Tensor w = layer.effective_weight().detach().requires_grad_();
    const Tensor b = shift::fixed_point(layer.bias(), options.activation).detach().requires_grad_();
    const Tensor xf = shift::fixed_point(x, options.activation).detach();
    F::conv2d(xf, w, b, small_conv().params()).backward(upstream);
    CHECK(powers_of_two_in(w, layer.range().min_shift));
    CHECK(allclose(layer.bias().grad(), b.grad(), 1e-5, 1e-6).message == "");
    if (type == shift::ShiftType::Q) {
      CHECK(allclose(layer.weight().grad(), w.grad(), 1e-5, 1e-6).message == "");
    } else {
      CHECK(allclose(layer.sign().grad(), w.grad(), 1e-5, 1e-6).message == "");
      const Tensor dshift = w.grad() * w * std::numbers::ln2;
      CHECK(allclose(layer.shift().grad(), dshift, 1e-5, 1e-9).message == "");
    }
  }
}

TEST_CASE("PS layer: freeze_sign keeps the sign out of training", "[shiftops][layers][grad]") {
  shift::ShiftOptions options;
  options.freeze_sign = true;
  shift::ShiftLinear layer(3, 2, true, shift::ShiftType::PS, options);
  CHECK_FALSE(layer.sign().requires_grad());
  CHECK(layer.shift().requires_grad());
  layer(Tensor::ones({1, 3})).sum().backward();
  CHECK_FALSE(layer.sign().grad().defined());
  CHECK(layer.shift().grad().defined());
}

TEST_CASE("shift layers: loading FP32 weights", "[shiftops][layers][convert]") {
  shift::ShiftOptions options;
  options.weight_bits = 5;
  options.activation = {4, 2};
  const Tensor w = f32({0.3f, -0.7f, 0.0f, 2.0f, -1e-7f, 0.125f}, {2, 3});
  const Tensor b = f32({0.3f, -9.0f}, {2});

  shift::ShiftLinear ps(3, 2, true, shift::ShiftType::PS, options);
  ps.load_float_weights(w, b);
  // shift = round(log2|w|): -1.74 -> -2, -0.51 -> -1, 1 -> 0 after the clamp, -23.3 -> -14
  // (clamped), -3; sign = sign(w).
  CHECK(values_of(ps.sign()) == std::vector<double>{1, -1, 0, 1, -1, 1});
  const auto s = values_of(ps.shift());
  CHECK(s[0] == -2);
  CHECK(s[1] == -1);
  CHECK(s[5] == -3);
  CHECK(values_of(ps.effective_weight()) ==
        std::vector<double>{0.25, -0.5, 0, 1, -std::ldexp(1.0, -14), 0.125});
  CHECK(values_of(ps.bias()) == values_of(b));  // PS keeps the bias

  shift::ShiftLinear q(3, 2, true, shift::ShiftType::Q, options);
  q.load_float_weights(w, b);
  CHECK(values_of(q.weight()) == values_of(w));                   // Q keeps the weight
  CHECK(values_of(q.bias()) == std::vector<double>{0.25, -8.0});  // and fixes the bias

  CHECK_THROWS_MATCHES(q.load_float_weights(f32({1, 2, 3}, {3, 1}), b), ds::Error,
                       MessageContains({"[3, 1]", "[2, 3]"}));
  CHECK_THROWS_MATCHES(q.load_float_weights(w, Tensor()), ds::Error, MessageContains({"bias"}));
}

TEST_CASE("shift L2 penalty: wd/2 * sum((2^shift)^2) over .shift parameters",
          "[shiftops][layers][l2]") {
  shift::ShiftOptions options;
  auto model = std::make_shared<ds::nn::Sequential>();
  auto ps = std::make_shared<shift::ShiftLinear>(2, 1, true, shift::ShiftType::PS, options);
  model->add(ps);
  model->add(std::make_shared<shift::ShiftLinear>(2, 1, true, shift::ShiftType::Q, options));
  assign(ps->shift(), f32({-1.5f, 0.0f}, {1, 2}));  // unrounded: 2^-3 + 1
  const double wd = 0.1;
  const Tensor penalty = shift::shift_l2_penalty(*model, wd);
  CHECK(penalty.item() == Approx(wd / 2 * (std::exp2(-3.0) + 1.0)));
  penalty.backward();
  // d/dshift = wd * 4^shift * ln 2
  CHECK(values_of(ps->shift().grad())[0] ==
        Approx(wd * std::exp2(-3.0) * std::numbers::ln2).epsilon(1e-6));
  CHECK(shift::shift_l2_penalty(*model, 0.0).item() == 0.0);
}

TEST_CASE("shift L2 penalty: gradcheck of the smooth regulariser", "[shiftops][layers][l2]") {
  ds::Generator gen(23);
  const Tensor shifts = ds::uniform({2, 3}, -6.0, 0.5, DType::f64, gen).requires_grad_();
  const auto result = ds::autograd::gradcheck(
      [](const std::vector<Tensor>& in) {
        Root model(in[0]);
        return shift::shift_l2_penalty(model, 0.3);
      },
      {shifts});
  CHECK(result.message == "");
  CHECK(result.ok);
}

TEST_CASE("shift L2 penalty: may be computed before the forward pass", "[shiftops][layers][l2]") {
  // `loss = penalty + criterion(model(x))` evaluates its operands in either order; the forward's
  // in-place clamp of the shifts must not invalidate a penalty recorded just before it.
  shift::ShiftOptions options;
  auto model = std::make_shared<ds::nn::Sequential>();
  auto ps = std::make_shared<shift::ShiftLinear>(2, 1, true, shift::ShiftType::PS, options);
  model->add(ps);
  assign(ps->shift(), f32({-1.0f, 0.5f}, {1, 2}));  // the forward clamps 0.5 to 0
  const Tensor penalty = shift::shift_l2_penalty(*model, 0.1);
  const Tensor loss = penalty + (*model)(Tensor::ones({1, 2})).sum();
  REQUIRE_NOTHROW(loss.backward());
  CHECK(ps->shift().grad().defined());
}
