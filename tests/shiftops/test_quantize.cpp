// The rounding functions of shiftops/quantize.hpp on their edge values (DESIGN.md section 2):
// fixed() at its clamp bounds for several formats, half-to-even ties, negative zero, zero
// weights, magnitudes above 2^0 and below 2^smin, their straight-through gradients, and
// finite-difference checks where fixed() is not flat.
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "nn/functional.hpp"
#include "shiftops/quantize.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using ds::test::values_of;
using ds::testing::MessageContains;
namespace shift = ds::shift;
namespace F = ds::nn::functional;

Tensor f64(const std::vector<double>& values) {
  return Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())});
}

// The gradient that `fn` sends back to its input for an upstream gradient of ones.
template <typename Fn>
std::vector<double> gradient_of_sum(const Tensor& input, Fn&& fn) {
  const Tensor x = input.clone().requires_grad_();
  fn(x).sum().backward();
  return values_of(x.grad());
}

struct Format {
  int integer, fraction;
  double lowest, highest;
};

}  // namespace

TEST_CASE("activation bits: the format's grid and range", "[shiftops][fixed]") {
  const std::vector<Format> formats{{2, 0, -2.0, 1.0},
                                    {2, 3, -2.0, 1.875},
                                    {3, 5, -4.0, 4.0 - 1.0 / 32},
                                    {4, 4, -8.0, 8.0 - 1.0 / 16},
                                    {8, 8, -128.0, 128.0 - 1.0 / 256},
                                    {16, 16, -32768.0, 32768.0 - 1.0 / 65536}};
  for (const auto& f : formats) {
    const shift::ActivationBits bits{f.integer, f.fraction};
    INFO("I=" << f.integer << " F=" << f.fraction);
    CHECK(bits.step() == std::ldexp(1.0, -f.fraction));
    CHECK(bits.lowest() == f.lowest);
    CHECK(bits.highest() == f.highest);
    CHECK_NOTHROW(bits.validate());
  }
  CHECK_NOTHROW(shift::ActivationBits{32, 0}.validate());
  CHECK_NOTHROW(shift::ActivationBits{2, 30}.validate());
}

TEST_CASE("activation bits: fewer than 2 integer bits are rejected", "[shiftops][fixed]") {
  // The original returns sign(x) - 1 for I = 1; we refuse the format instead.
  const Tensor x = f64({0.5});
  for (const int integer : {1, 0, -3}) {
    const shift::ActivationBits bits{integer, 4};
    CHECK_THROWS_MATCHES(bits.validate(), ds::Error, MessageContains({"integer bits"}));
    CHECK_THROWS_MATCHES(shift::fixed_point(x, bits), ds::Error, MessageContains({"integer bits"}));
  }
  CHECK_THROWS_MATCHES((shift::ActivationBits{4, -1}).validate(), ds::Error,
                       MessageContains({"fraction bits"}));
  CHECK_THROWS_MATCHES((shift::ActivationBits{20, 13}).validate(), ds::Error,
                       MessageContains({"33"}));
}

TEST_CASE("fixed(): floor onto the 2^-F grid", "[shiftops][fixed]") {
  const shift::ActivationBits bits{3, 2};  // grid 0.25, range [-4, 3.75]
  const Tensor x = f64({0.3, -0.3, 0.25, -0.25, 1.0 - 1e-12, -1e-30, 0.0, -0.0, 2.999, -2.001});
  const std::vector<double> expected{0.25, -0.5, 0.25, -0.25, 0.75, -0.25, 0.0, 0.0, 2.75, -2.25};
  const auto out = values_of(shift::fixed_point(x, bits));
  CHECK(out == expected);
  // Negative zero stays a zero (it compares equal to +0; no -0.25 from flooring it).
  CHECK(out[7] == 0.0);
}

TEST_CASE("fixed(): clamp bounds for several (I, F)", "[shiftops][fixed]") {
  const std::vector<std::pair<int, int>> formats{{2, 0}, {2, 3}, {3, 5}, {4, 4}, {8, 8}, {16, 16}};
  for (const auto& [integer, fraction] : formats) {
    const shift::ActivationBits bits{integer, fraction};
    const double lo = bits.lowest(), hi = bits.highest(), step = bits.step();
    INFO("I=" << integer << " F=" << fraction);
    const Tensor x = f64({1e9, -1e9, hi, lo, hi + step / 2, hi + step, lo - step / 2, lo + step / 2,
                          -lo, std::ldexp(1.0, integer - 1) - step / 4});
    const std::vector<double> expected{hi, lo, hi, lo, hi, hi, lo, lo, hi, hi};
    CHECK(values_of(shift::fixed_point(x, bits)) == expected);
  }
}

