#include "shiftops/quantize.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "autograd/function.hpp"
#include "autograd/grad_mode.hpp"
#include "tensor/ops.hpp"

namespace ds::shift {

namespace {

std::vector<Tensor> pass_through(const Tensor& g, const std::vector<bool>&) { return {g}; }

// The quantizers run on every weight and activation of every training step, where the composed
// tensor ops cost several passes each and libm's log2f and exp2f a call per weight. On CPU f32
// tensors each runs as one vectorised loop over the elements instead, giving the composed ops'
// result bit for bit (tests/shiftops/test_quantize.cpp compares the two).
bool is_direct(const Tensor& t) { return t.device().is_cpu() && t.dtype() == DType::f32; }

constexpr std::int64_t kParallelElements = 1 << 15;
constexpr std::int64_t kChunk = 4096;

// Runs fast(i) for i < n in vectorised chunks, on all threads when n is large. fast(i) writes
// element i and returns nonzero where only exact(i), a scalar libm computation, gives the
// composed ops' value; a chunk that had any such element runs fast(i) again to find them and
// exact(i) on them, so fast must read only what it does not write.
template <typename Fast, typename Exact>
void for_elements(std::int64_t n, const Fast& fast, const Exact& exact) {
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel if (n >= kParallelElements)
  {
    // Each thread's own copies: the element pointers they capture then stay in registers (a
    // shared closure could be written by the stores, so they were reloaded, as gathers).
    const Fast own_fast = fast;
    const Exact own_exact = exact;
#pragma omp for schedule(static)
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
      int inexact = 0;
#pragma omp simd reduction(| : inexact)
      for (std::int64_t i = begin; i < end; ++i) inexact |= own_fast(i);
      if (inexact)
        for (std::int64_t i = begin; i < end; ++i)
          if (own_fast(i)) own_exact(i);
    }
  }
}

template <typename Element>
void for_elements(std::int64_t n, const Element& element) {
  for_elements(
      n, [element](std::int64_t i) { return (element(i), 0); }, [](std::int64_t) {});
}

// A new tensor of f(x) for each element x: fast(x, out) writes out and returns nonzero where
// exact(x) must decide (see for_elements), or plain f(x).
template <typename Fast, typename Exact>
Tensor map_f32(const Tensor& input, Fast fast, Exact exact) {
  const Tensor x = input.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::f32);
  const float* from = x.data<float>();
  float* to = y.data<float>();
  for_elements(
      x.numel(), [=](std::int64_t i) { return fast(from[i], to[i]); },
      [=](std::int64_t i) { to[i] = exact(from[i]); });
  return y;
}

template <typename F>
Tensor map_f32(const Tensor& input, F f) {
  const Tensor x = input.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::f32);
  const float* from = x.data<float>();
  float* to = y.data<float>();
  for_elements(x.numel(), [=](std::int64_t i) { to[i] = f(from[i]); });
  return y;
}

[[gnu::always_inline]] inline float sign_of(float x) {
  return static_cast<float>((0.0f < x) - (x < 0.0f));
}
// |x| as the tensor op abs gives it: a NaN keeps its sign bit (std::fabs would clear it).
[[gnu::always_inline]] inline float magnitude_of(float x) { return x < 0.0f ? -x : x; }

// Bits of 2^e for an integer e in [-126, 127] (a normal float).
[[gnu::always_inline]] inline std::uint32_t power_bits(std::int32_t e) {
  return static_cast<std::uint32_t>(e + 127) << 23;
}
[[gnu::always_inline]] inline bool is_normal_power(float e) { return e >= -126.0f && e <= 127.0f; }

// sign(w) * 2^nearbyint(log2f(|w|)), as the composed ops give it, for w != 0: the exponent of
// |w|, plus one where its significand exceeds sqrt(2). Only where the float rounding of log2f
// can decide otherwise is the result left to libm: within 64 units in the last place of
// sqrt(2) (for large exponents the float sum e + log2(significand) can round to a tie; a check
// of every positive float against glibc found no difference outside that band), subnormals,
// infinities, NaN, and results beyond the float range.
constexpr std::uint32_t kSqrt2Significand = 0x3504F3;  // of 1.41421354f, just below sqrt(2)
constexpr std::int32_t kLibmBand = 64;

