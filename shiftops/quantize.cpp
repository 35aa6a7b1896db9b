#include "shiftops/quantize.hpp"

#include <cmath>
#include <numbers>

#include "autograd/function.hpp"
#include "tensor/ops.hpp"

namespace ds::shift {

namespace {

std::vector<Tensor> pass_through(const Tensor& g, const std::vector<bool>&) { return {g}; }

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
        return clamp(floor(in[0] * scale) / scale, bits.lowest(),
                     fixed_point_highest(bits, in[0].dtype()));
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
  {
    NoGradGuard no_grad;
    weight = sign(round(sign_param)) * pow(2.0, round_values(shift, rounding, gen));
  }
  return autograd::record(
      "ps_weight", weight, {shift, sign_param},
      [saved = autograd::SavedTensor(weight)](const Tensor& g, const std::vector<bool>& needs) {
        return std::vector<Tensor>{
            needs[0] ? g * saved.get("ps_weight") * std::numbers::ln2 : Tensor(),
            needs[1] ? g : Tensor()};
      });
}

void clamp_magnitude_(const Tensor& weight, const ShiftRange& range) {
  NoGradGuard no_grad;
  const Tensor magnitude =
      clamp(abs(weight), std::ldexp(1.0, range.min_shift), std::ldexp(1.0, range.max_shift));
  weight.copy_(sign(weight) * magnitude);
}

}  // namespace ds::shift
