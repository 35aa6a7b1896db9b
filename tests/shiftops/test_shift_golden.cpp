// The PS and Q layers against tests/shiftops/shift_layers.golden, written by
// generate_shift_golden.py from a PyTorch implementation of the same forward and backward.
// Each case runs twice: through the layers (float32 parameters, as trained) and through the
// shiftops functions composed by hand in float64, which must match the reference to rounding.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "nn/functional.hpp"
#include "shiftops/layers.hpp"
#include "support/golden.hpp"
#include "tensor/ops.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using ds::test::allclose;
using ds::test::GoldenFile;
using ds::test::values_of;
namespace F = ds::nn::functional;
namespace nn = ds::nn;
namespace shift = ds::shift;
using shift::ShiftType;

// Must match F32_RTOL / F32_ATOL of generate_shift_golden.py.
constexpr double kRtol = 1e-5;
constexpr double kAtol = 1e-5;

const GoldenFile& golden() {
  static const GoldenFile file(std::string(DS_SHIFT_GOLDEN_DIR) + "/shift_layers.golden");
  return file;
}

// config: linear  in out bias weight_bits I F
//         conv2d  in out kh kw stride_h stride_w pad_h pad_w dilation_h dilation_w groups bias
//                 weight_bits I F
struct Case {
  std::string name;
  ShiftType type;
  bool conv;
  std::vector<std::int64_t> config;
  shift::ShiftOptions options;

  Tensor get(const std::string& key) const { return golden().get(name + "/" + key); }
  nn::Conv2dOptions conv_options() const {
    const auto& c = config;
    nn::Conv2dOptions o;
    o.in_channels = c[0];
    o.out_channels = c[1];
    o.kernel_h = c[2];
    o.kernel_w = c[3];
    o.stride_h = c[4];
    o.stride_w = c[5];
    o.pad_h = c[6];
    o.pad_w = c[7];
    o.dilation_h = c[8];
    o.dilation_w = c[9];
    o.groups = c[10];
    o.bias = c[11] != 0;
    return o;
  }
};

Case case_of(const std::string& name) {
  Case c{
      name, name.ends_with("_ps") ? ShiftType::PS : ShiftType::Q, name.starts_with("conv"), {}, {}};
  for (const double v : values_of(c.get("config")))
    c.config.push_back(static_cast<std::int64_t>(v));
  const std::size_t n = c.config.size();
  c.options.weight_bits = static_cast<int>(c.config.at(n - 3));
  c.options.activation = {static_cast<int>(c.config.at(n - 2)),
                          static_cast<int>(c.config.at(n - 1))};
  return c;
}

void expect_close(const std::string& what, const Tensor& actual, const Tensor& expected,
                  double rtol, double atol) {
  const auto close = allclose(actual, expected, rtol, atol);
  INFO(what << ": " << close.message);
  CHECK(close);
}

std::shared_ptr<shift::ShiftLayer> make_layer(const Case& c) {
  if (c.conv) return std::make_shared<shift::ShiftConv2d>(c.conv_options(), c.type, c.options);
  return std::make_shared<shift::ShiftLinear>(c.config[0], c.config[1], c.config[2] != 0, c.type,
                                              c.options);
}

}  // namespace

TEST_CASE("golden: the fixture holds the four layer cases", "[shiftops][golden]") {
  CHECK(golden().cases() == std::vector<std::string>{"linear_ps", "linear_q", "conv_ps", "conv_q"});
}

TEST_CASE("golden: shift layers match PyTorch (float32 layers)", "[shiftops][golden]") {
  for (const auto& name : golden().cases()) {
    SECTION(name) {
      const Case c = case_of(name);
      const bool ps = c.type == ShiftType::PS;
      auto layer = make_layer(c);
      {
        ds::NoGradGuard no_grad;
        if (ps) {
          layer->shift().copy_(c.get("shift"));
          layer->sign().copy_(c.get("sign"));
        } else {
          layer->weight().copy_(c.get("weight"));
        }
        layer->bias().copy_(c.get("bias"));
      }
      const Tensor x = c.get("x").to(DType::f32).requires_grad_();
      const Tensor out = (*layer)(x);
      out.backward(c.get("grad_out").to(DType::f32));

      expect_close("out", out, c.get("out"), kRtol, kAtol);
      expect_close("grad_x", x.grad(), c.get("grad_x"), kRtol, kAtol);
      expect_close("grad_bias", layer->bias().grad(), c.get("grad_bias"), kRtol, kAtol);
      // The in-place clamp lands exactly on the range's ends; the weight is exactly 0 or +-2^k.
      expect_close("stored parameter after the forward", ps ? layer->shift() : layer->weight(),
                   c.get("clamped"), 0, 0);
      expect_close("effective weight", layer->effective_weight(), c.get("effective"), 0, 0);
      if (ps) {
        expect_close("grad_shift", layer->shift().grad(), c.get("grad_shift"), kRtol, kAtol);
        expect_close("grad_sign", layer->sign().grad(), c.get("grad_sign"), kRtol, kAtol);
      } else {
        expect_close("grad_weight", layer->weight().grad(), c.get("grad_weight"), kRtol, kAtol);
      }
    }
  }
}

TEST_CASE("golden: shiftops functions match PyTorch in float64", "[shiftops][golden]") {
  for (const auto& name : golden().cases()) {
    SECTION(name) {
      const Case c = case_of(name);
      const bool ps = c.type == ShiftType::PS;
      const Tensor x = c.get("x").requires_grad_();
      const Tensor bias = c.get("bias").requires_grad_();
      const Tensor stored = c.get(ps ? "shift" : "weight").requires_grad_();
      const Tensor sign = ps ? c.get("sign").requires_grad_() : Tensor();
      Tensor weight;
      if (ps) {
        const shift::ShiftRange r = shift::ps_range(c.options.weight_bits);
        {
          ds::NoGradGuard no_grad;
          stored.clamp_(r.min_shift, r.max_shift);
        }
        weight = shift::ps_weight(stored, sign, shift::Rounding::deterministic);
      } else {
        shift::clamp_magnitude_(stored, shift::q_range(c.options.weight_bits));
        weight = shift::round_power_of_two(stored, shift::Rounding::deterministic);
      }
      const Tensor xf = shift::fixed_point(x, c.options.activation);
      const Tensor bf = shift::fixed_point(bias, c.options.activation);
      const Tensor out =
          c.conv ? F::conv2d(xf, weight, bf, c.conv_options().params()) : F::linear(xf, weight, bf);
      out.backward(c.get("grad_out"));

      const double rtol = 1e-12, atol = 1e-12;
      expect_close("out", out, c.get("out"), rtol, atol);
      expect_close("grad_x", x.grad(), c.get("grad_x"), rtol, atol);
      expect_close("grad_bias", bias.grad(), c.get("grad_bias"), rtol, atol);
      expect_close("clamped", stored, c.get("clamped"), 0, 0);
      expect_close("effective", weight, c.get("effective"), 0, 0);
      if (ps) {
        expect_close("grad_shift", stored.grad(), c.get("grad_shift"), rtol, atol);
        expect_close("grad_sign", sign.grad(), c.get("grad_sign"), rtol, atol);
      } else {
        expect_close("grad_weight", stored.grad(), c.get("grad_weight"), rtol, atol);
      }
    }
  }
}