TEST_CASE("fixed(): float32 never exceeds the top of the grid", "[shiftops][fixed]") {
  // 2^15 - 2^-16 is not a float: the clamp must land below it, on the grid, not round up.
  const shift::ActivationBits bits{16, 16};
  const Tensor x = Tensor::from_vector(std::vector<float>{1e9f, 32767.999f, -1e9f}, {3});
  const auto out = values_of(shift::fixed_point(x, bits));
  CHECK(out[0] <= bits.highest());
  CHECK(out[0] >= bits.highest() - 1.0 / 256);
  CHECK(std::ldexp(out[0], 16) == std::floor(std::ldexp(out[0], 16)));
  CHECK(out[1] <= bits.highest());
  CHECK(out[2] == bits.lowest());
  // Small formats are exact in float32.
  const shift::ActivationBits small{3, 5};
  const Tensor y = Tensor::from_vector(std::vector<float>{100.f, -100.f, 0.3f}, {3});
  CHECK(values_of(shift::fixed_point(y, small)) ==
        std::vector<double>{4.0 - 1.0 / 32, -4.0, 0.28125});
}

TEST_CASE("fixed(): straight-through gradient, also where clamped", "[shiftops][fixed][grad]") {
  const shift::ActivationBits bits{2, 2};
  const Tensor x = f64({-7.0, -2.0, -0.3, 0.0, 0.3, 1.75, 9.0});
  const auto grad = gradient_of_sum(x, [&](const Tensor& t) {
    return shift::fixed_point(t, bits) * f64({1, 2, 3, 4, 5, 6, 7});
  });
  CHECK(grad == std::vector<double>{1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("weight-bit ranges: PS ternary, Q binary", "[shiftops][ranges]") {
  // b:            2   3   4    5    6    7     8
  const std::vector<int> ps_min{0, -2, -6, -14, -30, -62, -126};
  const std::vector<int> q_min{-1, -3, -7, -15, -31, -63, -127};
  for (int b = 2; b <= 8; ++b) {
    INFO("weight bits " << b);
    CHECK(shift::ps_range(b).min_shift == ps_min[b - 2]);
    CHECK(shift::ps_range(b).max_shift == 0);
    CHECK(shift::q_range(b).min_shift == q_min[b - 2]);
    CHECK(shift::q_range(b).max_shift == 0);
  }
  for (const int b : {1, 9, 0, 32}) {
    CHECK_THROWS_MATCHES(shift::ps_range(b), ds::Error, MessageContains({"weight bits"}));
    CHECK_THROWS_MATCHES(shift::q_range(b), ds::Error, MessageContains({"weight bits"}));
  }
}

TEST_CASE("round: half to even, negative zero, straight-through gradient", "[shiftops][round]") {
  const Tensor x =
      f64({-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0.0, 0.49999999999999994, 2.4, -2.6});
  const std::vector<double> expected{-2, -2, 0, 0, 2, 2, 4, 0, 0, 2, -3};
  CHECK(values_of(shift::round_ste(x, shift::Rounding::deterministic)) == expected);
  const auto grad = gradient_of_sum(
      x, [](const Tensor& t) { return shift::round_ste(t, shift::Rounding::deterministic); });
  CHECK(grad == std::vector<double>(11, 1.0));
}

TEST_CASE("round: stochastic picks floor or ceil with the fractional probability",
          "[shiftops][round]") {
  const std::int64_t n = 20000;
  const Tensor x = Tensor::full({n}, -1.75, DType::f64);  // ceil (-1) with probability 0.25
  ds::Generator gen(7);
  const auto out = values_of(shift::round_ste(x, shift::Rounding::stochastic, gen));
  double ceil_count = 0;
  for (const double v : out) {
    REQUIRE((v == -2.0 || v == -1.0));
    ceil_count += v == -1.0;
  }
  // Binomial(20000, 0.25): standard deviation 61, so 0.25 +- 0.0125 is 8 sigma.
  CHECK(std::abs(ceil_count / n - 0.25) < 0.0125);
  // Integers never move, and the same seed gives the same draw.
  const Tensor integers = f64({-3, 0, 5, -0.0});
  CHECK(values_of(shift::round_ste(integers, shift::Rounding::stochastic, gen)) ==
        std::vector<double>{-3, 0, 5, 0});
  ds::Generator a(99), b(99);
  const Tensor y = ds::uniform({64}, -4, 4, DType::f64, a);
  ds::Generator c(5), d(5);
  CHECK(values_of(shift::round_ste(y, shift::Rounding::stochastic, c)) ==
        values_of(shift::round_ste(y, shift::Rounding::stochastic, d)));
  const auto grad = gradient_of_sum(integers, [&](const Tensor& t) {
    return shift::round_ste(t, shift::Rounding::stochastic, gen);
  });
  CHECK(grad == std::vector<double>(4, 1.0));
}

TEST_CASE("power-of-two rounding: zeros, large and tiny magnitudes", "[shiftops][pow2]") {
  const Tensor w = f64({0.0, -0.0, 1.0, -1.0, 0.75, -0.7, 3.0, -1000.0, 1e-30, 0.25, -0.3});
  const std::vector<double> expected{0,    0,    1, -1, 1, -0.5, 4, -1024, std::ldexp(1.0, -100),
                                     0.25, -0.25};
  CHECK(values_of(shift::round_power_of_two(w, shift::Rounding::deterministic)) == expected);
  const auto grad = gradient_of_sum(w, [](const Tensor& t) {
    return shift::round_power_of_two(t, shift::Rounding::deterministic);
  });
  CHECK(grad == std::vector<double>(11, 1.0));  // straight through, zeros included
}

TEST_CASE("power-of-two rounding: log2 exactly half-way rounds half to even", "[shiftops][pow2]") {
  // 2^(k + 1/2) is irrational, so the tie is a value next to it whose computed log2 (the
  // tensor op the rounding uses, in the tensor's dtype) is exactly k + 0.5. Not every k has
  // one (in float32 no input's log2 is exactly 0.5), so the test counts the ties it met.
  for (const DType dtype : {DType::f32, DType::f64}) {
    int ties = 0;
    for (const int k : {-15, -4, -3, -2, -1, 0, 1, 2, 3}) {
      INFO((dtype == DType::f32 ? "f32" : "f64") << " k=" << k);
      // Walk outwards from 2^(k + 1/2), one unit in the last place at a time, both ways.
      double tie = 0, up = std::ldexp(std::numbers::sqrt2, k), down = up;
      for (int step = 0; step < 64 && tie == 0; ++step) {
        for (const double candidate : {up, down}) {
          const Tensor t = f64({candidate}).to(dtype);
          if (tie == 0 && values_of(ds::log2(t))[0] == k + 0.5) tie = values_of(t)[0];
        }
        const bool f32 = dtype == DType::f32;
        up = f32 ? std::nextafter(static_cast<float>(up), 4.0f) : std::nextafter(up, 4.0);
        down = f32 ? std::nextafter(static_cast<float>(down), 0.0f) : std::nextafter(down, 0.0);
      }
      if (tie == 0) continue;
      ++ties;
      const double even = (k % 2 == 0) ? k : k + 1;  // k + 0.5 -> the even neighbour
      const auto out = values_of(
          shift::round_power_of_two(f64({tie, -tie}).to(dtype), shift::Rounding::deterministic));
      CHECK(out == std::vector<double>{std::exp2(even), -std::exp2(even)});
    }
    INFO((dtype == DType::f32 ? "f32" : "f64") << ": " << ties << " ties found");
    CHECK(ties >= 4);
  }
}

TEST_CASE("power-of-two rounding: stochastic picks a neighbouring power", "[shiftops][pow2]") {
  ds::Generator gen(3);
  const Tensor w = Tensor::full({400}, -0.75, DType::f64);  // log2 0.75 = -0.415
  int ones = 0;
  for (const double v : values_of(shift::round_power_of_two(w, shift::Rounding::stochastic, gen))) {
    REQUIRE((v == -0.5 || v == -1.0));
    ones += v == -1.0;
  }
  CHECK(ones > 150);  // probability 0.585 of -1
  CHECK(ones < 320);
  CHECK(values_of(shift::round_power_of_two(f64({0.0, -0.0, 0.5}), shift::Rounding::stochastic,
                                            gen)) == std::vector<double>{0, 0, 0.5});
}

TEST_CASE("PS weight: g * 2^round(shift) with g = sign(round(sign))", "[shiftops][ps]") {
  const Tensor shift_param = f64({-0.5, -1.5, -2.5, -3.4, 0.0, -14.0, -2.0, -6.0, -1.0});
  const Tensor sign_param = f64({1.0, -0.6, 1.5, -2.5, 0.5, 0.7, -0.5, -0.0, 0.49});
  // s:  -0 -2 -2 -3  0 -14 -2 -6 -1
  // g:   1 -1  1 -1  0   1  0  0  0   (0.5 and -0.5 round to zero: half to even)
  const std::vector<double> expected{1, -0.25, 0.25, -0.125, 0, std::ldexp(1.0, -14), 0, 0, 0};
  CHECK(values_of(shift::ps_weight(shift_param, sign_param, shift::Rounding::deterministic)) ==
        expected);
}

TEST_CASE("PS weight: the declared gradients", "[shiftops][ps][grad]") {
  // dL/dshift = G * g * 2^s * ln 2 and dL/dsign = G, G = dL/dw (not scaled by 2^s).
  ds::Generator gen(17);
  const Tensor shift_param = ds::uniform({3, 4}, -6.0, 0.0, DType::f64, gen).requires_grad_();
  const Tensor sign_param = ds::uniform({3, 4}, -1.5, 1.5, DType::f64, gen).requires_grad_();
  const Tensor upstream = ds::randn({3, 4}, DType::f64, gen);
  const Tensor w = shift::ps_weight(shift_param, sign_param, shift::Rounding::deterministic);
  w.backward(upstream);
  const auto s = values_of(shift_param), g = values_of(sign_param), G = values_of(upstream);
  const auto dshift = values_of(shift_param.grad()), dsign = values_of(sign_param.grad());
  int nonzero = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double sign = std::round(g[i]) == 0 ? 0.0 : std::copysign(1.0, std::round(g[i]));
    const double weight = sign * std::exp2(std::nearbyint(s[i]));
    nonzero += weight != 0;
    CHECK(dshift[i] == Approx(G[i] * weight * std::numbers::ln2).epsilon(1e-14).margin(1e-300));
    CHECK(dsign[i] == G[i]);
  }
  CHECK(nonzero >= 4);  // the check above saw both zero and non-zero weights
  CHECK(nonzero < 12);
}

TEST_CASE("PS weight: the shift gradient is the slope of g * 2^shift at integers",
          "[shiftops][ps][grad]") {
  // Rounding makes the PS weight flat, so finite differences see zero; the declared gradient is
  // the derivative of the smooth g * 2^shift at the rounded shift.
  const Tensor shift_param = f64({-3.0, 0.0, -7.0}).requires_grad_();
  const Tensor sign_param = f64({1.0, -1.0, 1.0});
  shift::ps_weight(shift_param, sign_param, shift::Rounding::deterministic).sum().backward();
  const auto grad = values_of(shift_param.grad());
  const std::vector<double> s{-3.0, 0.0, -7.0}, g{1.0, -1.0, 1.0};
  const double h = 1e-6;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double slope = g[i] * (std::exp2(s[i] + h) - std::exp2(s[i] - h)) / (2 * h);
    CHECK(grad[i] == Approx(slope).epsilon(1e-8));
  }
}

TEST_CASE("PS weight: shapes must match", "[shiftops][ps]") {
  CHECK_THROWS_MATCHES(shift::ps_weight(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}),
                                        shift::Rounding::deterministic),
                       ds::Error, MessageContains({"ps_weight", "[2, 3]", "[3, 2]"}));
}

