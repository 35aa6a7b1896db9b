#pragma once
// What linear.cpp and conv2d.cpp share: the accumulator and loops chosen for a layer, the
// final floor-and-bias step, and the wide path for exponent ranges int64 cannot hold.
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "shiftops/kernel.hpp"
#include "shiftops/kernel/loops.hpp"

namespace ds::shift::kernel {

struct Plan {
  LoopForm form;
  Accumulator accumulator;
  Lanes lanes;
  const PathLoops* loops;
};
Plan make_plan(const PackedWeights& weights, const ActivationFormat& format, KernelPath path,
               LoopForm form);

CodeRows code_rows(const PackedWeights& weights, std::int64_t first_row);

// The column form's entry lists of every row (Schedule in loops.hpp): the schedule, each row's
// segment records one after the other, and the spilled (index, lo) pairs of all of them.
struct EntryLists {
  Schedule schedule;
  std::vector<std::uint8_t> records, spills;
};

// Whether plan a's loops do less work than b's: a narrower accumulator (int32 blocks, halves,
// int64, wide, in that order), or on int32 blocks fewer shift groups or the int16 forms.
bool cheaper(const Plan& a, const Plan& b);

// The narrowest format of the same signedness that holds the n activations x: the bits a call's
// values actually span, at least 2.
ActivationFormat narrowest_format(const ActivationFormat& format, const std::int32_t* x,
                                  std::int64_t n);

// What PreparedWeights keeps per loop form: the plan, and for the column form the entry lists,
// for the dot form the table form's tiles, once a call asks for them.
struct Preparation {
  Plan plan;
  // Whether a narrower activation format could give a cheaper plan (set by PreparedWeights):
  // only then does a call look at its activations' range.
  bool narrowing_pays = false;
  // The preparation for a narrower format of the same signedness and the same form than this
  // one's (own_bits; its bits index a cache): when its plan is cheaper, one shared by every
  // width of that cost, else this.
  const Preparation& narrowed(const PackedWeights& weights, const ActivationFormat& format,
                              int own_bits, KernelPath path) const;
  // The column form's lists, built on the first call (once, whichever thread calls); null for
  // the wide plan, which runs no loops.
  const EntryLists* lists(const PackedWeights& weights) const;
  // The table form's tiles of codes (TableTask), or null: without the table form, and on the
  // first batch-1 call, for which the dot form costs less than laying the codes out (weights
  // prepared for a single call never pay for it). Built once, by the second call.
  const std::uint8_t* table_tiles(const PackedWeights& weights) const;

 private:
  mutable std::once_flag built_;
  mutable EntryLists lists_;
  mutable std::atomic<int> table_calls_{0};
  mutable std::once_flag tiles_built_;
  mutable std::vector<std::uint8_t> tiles_;
  mutable std::array<std::atomic<const Preparation*>, 33> by_bits_{};
  mutable std::mutex narrowed_mutex_;
  mutable std::vector<std::unique_ptr<const Preparation>> narrower_;
};

// A shared_ptr that does not own `weights`: preparing weights for a single call.
inline std::shared_ptr<const PackedWeights> borrow(const PackedWeights& weights) {
  return {std::shared_ptr<const PackedWeights>(), &weights};
}

// The schedule and the lists in a ColumnTask for rows from `first_row` (int32 plans; null
// pointers otherwise).
void point_at_lists(const Preparation& preparation, const PackedWeights& weights,
                    std::int64_t first_row, ColumnTask& task);

inline std::int64_t bias_of_row(const PackedWeights& weights, std::int64_t row) {
  return weights.bias.empty() ? 0 : weights.bias[static_cast<std::size_t>(row)];
}
// floor(sum / 2^K) + bias[row]: the single rounding of the exact sum (an arithmetic shift).
inline std::int64_t finish(const PackedWeights& weights, std::int64_t row, std::int64_t sum) {
  return (sum >> weights.max_k) + bias_of_row(weights, row);
}

// Where a call writes its results (kernel.hpp): the exact integers, or as floats y * 2^-F, the
// integer rounded once to float and scaled exactly (no result is subnormal for F <= 32).
struct Outputs {
  std::int64_t* integers = nullptr;
  float* floats = nullptr;
  float scale = 1.0f;  // 2^-F