[[gnu::always_inline]] inline int fast_power_of_two(float w, float& out) {
  const auto bits = std::bit_cast<std::uint32_t>(w);
  const auto biased = static_cast<std::int32_t>((bits >> 23) & 0xFF);
  const auto significand = static_cast<std::int32_t>(bits & 0x7FFFFF);
  const std::int32_t above = significand > static_cast<std::int32_t>(kSqrt2Significand);
  const std::int32_t from_sqrt2 = significand - static_cast<std::int32_t>(kSqrt2Significand);
  const std::int32_t rounded = biased + above;  // biased exponent of the result
  const bool zero = (bits & 0x7FFFFFFF) == 0;
  const bool libm = !zero && (biased == 0 || rounded >= 255 ||
                              (from_sqrt2 <= kLibmBand && from_sqrt2 >= -kLibmBand));
  out = zero ? 0.0f
             : std::bit_cast<float>((bits & 0x80000000u) |
                                    static_cast<std::uint32_t>(rounded & 0xFF) << 23);
  return libm;
}

float libm_power_of_two(float w) {
  return sign_of(w) * std::exp2(std::nearbyint(std::log2(magnitude_of(w))));
}

// sign(nearbyint(g)) * 2^nearbyint(s) (exp2f of an integer is exactly 2^e; checked for every e
// from -149 to 127); libm for exponents outside the normal range and NaN.
[[gnu::always_inline]] inline int fast_ps_weight(float g, float s, float& out) {
  const float e = std::nearbyint(s);
  const bool normal = is_normal_power(e);
  const float power = std::bit_cast<float>(power_bits(normal ? static_cast<std::int32_t>(e) : 0));
  out = sign_of(std::nearbyint(g)) * power;
  return !normal;
}

float libm_ps_weight(float g, float s) {
  return sign_of(std::nearbyint(g)) * std::exp2(std::nearbyint(s));
}

// Rounds to an integer with the chosen rule; records nothing.
Tensor round_values(const Tensor& x, Rounding rounding, Generator& gen) {
  if (rounding == Rounding::deterministic) return round(x);
  const Tensor low = floor(x);
  return low + bernoulli(x - low, gen);
}

}  // namespace

Rounding parse_rounding(const std::string& text) {
  if (text == "deterministic") return Rounding::deterministic;
  if (text == "stochastic") return Rounding::stochastic;
  fail("unknown rounding '", text, "' (expected deterministic or stochastic)");
}

const char* rounding_name(Rounding rounding) {
  return rounding == Rounding::deterministic ? "deterministic" : "stochastic";
}

void ActivationBits::validate() const {
  if (integer < 2)
    fail("activation bits: ", integer, " integer bits given; at least 2 are needed (one of them ",
         "is the sign)");
  if (fraction < 0) fail("activation bits: fraction bits must be >= 0, got ", fraction);
  if (integer + fraction > 32)
    fail("activation bits: ", integer, " + ", fraction, " = ", integer + fraction,
         " bits exceed the 32-bit fixed-point format");
}

double ActivationBits::step() const { return std::ldexp(1.0, -fraction); }
double ActivationBits::lowest() const { return -std::ldexp(1.0, integer - 1); }
double ActivationBits::highest() const { return std::ldexp(1.0, integer - 1) - step(); }

void validate_weight_bits(int weight_bits) {
  if (weight_bits < 2 || weight_bits > 8)
    fail("weight bits must be between 2 and 8, got ", weight_bits);
}

ShiftRange ps_range(int weight_bits) {
  validate_weight_bits(weight_bits);
  return {-((1 << (weight_bits - 1)) - 2), 0};
}

ShiftRange q_range(int weight_bits) {
  validate_weight_bits(weight_bits);
  return {-((1 << (weight_bits - 1)) - 1), 0};
}

double fixed_point_highest(const ActivationBits& bits, DType dtype) {
  const double highest = bits.highest();
  if (dtype != DType::f32) return highest;
  float top = static_cast<float>(highest);
  if (top > highest) top = std::nextafter(top, 0.0f);
  return top;
}

Tensor fixed_point(const Tensor& x, const ActivationBits& bits) {
  bits.validate();
  return autograd::custom_function(
      "fixed_point", {x},
      [&](const std::vector<Tensor>& in) {
        const double scale = std::ldexp(1.0, bits.fraction);
        const double highest = fixed_point_highest(bits, in[0].dtype());
        if (!is_direct(in[0])) return clamp(floor(in[0] * scale) / scale, bits.lowest(), highest);
        const auto f_scale = static_cast<float>(scale), low = static_cast<float>(bits.lowest()),
                   high = static_cast<float>(highest);
        // floor(v) as nearbyint(v) less one where that rounded up (GCC vectorises nearbyint but
        // not floor, which may raise the inexact flag); equal for every float, -0 and NaN
        // included. Dividing by 2^F and multiplying by 2^-F round the same exact value.
        const float inverse = 1.0f / f_scale;
        return map_f32(in[0], [=](float x) {
          const float v = x * f_scale, t = std::nearbyint(v);
          return std::clamp((t - static_cast<float>(t > v)) * inverse, low, high);
        });
      },
      pass_through);
}

