#pragma once
// DeepShift's rounding functions (DESIGN.md section 2), each with a straight-through
// gradient: the forward rounds, the backward passes the incoming gradient unchanged (or, for
// the PS weight, the gradient DeepShift-PS defines).
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace ds::shift {

enum class Rounding { deterministic, stochastic };
Rounding parse_rounding(const std::string& text);  // "deterministic" | "stochastic"
const char* rounding_name(Rounding rounding);

// Fixed-point format of activations and biases: I integer bits (sign included), F fraction bits.
struct ActivationBits {
  int integer = 16;
  int fraction = 16;
  void validate() const;   // I >= 2, F >= 0, I + F <= 32
  double step() const;     // 2^-F
  double lowest() const;   // -2^(I-1)
  double highest() const;  // 2^(I-1) - 2^-F
};

// Exponent range of the weights: shifts lie in [min_shift, 0].
struct ShiftRange {
  int min_shift;
  int max_shift = 0;
};
// PS: ternary signs, shifts in [-(2^(b-1) - 2), 0]; Q: binary signs, [-(2^(b-1) - 1), 0].
ShiftRange ps_range(int weight_bits);
ShiftRange q_range(int weight_bits);
void validate_weight_bits(int weight_bits);  // 2..8

// floor(x * 2^F) / 2^F clamped to the format's range; straight-through gradient.
Tensor fixed_point(const Tensor& x, const ActivationBits& bits);
// The largest value fixed_point gives for a tensor of `dtype`: 2^(I-1) - 2^-F, rounded down to
// the dtype's precision (in f32, 32768 - 2^-16 would round up to 32768).
double fixed_point_highest(const ActivationBits& bits, DType dtype);

// round(x) half to even, or floor(x) + Bernoulli(x - floor(x)); straight-through gradient.
Tensor round_ste(const Tensor& x, Rounding rounding, Generator& gen = default_generator());

// sign(w) * 2^round(log2|w|), zeros stay zero; straight-through gradient (DeepShift-Q).
Tensor round_power_of_two(const Tensor& w, Rounding rounding, Generator& gen = default_generator());

// DeepShift-PS weight w = g * 2^s with s = round(shift), g = sign(round(sign)); gradients
// dL/dshift = G * w * ln 2 and dL/dsign = G (G = dL/dw).
Tensor ps_weight(const Tensor& shift, const Tensor& sign, Rounding rounding,
                 Generator& gen = default_generator());

// In place: magnitudes clamped to [2^min_shift, 2^max_shift] keeping the sign; exact zeros stay
// zero. Only for a layer's own parameters (runs under a NoGradGuard).
void clamp_magnitude_(const Tensor& weight, const ShiftRange& range);

}  // namespace ds::shift
