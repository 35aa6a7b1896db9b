// The wide path: exact for any exponent range (K up to 127 with 32-bit activations, where even
// int64 or __int128 sums of x << (K - k) could overflow). Terms are summed per exponent into
// int64 buckets S_k, then floor(sum_k S_k 2^-k) is formed by Horner's scheme from k = K down:
// c_K = S_K, c_(k-1) = S_(k-1) + floor(c_k / 2), using floor(v / 2) = floor(floor(v) / 2).
#include "shiftops/kernel/plan.hpp"

namespace ds::shift::kernel {

std::int64_t wide_output(const PackedWeights& weights, std::int64_t row, const std::int32_t* x,
                         std::int64_t stride, bool is_unsigned, std::int64_t* buckets) {
  const int top = weights.max_k;
  for (int k = 0; k <= top; ++k) buckets[k] = 0;
  for (std::int64_t i = 0; i < weights.cols; ++i, x += stride) {
    const std::uint8_t code = weights.code(row, i);
    if ((code & 0x7F) == kZeroCode) continue;
    const std::int64_t value =
        is_unsigned ? static_cast<std::int64_t>(static_cast<std::uint32_t>(*x)) : *x;
    std::int64_t& bucket = buckets[top - (code & 0x7F)];
    bucket += code & 0x80 ? -value : value;
  }
  std::int64_t floored = buckets[top];
  for (int k = top; k > 0; --k) floored = buckets[k - 1] + (floored >> 1);
  return weights.bias.empty() ? floored : floored + weights.bias[static_cast<std::size_t>(row)];
}

}  // namespace ds::shift::kernel