TEST_CASE("magnitude clamp: [2^smin, 2^smax] keeping the sign, zeros stay zero",
          "[shiftops][clamp]") {
  const Tensor w =
      f64({3.0, -3.0, 1e-9, -1e-9, 0.0, -0.0, 0.3, -1.0, std::ldexp(1.0, -15)}).requires_grad_();
  shift::clamp_magnitude_(w, shift::q_range(5));
  const double lo = std::ldexp(1.0, -15);
  CHECK(values_of(w) == std::vector<double>{1, -1, lo, -lo, 0, 0, 0.3, -1, lo});
  CHECK(w.requires_grad());  // still the same trainable leaf
  CHECK(w.is_leaf());
}

TEST_CASE("fixed(): finite differences agree with the straight-through gradient on the grid",
          "[shiftops][fixed][gradcheck]") {
  // fixed() is flat between grid points, but on the grid and with a step that is a multiple of
  // the grid spacing it is the identity, so a linear or convolution layer on fixed() inputs and
  // biases is linear there and finite differences must match the straight-through gradient.
  const shift::ActivationBits bits{6, 16};
  ds::Generator gen(9);
  const auto on_grid = [&](const ds::Shape& shape) {
    return (ds::floor(ds::uniform(shape, -5.0, 5.0, DType::f64, gen) * 65536.0) / 65536.0)
        .requires_grad_();
  };
  ds::autograd::GradcheckOptions fd;
  fd.eps = std::ldexp(1.0, -8);
  const Tensor w_linear = shift::ps_weight(ds::uniform({3, 4}, -5, 0, DType::f64, gen),
                                           ds::uniform({3, 4}, -1.5, 1.5, DType::f64, gen),
                                           shift::Rounding::deterministic);
  auto result = ds::autograd::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return F::linear(shift::fixed_point(in[0], bits), w_linear,
                         shift::fixed_point(in[1], bits));
      },
      {on_grid({2, 4}), on_grid({3})}, fd);
  INFO(result.message);
  CHECK(result.ok);

  const Tensor w_conv = shift::round_power_of_two(ds::randn({4, 1, 3, 3}, DType::f64, gen),
                                                  shift::Rounding::deterministic);
  const F::Conv2dParams params{2, 1, 1, 0, 1, 2, 2};
  result = ds::autograd::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return F::conv2d(shift::fixed_point(in[0], bits), w_conv, shift::fixed_point(in[1], bits),
                         params);
      },
      {on_grid({1, 2, 5, 6}), on_grid({4})}, fd);
  INFO(result.message);
  CHECK(result.ok);
}

