// Packing shift weights into codes (format in shiftops/packed.hpp and docs/kernels.md).
#include "shiftops/packed.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.hpp"

namespace ds::shift {

namespace {

// Byte offset and nibble half of weight c in a 4-bit row (see the layout in packed.hpp).
struct NibbleSlot {
  std::int64_t byte;
  bool high;
};

NibbleSlot nibble_slot(std::int64_t c) {
  const std::int64_t within = c % kPackedBlock;
  return {c / kPackedBlock * 32 + within / 32 * 16 + within % 16, within % 32 >= 16};
}

std::uint8_t nibble_to_code(std::uint8_t nibble) {
  const std::uint8_t amount = nibble & 7;
  if (amount == kZeroNibble) return kZeroCode;
  return static_cast<std::uint8_t>(((nibble & 8) << 4) | amount);
}

// Exponents run to 127 (DeepShift-Q with 8 weight bits); codes hold K - k, so a layer's span
// K - k_low must stay within 126 (257 values would not fit 8 bits with the zero code).
constexpr int kMaxExponent = 127;

// The exponent k of a signed power of two 2^-k with k in 0..127, or -1 when v is no such value.
int exponent_of(double v) {
  int e = 0;
  const double mantissa = std::frexp(std::fabs(v), &e);
  const int k = 1 - e;
  return mantissa == 0.5 && k >= 0 && k <= kMaxExponent ? k : -1;
}

}  // namespace

int packed_code_bits(bool allow_4bit, int exponent_span) {
  return allow_4bit && exponent_span <= kMaxNibbleAmount ? 4 : 8;
}

std::int64_t packed_row_bytes(std::int64_t cols, int code_bits) {
  return (cols + kPackedBlock - 1) / kPackedBlock * kPackedBlock * code_bits / 8;
}

std::uint8_t PackedWeights::code(std::int64_t r, std::int64_t c) const {
  if (code_bits == 8) return row(r)[c];
  const NibbleSlot slot = nibble_slot(c);
  const std::uint8_t byte = row(r)[slot.byte];
  return nibble_to_code(slot.high ? byte >> 4 : byte & 15);
}

void PackedWeights::decode_row(std::int64_t r, std::uint8_t* out) const {
  const std::uint8_t* bytes = row(r);
  if (code_bits == 8) {
    std::copy(bytes, bytes + padded_cols(), out);
    return;
  }
  std::uint8_t code_of_nibble[16];
  for (std::uint8_t nibble = 0; nibble < 16; ++nibble)
    code_of_nibble[nibble] = nibble_to_code(nibble);
  for (std::int64_t block = 0; block < padded_cols(); block += kPackedBlock, bytes += 32)
    for (int half = 0; half < 2; ++half)
      for (int j = 0; j < 16; ++j) {
        const std::uint8_t byte = bytes[16 * half + j];
        out[block + 32 * half + j] = code_of_nibble[byte & 15];
        out[block + 32 * half + 16 + j] = code_of_nibble[byte >> 4];
      }
}

int PackedWeights::sign(std::int64_t r, std::int64_t c) const {
  const std::uint8_t value = code(r, c);
  return (value & 0x7F) == kZeroCode ? 0 : (value & 0x80 ? -1 : 1);
}

void PackedWeights::validate(const char* who) const {
  if (code_bits != 4 && code_bits != 8) fail(who, ": code width ", code_bits, " (4 or 8 bits)");
  if (rows < 0 || cols < 1 || max_k < 0 || max_k > kMaxAmount + 1)
    fail(who, ": packed weights of ", rows, "x", cols, " with K = ", max_k);
  if (static_cast<std::int64_t>(codes.size()) != rows * row_bytes())
    fail(who, ": ", codes.size(), " code bytes for ", rows, " rows of ", row_bytes());
  if (!bias.empty() && static_cast<std::int64_t>(bias.size()) != rows)
    fail(who, ": ", bias.size(), " bias values for ", rows, " rows");
  // A fast pass over the bytes (either nibble of a 4-bit code byte, the real columns of an
  // 8-bit row), then the padding's few codes one by one; the slow search for the message only
  // when something is wrong.
  // By value: captured by reference, the bounds were reloaded per byte and the loops scalar.
  const int zero_amount = code_bits == 8 ? kZeroCode : kZeroNibble, k = max_k;
  const auto outside = [zero_amount, k](int amount) { return amount != zero_amount && amount > k; };
  const std::int64_t scanned = code_bits == 8 ? cols : row_bytes();
  int bad = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* bytes = row(r);
    if (code_bits == 8) {
#pragma omp simd reduction(| : bad)
      for (std::int64_t i = 0; i < scanned; ++i) bad |= outside(bytes[i] & 0x7F);
    } else {
#pragma omp simd reduction(| : bad)
      for (std::int64_t i = 0; i < scanned; ++i)
        bad |= outside(bytes[i] & 7) | outside((bytes[i] >> 4) & 7);
    }
    for (std::int64_t c = cols; c < padded_cols(); ++c) bad |= (code(r, c) & 0x7F) != kZeroCode;
    if (!bad) continue;
    for (std::int64_t c = 0; c < padded_cols(); ++c) {
      const std::uint8_t value = code(r, c);
      const int amount = value & 0x7F;
      if (amount != kZeroCode && (amount > max_k || c >= cols))
        fail(who, ": code ", int{value}, " of row ", r, " column ", c,
             " is outside the layer's shift range (K = ", max_k, ", ", cols, " columns)");
    }
  }
}

