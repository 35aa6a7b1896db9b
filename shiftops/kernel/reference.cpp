// The plain scalar references: every term sign * x * 2^(K - k) added one at a time into a
// 256-bit two's complement integer, shifted right by K once at the end. Nothing here shares
// code with the kernels but the decoding of a code.
#include <array>

#include "shiftops/kernel.hpp"

namespace ds::shift {

namespace {

class Int256 {
 public:
  // this += value * 2^shift, for |value| < 2^63 and shift <= 127.
  void add_shifted(std::int64_t value, int shift) {
    std::array<std::uint64_t, 4> term{};
    term.fill(value < 0 ? ~std::uint64_t{0} : 0);
    term[0] = static_cast<std::uint64_t>(value);
    for (; shift >= 64; shift -= 64) term = {0, term[0], term[1], term[2]};
    if (shift > 0)
      for (int i = 3; i >= 0; --i)
        term[i] = (term[i] << shift) | (i > 0 ? term[i - 1] >> (64 - shift) : 0);
    std::uint64_t carry = 0;
    for (int i = 0; i < 4; ++i) {
      const std::uint64_t partial = limbs_[i] + carry;
      const std::uint64_t sum = partial + term[i];
      carry = (partial < carry) + (sum < partial);
      limbs_[i] = sum;
    }
  }
  // floor(this / 2^shift), which must fit int64.
  std::int64_t floor_shifted(int shift) const {
    std::array<std::uint64_t, 4> v = limbs_;
    const bool negative = v[3] >> 63;
    for (; shift >= 64; shift -= 64) v = {v[1], v[2], v[3], negative ? ~std::uint64_t{0} : 0};
    if (shift > 0) return static_cast<std::int64_t>((v[0] >> shift) | (v[1] << (64 - shift)));
    return static_cast<std::int64_t>(v[0]);
  }

 private:
  std::array<std::uint64_t, 4> limbs_{};
};

std::int64_t activation(const std::int32_t* x, const ActivationFormat& format) {
  return format.is_signed ? *x : static_cast<std::int64_t>(static_cast<std::uint32_t>(*x));
}

// One output from `cols` activations produced by `input(i)` (0 where it lies in the padding).
template <typename Input>
std::int64_t reference_output(const PackedWeights& w, std::int64_t row, Input&& input) {
  Int256 total;
  for (std::int64_t i = 0; i < w.cols; ++i) {
    const int sign = w.sign(row, i);
    if (sign != 0) total.add_shifted(sign * input(i), w.max_k - w.k(row, i));
  }
  const std::int64_t floored = total.floor_shifted(w.max_k);
  return w.bias.empty() ? floored : floored + w.bias[static_cast<std::size_t>(row)];
}

}  // namespace

void linear_reference(const PackedWeights& weights, const std::int32_t* x, std::int64_t batch,
                      const ActivationFormat& format, std::int64_t* y) {
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t r = 0; r < weights.rows; ++r)
      y[n * weights.rows + r] = reference_output(
          weights, r, [&](std::int64_t i) { return activation(x + n * weights.cols + i, format); });
}

void conv2d_reference(const PackedWeights& weights, const std::int32_t* x, const ConvGeometry& g,
                      const ActivationFormat& format, std::int64_t* y) {
  g.validate(weights);
  const auto& p = g.params;
  const std::int64_t oh = g.out_h(), ow = g.out_w();
  const std::int64_t group_channels = g.channels / p.groups, group_rows = weights.rows / p.groups;
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t o = 0; o < weights.rows; ++o)
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox) {
          const std::int64_t first_channel = o / group_rows * group_channels;
          *y++ = reference_output(weights, o, [&](std::int64_t i) -> std::int64_t {
            const std::int64_t c = i / (g.kernel_h * g.kernel_w);
            const std::int64_t r = i / g.kernel_w % g.kernel_h, s = i % g.kernel_w;
            const std::int64_t iy = oy * p.stride_h - p.pad_h + r * p.dilation_h;
            const std::int64_t ix = ox * p.stride_w - p.pad_w + s * p.dilation_w;
            if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) return 0;
            return activation(
                x + ((n * g.channels + first_channel + c) * g.height + iy) * g.width + ix, format);
          });
        }
}

}  // namespace ds::shift