namespace {

// f32 values across the whole float range: zeros, subnormals, every exponent, the values
// within 100 units in the last place of sqrt(2) * 2^k (where round(log2) turns), half-way
// points, infinities and NaN.
std::vector<float> awkward_floats() {
  // NaN with and without its sign bit (x86 arithmetic makes the negative one, 0xffc00000).
  std::vector<float> values{0.0f, -0.0f,  INFINITY, -INFINITY, NAN,
                            -NAN, 1e-45f, -3e-42f,  0.5f,      -2.5f};
  ds::Generator gen(41);
  const auto uniform = ds::uniform({4000}, -1.0, 1.0, DType::f64, gen).to_vector<double>();
  for (std::size_t i = 0; i < uniform.size(); ++i)
    values.push_back(static_cast<float>(std::ldexp(uniform[i], static_cast<int>(i % 280) - 150)));
  for (int k = -149; k <= 127; k += 3) {
    float near = static_cast<float>(std::ldexp(std::numbers::sqrt2, k));
    for (int step = 0; step < 100; ++step) near = std::nextafter(near, 0.0f);
    for (int step = 0; step < 200; ++step, near = std::nextafter(near, INFINITY))
      values.push_back(step % 2 ? -near : near);
  }
  for (int half = -300; half <= 270; ++half) values.push_back(0.5f * static_cast<float>(half));
  return values;
}

Tensor f32(const std::vector<float>& values) {
  return Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())});
}