int PackedWeights::k(std::int64_t r, std::int64_t c) const { return max_k - (code(r, c) & 0x7F); }

PackedWeights pack_weights(const Tensor& weight, const Tensor& bias, int fraction_bits,
                           bool allow_4bit) {
  if (weight.dim() < 2) fail("pack_weights: weight of shape ", weight.shape(), " has no rows");
  PackedWeights packed;
  packed.rows = weight.size(0);
  packed.cols = weight.numel() / packed.rows;
  packed.fraction_bits = fraction_bits;
  const std::vector<double> values = weight.to(DType::f64).contiguous().to_vector<double>();
  int k_low = kMaxExponent, k_high = 0;
  std::vector<int> exponents(values.size(), -1);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] == 0.0) continue;
    exponents[i] = exponent_of(values[i]);
    if (exponents[i] < 0)
      fail("pack_weights: weight ", values[i], " at flat index ", i, " of shape ", weight.shape(),
           " is not 0 or +-2^-k with k in 0..", kMaxExponent);
    k_low = std::min(k_low, exponents[i]);
    k_high = std::max(k_high, exponents[i]);
  }
  if (k_high - k_low > kMaxAmount)
    fail("pack_weights: weights of shape ", weight.shape(), " span exponents ", k_low, "..", k_high,
         "; a packed layer holds at most ", kMaxAmount + 1, " consecutive exponents");
  packed.max_k = k_high;
  packed.code_bits = packed_code_bits(allow_4bit, k_high - k_low);
  const std::uint8_t zero_byte = packed.code_bits == 8 ? kZeroCode : kZeroNibble * 0x11;
  packed.codes.assign(static_cast<std::size_t>(packed.rows * packed.row_bytes()), zero_byte);
  for (std::int64_t r = 0; r < packed.rows; ++r) {
    std::uint8_t* row = packed.codes.data() + r * packed.row_bytes();
    for (std::int64_t c = 0; c < packed.cols; ++c) {
      const std::size_t i = static_cast<std::size_t>(r * packed.cols + c);
      if (exponents[i] < 0) continue;
      const int amount = k_high - exponents[i];
      const bool negative = values[i] < 0;
      if (packed.code_bits == 8) {
        row[c] = static_cast<std::uint8_t>((negative ? 0x80 : 0) | amount);
        continue;
      }
      const std::uint8_t nibble = static_cast<std::uint8_t>((negative ? 8 : 0) | amount);
      const NibbleSlot slot = nibble_slot(c);
      std::uint8_t& byte = row[slot.byte];
      byte = slot.high ? static_cast<std::uint8_t>((byte & 0x0F) | (nibble << 4))
                       : static_cast<std::uint8_t>((byte & 0xF0) | nibble);
    }
  }
  if (bias.defined()) {
    if (bias.numel() != packed.rows)
      fail("pack_weights: bias of shape ", bias.shape(), " for ", packed.rows, " rows");
    for (const double b : bias.to(DType::f64).contiguous().to_vector<double>()) {
      const double scaled = std::ldexp(b, fraction_bits);
      if (scaled != std::floor(scaled) || std::fabs(scaled) > 0x1p62)
        fail("pack_weights: bias ", b, " is not on the 2^-", fraction_bits,
             " fixed-point grid (round it with fixed_point first)");
      packed.bias.push_back(static_cast<std::int64_t>(scaled));
    }
  }
  return packed;
}

PackedWeights pack(ShiftLayer& layer) {
  NoGradGuard no_grad;
  return pack_weights(layer.effective_weight(), layer.fixed_bias(),
                      layer.options().activation.fraction, layer.options().weight_bits <= 4);
}

Tensor unpack_weights(const PackedWeights& packed) {
  std::vector<float> values(static_cast<std::size_t>(packed.rows * packed.cols));
  for (std::int64_t r = 0; r < packed.rows; ++r)
    for (std::int64_t c = 0; c < packed.cols; ++c)
      values[static_cast<std::size_t>(r * packed.cols + c)] =
          static_cast<float>(packed.sign(r, c) * std::ldexp(1.0, -packed.k(r, c)));
  return Tensor::from_vector(values, {packed.rows, packed.cols});
}

}  // namespace ds::shift