Tensor round_ste(const Tensor& x, Rounding rounding, Generator& gen) {
  return autograd::custom_function(
      "round_ste", {x},
      [&](const std::vector<Tensor>& in) { return round_values(in[0], rounding, gen); },
      pass_through);
}

Tensor round_power_of_two(const Tensor& w, Rounding rounding, Generator& gen) {
  return autograd::custom_function(
      "round_power_of_two", {w},
      [&](const std::vector<Tensor>& in) {
        if (rounding == Rounding::deterministic && is_direct(in[0]))
          return map_f32(
              in[0], [](float x, float& y) { return fast_power_of_two(x, y); }, libm_power_of_two);
        const Tensor magnitude = abs(in[0]);
        // Zeros would give log2(0) = -inf; they are masked back to zero at the end.
        const Tensor nonzero = ne(magnitude, Tensor::scalar(0, w.dtype(), w.device()));
        const Tensor safe = where(nonzero, magnitude, Tensor::scalar(1, w.dtype(), w.device()));
        const Tensor rounded = sign(in[0]) * pow(2.0, round_values(log2(safe), rounding, gen));
        return where(nonzero, rounded, Tensor::scalar(0, w.dtype(), w.device()));
      },
      pass_through);
}

Tensor ps_weight(const Tensor& shift, const Tensor& sign_param, Rounding rounding, Generator& gen) {
  if (shift.shape() != sign_param.shape())
    fail("ps_weight: shift ", shift.shape(), " and sign ", sign_param.shape(), " differ in shape");
  Tensor weight;
  if (rounding == Rounding::deterministic && is_direct(shift) && is_direct(sign_param)) {
    const Tensor s = sign_param.detach().contiguous(), e = shift.detach().contiguous();
    weight = Tensor::empty(shift.shape(), DType::f32);
    const float *signs = s.data<float>(), *shifts = e.data<float>();
    float* to = weight.data<float>();
    for_elements(
        weight.numel(), [=](std::int64_t i) { return fast_ps_weight(signs[i], shifts[i], to[i]); },
        [=](std::int64_t i) { to[i] = libm_ps_weight(signs[i], shifts[i]); });
  } else {
    NoGradGuard no_grad;
    weight = sign(round(sign_param)) * pow(2.0, round_values(shift, rounding, gen));
  }
  return autograd::record(
      "ps_weight", weight, {shift, sign_param},
      [saved = autograd::SavedTensor(weight)](const Tensor& g, const std::vector<bool>& needs) {
        Tensor shift_grad;
        const Tensor& w = saved.get("ps_weight");
        // The loop records nothing: the composed form keeps a double backward possible.
        if (needs[0] && is_direct(g) && is_direct(w) && g.shape() == w.shape() &&
            !GradMode::enabled()) {
          const Tensor upstream = g.contiguous(), weights = w.contiguous();
          shift_grad = Tensor::empty(g.shape(), DType::f32);
          const float *from = upstream.data<float>(), *times = weights.data<float>();
          float* to = shift_grad.data<float>();
          const auto ln2 = static_cast<float>(std::numbers::ln2);
          for_elements(g.numel(), [=](std::int64_t i) { to[i] = from[i] * times[i] * ln2; });
        } else if (needs[0]) {
          shift_grad = g * w * std::numbers::ln2;
        }
        return std::vector<Tensor>{shift_grad, needs[1] ? g : Tensor()};
      });
}

void clamp_magnitude_(const Tensor& weight, const ShiftRange& range) {
  NoGradGuard no_grad;
  const double low = std::ldexp(1.0, range.min_shift), high = std::ldexp(1.0, range.max_shift);
  if (is_direct(weight) && weight.is_contiguous()) {
    float* w = weight.data<float>();
    const auto f_low = static_cast<float>(low), f_high = static_cast<float>(high);
    for_elements(weight.numel(), [=](std::int64_t i) {
      w[i] = sign_of(w[i]) * std::clamp(magnitude_of(w[i]), f_low, f_high);
    });
    // As copy_ would: a graph that saved the old weight then refuses to run backward.
    weight.storage().bump_version();
    return;
  }
  weight.copy_(sign(weight) * clamp(abs(weight), low, high));
}

}  // namespace ds::shift