// Bit for bit, NaN included.
void require_same_bits(const Tensor& actual, const Tensor& expected, const std::vector<float>& in) {
  const auto a = actual.to_vector<float>(), e = expected.to_vector<float>();
  REQUIRE(a.size() == e.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("input " << in[i] << " (bits " << std::bit_cast<std::uint32_t>(in[i]) << ")");
    REQUIRE(std::bit_cast<std::uint32_t>(a[i]) == std::bit_cast<std::uint32_t>(e[i]));
  }
}

}  // namespace

TEST_CASE("f32 quantizers on the CPU give the composed tensor ops' result bit for bit",
          "[shiftops][pow2][ps][fixed]") {
  // On CPU f32 tensors the quantizers run as one loop each; the composed ops (what every other
  // device and dtype runs) are spelled out here as the reference.
  const std::vector<float> values = awkward_floats();
  const Tensor x = f32(values);
  const Tensor zero = Tensor::scalar(0, DType::f32), one = Tensor::scalar(1, DType::f32);
  const Tensor nonzero = ds::ne(ds::abs(x), zero);
  const Tensor safe = ds::where(nonzero, ds::abs(x), one);
  require_same_bits(shift::round_power_of_two(x, shift::Rounding::deterministic),
                    ds::where(nonzero, ds::sign(x) * ds::pow(2.0, ds::round(ds::log2(safe))), zero),
                    values);

  // PS: shifts on and between integers (half-way ones too), beyond the exponent range both ways.
  std::vector<float> shifts, signs;
  for (int i = -600; i <= 600; ++i) {
    shifts.push_back(0.25f * static_cast<float>(i));
    signs.push_back(0.125f * static_cast<float>(i % 23));
  }
  for (const float s : {-126.0f, -127.0f, -149.0f, -150.0f, 127.0f, 128.0f, NAN, -NAN, -INFINITY}) {
    shifts.push_back(s);
    signs.push_back(-1.0f);
  }
  const Tensor s = f32(shifts).requires_grad_(), g = f32(signs).requires_grad_();
  const Tensor w = shift::ps_weight(s, g, shift::Rounding::deterministic);
  const Tensor composed = ds::sign(ds::round(g.detach())) * ds::pow(2.0, ds::round(s.detach()));
  require_same_bits(w, composed, shifts);
  // Its backward, one loop too: dL/dshift = G * w * ln 2.
  const Tensor upstream = ds::randn(s.shape(), DType::f32);
  w.backward(upstream);
  require_same_bits(s.grad(), upstream * composed * std::numbers::ln2, shifts);
  require_same_bits(g.grad(), upstream, shifts);

  for (const auto& [integer, fraction] :
       std::vector<std::pair<int, int>>{{16, 16}, {4, 3}, {2, 0}}) {
    const shift::ActivationBits bits{integer, fraction};
    const double scale = std::ldexp(1.0, fraction);
    INFO("I=" << integer << " F=" << fraction);
    require_same_bits(shift::fixed_point(x, bits),
                      ds::clamp(ds::floor(x * scale) / scale, bits.lowest(),
                                shift::fixed_point_highest(bits, DType::f32)),
                      values);
  }

  const shift::ShiftRange range = shift::q_range(5);
  const Tensor clamped = x.clone();
  shift::clamp_magnitude_(clamped, range);
  require_same_bits(clamped,
                    ds::sign(x) * ds::clamp(ds::abs(x), std::ldexp(1.0, range.min_shift),
                                            std::ldexp(1.0, range.max_shift)),
                    values);

  // More elements than one thread takes (both threads' chunks), and a transposed input.
  std::vector<float> many;
  while (many.size() < 100000) many.insert(many.end(), values.begin(), values.end());
  const Tensor big = f32(many);
  const Tensor big_nonzero = ds::ne(ds::abs(big), zero);
  require_same_bits(
      shift::round_power_of_two(big, shift::Rounding::deterministic),
      ds::where(big_nonzero,
                ds::sign(big) *
                    ds::pow(2.0, ds::round(ds::log2(ds::where(big_nonzero, ds::abs(big), one)))),
                zero),
      many);
  const Tensor square = f32(std::vector<float>(many.begin(), many.begin() + 300 * 300))
                            .reshape({300, 300})
                            .transpose(0, 1);
  const shift::ActivationBits bits{16, 16};
  require_same_bits(shift::fixed_point(square, bits).contiguous(),
                    ds::clamp(ds::floor(square * 65536.0) / 65536.0, bits.lowest(),
                              shift::fixed_point_highest(bits, DType::f32))
                        .contiguous(),
                    square.contiguous().to_vector<float>());
}

TEST_CASE("magnitude clamp in place: a graph that saved the weight refuses to run backward",
          "[shiftops][clamp]") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    const Tensor w = f32({3.0f, 0.5f}).to(dtype).requires_grad_();
    const Tensor y = (w * w).sum();
    shift::clamp_magnitude_(w, shift::q_range(5));
    CHECK_THROWS_AS(y.backward(), ds::Error);
  }
}
