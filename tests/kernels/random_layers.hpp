#pragma once
// Random packed layers and activations for the kernel tests: every weight bit width and shift
// type, zero weights, the largest shifts, and activations that hit both ends of their format.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shiftops/kernel.hpp"
#include "shiftops/quantize.hpp"

namespace ds::test {

struct LayerFormat {
  int weight_bits;
  shift::ShiftType type;
  shift::ActivationFormat activation;
};

// Weights of `rows` x `cols` (as [rows, cols], or the conv shape when given) drawn from the
// format's range; every row holds the smallest and the largest magnitude where it has room.
inline Tensor random_shift_weights(std::mt19937_64& rng, const LayerFormat& format,
                                   const Shape& shape, double zero_fraction = 0.2) {
  const shift::ShiftRange range = format.type == shift::ShiftType::Q
                                      ? shift::q_range(format.weight_bits)
                                      : shift::ps_range(format.weight_bits);
  // A packed layer spans at most 127 exponents (Q with 8 bits has 128): drop the largest weight.
  const int k_max = -range.min_shift, k_min = std::max(0, k_max - shift::kMaxAmount);
  const std::int64_t rows = shape[0], cols = numel_of(shape) / rows;
  std::uniform_int_distribution<int> k_of(k_min, k_max);
  std::bernoulli_distribution zero(zero_fraction), negative(0.5);
  std::vector<float> values(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      int k = k_of(rng);
      if (c == 0) k = k_max;
      if (c == 1) k = k_min;
      const bool is_zero = c > 1 && zero(rng);
      values[static_cast<std::size_t>(r * cols + c)] =
          is_zero ? 0.0f : static_cast<float>((negative(rng) ? -1 : 1) * std::ldexp(1.0, -k));
    }
  return Tensor::from_vector(values, shape);
}

inline std::vector<std::int64_t> random_bias(std::mt19937_64& rng, std::int64_t rows) {
  std::uniform_int_distribution<std::int64_t> value(-(std::int64_t{1} << 31),
                                                    (std::int64_t{1} << 31) - 1);
  std::vector<std::int64_t> bias(static_cast<std::size_t>(rows));
  for (auto& b : bias) b = value(rng);
  return bias;
}

inline shift::PackedWeights random_packed(std::mt19937_64& rng, const LayerFormat& format,
                                          const Shape& shape, bool with_bias) {
  shift::PackedWeights packed = shift::pack_weights(random_shift_weights(rng, format, shape),
                                                    Tensor(), 0, format.weight_bits <= 4);
  if (with_bias) packed.bias = random_bias(rng, packed.rows);
  return packed;
}

// Activations across the whole format, a quarter of them at its lowest or highest value.
inline std::vector<std::int32_t> random_activations(std::mt19937_64& rng,
                                                    const shift::ActivationFormat& format,
                                                    std::int64_t count) {
  std::uniform_int_distribution<std::int64_t> value(format.lowest(), format.highest());
  std::uniform_int_distribution<int> pick(0, 7);
  std::vector<std::int32_t> x(static_cast<std::size_t>(count));
  for (auto& v : x) {
    const int p = pick(rng);
    const std::int64_t chosen = p == 0 ? format.lowest() : p == 1 ? format.highest() : value(rng);
    v = static_cast<std::int32_t>(static_cast<std::uint32_t>(chosen));
  }
  return x;
}

inline std::string describe(const LayerFormat& f) {
  return std::string(shift::shift_type_name(f.type)) + " b=" + std::to_string(f.weight_bits) +
         " act=" + std::to_string(f.activation.bits) + (f.activation.is_signed ? "s" : "u");
}

// A small random convolution (stride, padding, dilation, groups, sometimes depthwise) with
// its output channels; nullopt when the draw gives no output.
struct ConvCase {
  shift::ConvGeometry geometry;
  std::int64_t out_channels;
  std::string describe() const {
    const auto& g = geometry;
    const auto& p = g.params;
    return "N=" + std::to_string(g.batch) + " C=" + std::to_string(g.channels) +
           " O=" + std::to_string(out_channels) + " " + std::to_string(g.height) + "x" +
           std::to_string(g.width) + " k=" + std::to_string(g.kernel_h) + "x" +
           std::to_string(g.kernel_w) + " stride=" + std::to_string(p.stride_h) + "," +
           std::to_string(p.stride_w) + " pad=" + std::to_string(p.pad_h) + "," +
           std::to_string(p.pad_w) + " dil=" + std::to_string(p.dilation_h) + "," +
           std::to_string(p.dilation_w) + " groups=" + std::to_string(p.groups);
  }
};

inline std::optional<ConvCase> random_conv_case(std::mt19937_64& rng) {
  auto pick = [&](std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(rng);
  };
  shift::ConvGeometry g;
  const std::int64_t groups = pick(1, 3);
  const bool depthwise = rng() % 4 == 0;
  g.batch = pick(1, 3);
  g.channels = depthwise ? pick(1, 5) : groups * pick(1, 3);
  g.params.groups = depthwise ? g.channels : groups;
  g.height = pick(1, 9), g.width = pick(1, 9);
  g.kernel_h = pick(1, 3), g.kernel_w = pick(1, 3);
  g.params.stride_h = pick(1, 3), g.params.stride_w = pick(1, 3);
  g.params.pad_h = pick(0, 2), g.params.pad_w = pick(0, 2);
  g.params.dilation_h = pick(1, 2), g.params.dilation_w = pick(1, 2);
  if (g.out_h() < 1 || g.out_w() < 1) return std::nullopt;
  return ConvCase{g, g.params.groups * pick(1, 3)};
}

inline std::vector<LayerFormat> all_layer_formats() {
  std::vector<LayerFormat> formats;
  for (int bits = 2; bits <= 8; ++bits)
    for (const auto type : {shift::ShiftType::PS, shift::ShiftType::Q})
      for (const int act : {8, 16, 32})
        for (const bool is_signed : {true, false})
          formats.push_back({bits, type, {act, is_signed}});
  return formats;
}

}  // namespace ds::test
