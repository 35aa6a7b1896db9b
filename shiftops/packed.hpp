#pragma once
// The packed shift-weight format (docs/kernels.md, format version 1): one code per weight,
// 8 or 4 bits, laid out in rows of whole 64-weight blocks so that every SIMD path reads aligned,
// padded blocks. A code stores the sign and the left-shift amount a = K - k relative to the
// layer's largest exponent K = max k (weight = sign * 2^-k), so the kernels shift each
// activation left by a and shift the exact sum right by K once.
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "shiftops/layers.hpp"

namespace ds::shift {

inline constexpr int kPackedFormatVersion = 1;
inline constexpr std::int64_t kPackedBlock = 64;  // weights per block; rows are padded to it

// 8-bit code: bit 7 = negative, bits 0-6 = shift amount a in 0..126; amount 127 (kZeroCode, or
// 0xFF with the sign bit set) is a zero weight.
inline constexpr std::uint8_t kZeroCode = 0x7F;
inline constexpr int kMaxAmount = 126;
// 4-bit code: bit 3 = negative, bits 0-2 = a in 0..6, 7 = zero weight. Within each 64-weight
// block (32 bytes), weight 32h + j (j < 16) sits in the low nibble of byte 16h + j and weight
// 32h + 16 + j in its high nibble, so one byte load and two masks yield 16 codes in order.
inline constexpr std::uint8_t kZeroNibble = 0x7;
inline constexpr int kMaxNibbleAmount = 6;
// The 4-bit code of an 8-bit one whose amount is at most kMaxNibbleAmount (or a zero weight).
inline std::uint8_t code_to_nibble(std::uint8_t code) {
  const int amount = code & 0x7F;
  if (amount > kMaxNibbleAmount) return kZeroNibble;
  return static_cast<std::uint8_t>((code >> 7) << 3 | amount);
}

// The layout rules the packer follows, in one place: the code width a layer gets (4 bits when
// allowed and its nonzero exponents span at most kMaxNibbleAmount + 1 values, else 8) and the
// bytes of one row of `cols` weights padded to whole blocks.
int packed_code_bits(bool allow_4bit, int exponent_span);
std::int64_t packed_row_bytes(std::int64_t cols, int code_bits);

struct PackedWeights {
  std::int64_t rows = 0;            // output channels
  std::int64_t cols = 0;            // fan-in: in_features, or in_channels / groups * kh * kw
  int code_bits = 8;                // 8 or 4
  int max_k = 0;                    // K: the largest k of a nonzero weight (0 when all are zero)
  int fraction_bits = 0;            // F of the activation format the bias is expressed in
  std::vector<std::uint8_t> codes;  // rows * row_bytes()
  std::vector<std::int64_t> bias;   // bias * 2^F, one per row; empty without a bias

  std::int64_t padded_cols() const {
    return (cols + kPackedBlock - 1) / kPackedBlock * kPackedBlock;
  }
  std::int64_t row_bytes() const { return packed_row_bytes(cols, code_bits); }
  const std::uint8_t* row(std::int64_t r) const { return codes.data() + r * row_bytes(); }
  // The 8-bit code of one weight, whichever width it is stored at.
  std::uint8_t code(std::int64_t r, std::int64_t c) const;
  // The 8-bit codes of row r, padded_cols() of them.
  void decode_row(std::int64_t r, std::uint8_t* codes) const;
  // The weight's exponent k and sign (0 for a zero weight), decoded from its code.
  int sign(std::int64_t r, std::int64_t c) const;
  int k(std::int64_t r, std::int64_t c) const;
  // Throws ds::Error, naming `who`, unless the layout holds: 4- or 8-bit codes, rows * row_bytes()
  // of them, a bias per row or none, K in 0..127, every nonzero code's amount at most K and only
  // zero codes past `cols`. The kernels trust it (an amount beyond K would index past the wide
  // path's buckets, and on a GPU read out of bounds); pack_weights and the file loader only
  // produce such weights, hand-made ones are checked when prepared.
  void validate(const char* who) const;
};

// Packs `weight` (values 0 or +-2^-k, k in 0..127 spanning at most 127 exponents, any shape
// [rows, ...]) and `bias` (values
// on the 2^-F grid, or undefined). 4-bit codes are used when `allow_4bit` and every nonzero k
// lies within K - 6..K; otherwise 8-bit. Throws ds::Error naming the first value that is no
// signed power of two.
PackedWeights pack_weights(const Tensor& weight, const Tensor& bias, int fraction_bits,
                           bool allow_4bit);
// The rounded weight a shift layer's forward uses now, packed (4 bits for weight bits <= 4).
PackedWeights pack(ShiftLayer& layer);
// The weights as floats (0 or +-2^-k), shape [rows, cols].
Tensor unpack_weights(const PackedWeights& packed);

// Writes the model's state dict to a safetensors file in which every shift layer's weight
// parameters (`.weight` for Q, `.shift` and `.sign` for PS) are replaced by `.codes`, a u8
// tensor [rows, row_bytes], described by the metadata key "deepshift.packed.<layer>"; the
// metadata key "deepshift.packed_format" holds the format version.
void save_packed(nn::Module& model, const std::string& path);
// Reads such a file back into a model of the same architecture (all or nothing). Refuses a file
// of another format version, codes outside the layer's shift range, or a layer mismatch.
void load_packed(nn::Module& model, const std::string& path);

}  // namespace ds::shift
