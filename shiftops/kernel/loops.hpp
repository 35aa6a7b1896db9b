#pragma once
// The inner loops every instruction-set path compiles (loops.inc) and the tasks they take.
// Deliberately free of framework headers: each path's file is compiled with its own target
// flags, and an inline function shared with other files could be emitted with those flags.
#include <cstdint>
#include <type_traits>
#include <utility>

namespace ds::shift::kernel {

// The packed rows a task works on (see shiftops/packed.hpp for the code layout).
struct CodeRows {
  const std::uint8_t* codes;  // the first row of the task's range (callers do the indexing)
  std::int64_t row_bytes;
  std::int64_t padded_cols;  // a multiple of 64; codes past the real columns are zero weights
  int code_bits;             // 8 or 4
};

// How the activations widen and how long int32 partial sums may run before a flush. On the
// int32 path a shift amount a = (g << split_bits) + lo is split into a group g < groups and a
// low part lo: each group sums x << lo in its own int32 partial sums, which are flushed to int64
// shifted left by g << split_bits (docs/kernels.md, "Exactness"). A group costs the dot form a
// masked accumulator per vector (beyond 2, its int64 lanes are faster) and the column form a
// flush per segment and row.
inline constexpr int kMaxDotGroups = 2;
inline constexpr int kMaxColumnGroups = 8;

// The column form's entry lists, for int32 and int16 lanes (built once per PreparedWeights,
// prepared.cpp): per row and segment of `capacity` weights, the index within the segment of
// each nonzero weight, grouped by key = (group, lo from the highest down, sign), so that the lane
// tiles add or subtract the inputs of one key and shift once per lo. At most 2 * 25 keys with one
// group (m + K <= 24) and 2 * groups * 2^split with more: 2 * 8 * 8 (lo < 8 for m >= 10),
// 2 * 4 * 16 (lo < 16 for m <= 9 leaves K < 64, 4 groups). A segment holds at most 112 weights:
// a 64-lane tile of its inputs and the zero input (113 inputs of 256 bytes, 28 KiB) then stays in
// the L1 cache, and an index fits in a byte.
inline constexpr int kMaxKeys = 128;
inline constexpr std::int64_t kMaxSegmentWeights = 112;
// The most magnitude bits of activations the column form sums in int16 lanes
// (Lanes::column16_bits).
inline constexpr int kColumn16Bits = 8;
struct ListShape {
  std::int64_t capacity;          // weights per segment (at most kMaxSegmentWeights); the
                                  // index of the tile's zero input
  std::int64_t segments;          // per row
  int lo_values;                  // lo ranges over 0..lo_values - 1
  int keys;                       // 2 * groups * lo_values
  std::uint8_t key_of_code[256];  // an 8-bit code's key, or `keys` for a zero weight
};

// How the lists of a layer are laid out. Every segment of every row gives key k the same number
// of slots, slots[k], so that the loop over a key's slots runs the same number of times in every
// segment and its exit is predicted (with a count per segment, each of the ~30 keys of a
// segment ended in a mispredicted branch, which cost more than the adds). A key with fewer
// entries pads its slots with `capacity`, the index of a zero input; entries beyond its slots
// spill into a list per (group, sign) of (index, lo) pairs, shifted one by one. A segment's
// record: fixed_slots indices (the keys' slots in key order), 2 * groups spill counts (group
// by group, positive then negative), and where its spills start in the layer's spill list
// (uint32, in pairs).
struct Schedule {
  std::uint8_t slots[kMaxKeys];
  // Column form on int16 lanes (Lanes::column16_bits): per lo level (from the highest lo down),
  // 0 where the level's int16 sums go on into the next level's, else the number of levels
  // since the last widening, by which the int32 sums shift before they take the int16 ones.
  std::uint8_t widen_after[kMaxKeys / 2];
  std::int64_t fixed_slots;   // sum of slots
  std::int64_t record_bytes;  // fixed_slots + 2 * groups + 4
  std::int64_t row_bytes;     // segments * record_bytes
  std::int64_t chunk_rows;    // rows whose records the lane tiles run through together
};

struct Lanes {
  bool wide64;                // int64 terms: the dot form's int64 lanes, or the wide plan
  bool is_unsigned;           // activations are unsigned bit patterns (zero-extended)
  std::int64_t flush_blocks;  // int32 dot form: 64-weight blocks summed before flushing to int64
  int groups;                 // int32 path: 1 to kMaxDotGroups or kMaxColumnGroups groups
  int split_bits;             // int32 path: bits of lo (7 with one group: lo = a)
  ListShape lists;            // int32 path, column form
  // Dot form on int16 lanes (PathLoops::dot16): every term fits 16 bits with room for
  // dot16_flush of them per lane before the partial sums are widened to int32.
  bool dot16 = false;
  int dot16_flush = 0;
  // Table form (PathLoops::table_rows): the dot16 bounds, and every shift amount a 4-bit code
  // holds, so that a code fits the 16 entries of a lookup table.
  bool table16 = false;
  // Column form on int16 lanes: with one group and activations of at most 8 magnitude bits, a
  // segment's inputs of one lo (at most kMaxSegmentWeights of 2^8) sum in int16 lanes, and so
  // do several levels' Horner sums while the schedule's slots bound them (widen_after); the
  // magnitude bits, or 0 where the int32 lanes run.
  int column16_bits = 0;
};

// Dot form, one activation vector against rows [row_begin, row_end): sums[r - row_begin] =
// sum_i sign * x[i] << a. x holds padded_cols values (zero past the real columns); the int16
// path reads x16 instead, x as int16 values.
struct DotTask {
  CodeRows weights;
  Lanes lanes;
  const std::int32_t* x;
  const std::int16_t* x16;
  std::int64_t row_begin, row_end;
  std::int64_t* sums;
};

// Which part of each activation the int32 column loops sum: all of it, or for the int32_halves
// accumulator its high or its low 16-bit half (plan.hpp), taken as the tiles are filled.
enum class ActivationPart { whole, high_half, low_half };

// A convolution's inputs read straight from the image, without an im2col: for a stride-1
// convolution as wide as its input, consecutive output positions of a tap read consecutive
// pixels, so lane l of input i = channel * taps + tap, in the 16-lane unit u = l / 16, reads
// planes[channel * plane_size + tap_offsets[tap] + unit_offsets[u] + l % 16] where bit l % 16 of
// masks[tap * units + u] is set, and is zero elsewhere (padding, lanes past the item's). A unit
// lies within one image. A tap's masks lie side by side, so that filling a tile reads them from
// one pointer per tap.
struct ImageInputs {
  const std::int32_t* planes;  // the item's first image, first channel of its group
  std::int64_t plane_size;
  std::int64_t taps;
  std::int64_t units;
  const std::int64_t* tap_offsets;
  const std::int64_t* unit_offsets;
  const std::uint16_t* masks;
};

// Column form, rows [row_begin, row_end) against a column matrix xt [cols, width] (row i holds
// input i for every one of `width` positions), or against `image`'s inputs where that is set:
// sums[r][l] (leading dimension `width`).
struct ColumnTask {
  CodeRows weights;
  Lanes lanes;
  std::int64_t cols;
  const std::int32_t* xt;
  std::int64_t width;
  std::int64_t row_begin, row_end;
  std::int64_t* sums;
  std::int64_t sums_stride;  // between rows of sums
  // int32 path: the layer's schedule, the records of the task's first row and the spill list.
  const Schedule* schedule = nullptr;
  const std::uint8_t* records = nullptr;
  const std::uint8_t* spills = nullptr;
  ActivationPart part = ActivationPart::whole;
  const ImageInputs* image = nullptr;
  // Set by run_columns (plan.hpp), as the loops must not multiply: capacity * width, the
  // distance in xt from one segment's inputs to the next.
  std::int64_t segment_stride = 0;
  // Where the rows' sums go when set (int32 blocks; the halves combine two passes first): the last
  // segment hands each row's sums of a lane tile, whole, to call(context, row, first lane,
  // sums, count) instead of adding them to `sums`, which saves storing them and reading them
  // back to finish them.
  struct Finish {
    void (*call)(const void* context, std::int64_t row, std::int64_t lane, const std::int64_t* sums,
                 std::int64_t count) = nullptr;
    const void* context = nullptr;
  };
  Finish finish{};
};

// Table form, batch 1 on prepared weights (docs/kernels.md, "Lookup tables"): the 16 int16
// values sign * x << a a 4-bit code can select, one table per input, split into a table of
// their low bytes and one of their high bytes (tables: 32 bytes per input). The codes are laid
// out in tiles of kTableRows rows: per pair of inputs (2i, 2i + 1) one 64-byte vector whose
// byte j holds row j's code of input 2i in its low nibble and of input 2i + 1 in its high one,
// so that one byte shuffle looks up the terms of 64 rows at once (AVX-512; AVX2 takes the 32-byte
// halves, 32 rows, one after the other).
inline constexpr std::int64_t kTableRows = 64;
inline constexpr std::int64_t kTableBytes = 32;  // per input
struct TableTask {
  const std::uint8_t* tiles;  // the task's first tile
  std::int64_t tile_bytes;    // inputs * kTableRows / 2
  std::int64_t inputs;        // padded_cols
  const std::uint8_t* tables;
  std::int64_t tile_count;
  std::int32_t* sums;  // kTableRows per tile, in row order
};

struct PathLoops {
  void (*dot)(const DotTask&);
  void (*columns)(const ColumnTask&);
  // The dot form on int16 lanes where the instruction set shifts 16-bit lanes by per-lane
  // amounts (AVX-512 BW's vpsllvw); null elsewhere.
  void (*dot16)(const DotTask&);
  // The table form (byte shuffles of AVX-512 BW or AVX2; null on the portable path): lookup_tables
  // writes the tables of x (cols values, zeros up to `inputs`), table_rows sums the task's tiles.
  void (*lookup_tables)(const std::int32_t* x, std::int64_t cols, std::int64_t inputs,
                        std::uint8_t* tables);
  void (*table_rows)(const TableTask&);
};

namespace portable {
extern const PathLoops loops;
}
namespace avx2 {
extern const PathLoops loops;
}
namespace avx512 {
extern const PathLoops loops;
}

}  // namespace ds::shift::kernel