  static Outputs as_floats(float* y, int fraction) {
    return {nullptr, y, std::ldexp(1.0f, -fraction)};
  }
  Outputs from(std::int64_t offset) const {
    return {integers ? integers + offset : nullptr, floats ? floats + offset : nullptr, scale};
  }
  void set(std::int64_t i, std::int64_t value) const {
    if (floats)
      floats[i] = static_cast<float>(value) * scale;
    else
      integers[i] = value;
  }
};

// finish for n sums of one row, written to out[0, n) (which may hold the sums themselves): the
// bias and K read once, not per value as a loop over finish would reload them after every store.
inline void finish_row(const PackedWeights& weights, std::int64_t row, const std::int64_t* sums,
                       std::int64_t n, const Outputs& out) {
  const int k = weights.max_k;
  const std::int64_t bias = bias_of_row(weights, row);
  if (out.floats) {
    float* to = out.floats;
    const float scale = out.scale;
    const auto convert = [&] {
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i)
        to[i] = static_cast<float>((sums[i] >> k) + bias) * scale;
    };
#if defined(__AVX512DQ__)
    // One instruction per 8 values (vcvtqq2ps); the trick below took 2.7% of a resnet20
    // inference through the kernel more.
    convert();
#else
    // AVX2 has no int64 -> float conversion, so a plain loop stays scalar. Below 2^51 in
    // magnitude an integer y is exactly the double whose bits are y + bits(1.5 * 2^52), less
    // 1.5 * 2^52, and that double rounds to float once, as y itself would; a row with a larger
    // value (none in practice) is converted again directly.
    // (Unsigned arithmetic: it wraps where a signed sum would overflow.)
    constexpr double kMagic = 0x1.8p52;
    constexpr std::uint64_t kMagicBits = std::bit_cast<std::uint64_t>(kMagic);
    constexpr std::uint64_t kLimit = std::uint64_t{1} << 51;
    int beyond = 0;
#pragma omp simd reduction(| : beyond)
    for (std::int64_t i = 0; i < n; ++i) {
      const auto y = static_cast<std::uint64_t>((sums[i] >> k) + bias);
      beyond |= y + kLimit >= 2 * kLimit;
      const double exact = std::bit_cast<double>(y + kMagicBits) - kMagic;
      to[i] = static_cast<float>(exact) * scale;
    }
    if (beyond) convert();
#endif
  } else {
    std::int64_t* to = out.integers;
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) to[i] = (sums[i] >> k) + bias;
  }
}

// x (cols values) as the int16 dot form reads it, padded with zeros to whole blocks: in weight
// order for 8-bit codes; for 4-bit codes each block's inputs in the order of its nibbles
// (loops.inc): weights 0-15, 32-47, 16-31, 48-63.
void order_for_dot16(const std::int32_t* x, std::int64_t cols, int code_bits, std::int16_t* x16);

// run_dot runs the dot form's loops (int16 lanes where the plan has them) on the task.
// run_columns runs the column form's; the int32_halves accumulator runs them twice, on the high
// and the low 16-bit halves of the activations (x = high * 2^16 + low, low in [0, 2^16), taken
// as the tiles are filled, ColumnTask::part), the low halves' sums going to sums_low (laid out
// as task.sums), and leaves (high sum << 16) + low sum, exact, in task.sums.
void run_dot(const Plan& plan, const DotTask& task);
void run_columns(const Plan& plan, ColumnTask task, std::int64_t* sums_low);

// The wide path for one output: floor(sum_i sign_i * x_i * 2^-k_i) + bias[row] for any K, with
// x_i = x[i * stride]. `buckets` has room for max_k + 1 values.
std::int64_t wide_output(const PackedWeights& weights, std::int64_t row, const std::int32_t* x,
                         std::int64_t stride, bool is_unsigned, std::int64_t* buckets);

// The row length (in int32 lanes) of a column matrix xt holding `lanes` positions: whole
// 16-lane vectors.
inline std::int64_t column_width(std::int64_t lanes) { return (lanes + 15) / 16 * 16; }

// How conv2d_int splits its work into items: a few whole images of one group side by side in
// the lanes, or a band of output rows of one image. The lane tiles of an item run through the
// rows' entry lists (kept in the L2 cache across tiles) together, and the item's column matrix
// (4 bytes per input and lane) and int64 sums (8 bytes per output row and lane, twice that for
// the int32_halves accumulator) should stay in the L2 cache too, where that leaves an item at
// least kMinItemLanes lanes: a band's lanes past its last whole 64-lane tile run in 16-lane
// tiles, which read the lists four times as often per lane. Under the cache budget alone,
// ImageNet resnet18's deep stages got items of 21 to 168 lanes and its inference ran 1.5x
// slower than with whole images per item; resnet20 at batch 128 runs as fast at 256 to 1024.
inline constexpr std::int64_t kItemBytes = std::int64_t{512} << 10;
inline constexpr std::int64_t kMinItemLanes = 512;
struct ConvItems {
  std::int64_t images;     // per item
  std::int64_t band_rows;  // output rows per item (out_h where an item holds whole images)
  std::int64_t bands;      // items per image and group
};
ConvItems conv_items(const ConvGeometry& geometry, const PackedWeights& weights,
                     Accumulator accumulator);

// The row ranges handed to the loops: enough chunks for every thread to get a few (all rows in
// one range when `parallel` is false).
std::int64_t row_chunk(std::int64_t rows, bool parallel = true);

// Whether a call of `terms` shift-adds is worth waking the OpenMP threads: below about 2^23
// terms (a batch-1 1024x1024 linear has 2^20) starting and joining the team costs more than
// the work on a shared machine.
inline constexpr std::int64_t kParallelTerms = std::int64_t{1} << 23;
inline bool worth_threads(std::int64_t terms) { return terms >= kParallelTerms; }
// The table form and the dot form on int32 or int64 lanes pay for the team from 2^20 terms: on
// AVX2 a 1024x1024 call took 46-60 us on one thread and 28-31 us on two in the table form (w4
// a8), 0.21-0.27 ms and 0.13-0.15 ms in the int32 dot form (w5 a16; bench_kernels gemv). The
// int16 dot form (AVX-512) keeps kParallelTerms, as measured there.
inline constexpr std::int64_t kParallelBatch1Terms = std::int64_t{1} << 20;

}  // namespace ds::shift::kernel
