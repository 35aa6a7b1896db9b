// Choosing a kernel path from cpuid and an accumulator from the layer's bound
// (docs/kernels.md, "Exactness" and "Dispatch").
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <limits>
#include <string>

#include "shiftops/kernel/plan.hpp"

namespace ds::shift {

void ActivationFormat::validate() const {
  if (bits < 2 || bits > 32)
    fail("shift kernel: activations of ", bits, " bits; the kernels take 2 to 32 bits");
}

std::int64_t ActivationFormat::lowest() const {
  return is_signed ? -(std::int64_t{1} << (bits - 1)) : 0;
}

std::int64_t ActivationFormat::highest() const {
  return is_signed ? (std::int64_t{1} << (bits - 1)) - 1 : (std::int64_t{1} << bits) - 1;
}

const char* kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::portable:
      return "portable";
    case KernelPath::avx2:
      return "avx2";
    case KernelPath::avx512:
      return "avx512";
  }
  return "unknown";
}

std::vector<KernelPath> available_kernel_paths() {
  std::vector<KernelPath> paths{KernelPath::portable};
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi2"))
    paths.push_back(KernelPath::avx2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    paths.push_back(KernelPath::avx512);
#endif
  return paths;
}

KernelPath kernel_path() {
  static const KernelPath chosen = [] {
    const std::vector<KernelPath> paths = available_kernel_paths();
    const char* wanted = std::getenv("DS_SHIFT_KERNEL");
    if (!wanted || !*wanted) return paths.back();
    for (const KernelPath path : paths)
      if (std::string(wanted) == kernel_path_name(path)) return path;
    fail("DS_SHIFT_KERNEL=", wanted, " names no kernel path this CPU runs (portable, avx2, ",
         "avx512)");
  }();
  return chosen;
}

const char* accumulator_name(Accumulator accumulator) {
  switch (accumulator) {
    case Accumulator::int32_blocks:
      return "int32 blocks";
    case Accumulator::int32_halves:
      return "int32 halves";
    case Accumulator::int64:
      return "int64";
    case Accumulator::wide:
      return "wide";
  }
  return "unknown";
}

namespace {

// A term sign * x << (K - k) has magnitude at most 2^(magnitude_bits + K).
int magnitude_bits(const ActivationFormat& format) {
  return format.is_signed ? format.bits - 1 : format.bits;
}

// int32 partial sums must hold a whole 64-weight block of terms of magnitude up to 2^t
// (a negated lowest value reaches it): 64 * 2^t <= 2^30 keeps every partial sum in range.
constexpr int kInt32TermBits = 24;

// How the int32 path splits the shift amounts a = (g << split_bits) + lo so that every term
// x << lo has at most kInt32TermBits magnitude bits (docs/kernels.md, "Exactness").
struct Int32Split {
  bool fits = false;
  int groups = 1, split_bits = 7, term_bits = 0;
};

Int32Split int32_split(const PackedWeights& weights, const ActivationFormat& format,
                       LoopForm form) {
  const int m = magnitude_bits(format), k = weights.max_k;
  // The int64 total of the flushed partial sums is bounded as the exact sum is.
  const int count_bits = std::bit_width(static_cast<std::uint64_t>(weights.cols));
  if (m > kInt32TermBits || m + k + count_bits > 62) return {};
  if (m + k <= kInt32TermBits) return {true, 1, 7, m + k};
  // The widest low part lo < 2^split with m + 2^split - 1 <= kInt32TermBits.
  const int split = std::bit_width(static_cast<unsigned>(kInt32TermBits + 1 - m)) - 1;
  const int groups = (k >> split) + 1;
  if (groups > (form == LoopForm::dot ? kernel::kMaxDotGroups : kernel::kMaxColumnGroups))
    return {};
  return {true, groups, split, m + (1 << split) - 1};
}

// The widest term the int16 forms (dot and table) take: 2^13 leaves room for 3 terms per lane.
constexpr int kDot16TermBits = 13;

// Each 16-bit half of a wider activation, x = high * 2^16 + low with low in [0, 2^16) and high
// within 16 bits (signed or not), has at most 16 magnitude bits.
constexpr ActivationFormat kHalfFormat{16, false};

}  // namespace

Accumulator choose_accumulator(const PackedWeights& weights, const ActivationFormat& format,
                               LoopForm form) {
  format.validate();
  if (int32_split(weights, format, form).fits) return Accumulator::int32_blocks;
  const int term_bits = magnitude_bits(format) + weights.max_k;
  const int count_bits = std::bit_width(static_cast<std::uint64_t>(weights.cols));
  if (term_bits + count_bits > 62) return Accumulator::wide;
  // The dot form's int64 lanes beat its int32 blocks from 3 or 4 groups on, and the halves,
  // which run the loops twice (docs/benchmarks.md, "Ninth pass").
  if (form == LoopForm::dot) return Accumulator::int64;
  // What the column form's int32 blocks do not take, its halves do: with at most 16 magnitude
  // bits, lo < 8 and 8 groups take every K up to 63, and below the wide bound K <= 60; with more
  // (m >= 17, halves of 16 bits) that bound leaves K <= 44. The combination (sum over the high
  // halves) << 16 + (sum over the low halves) is bounded as the exact sum is, so it needs only
  // the int64 condition above.
  return Accumulator::int32_halves;
}

namespace kernel {

Plan make_plan(const PackedWeights& weights, const ActivationFormat& format, KernelPath path,
               LoopForm form) {
  Plan plan;
  plan.form = form;
  plan.accumulator = choose_accumulator(weights, format, form);
  const bool halves = plan.accumulator == Accumulator::int32_halves;
  const Int32Split split = int32_split(weights, halves ? kHalfFormat : format, form);
  plan.lanes.wide64 =
      plan.accumulator == Accumulator::int64 || plan.accumulator == Accumulator::wide;
  plan.lanes.is_unsigned = !format.is_signed;
  plan.lanes.flush_blocks = std::int64_t{1} << (kInt32TermBits - split.term_bits);
  plan.lanes.groups = split.groups;
  plan.lanes.split_bits = split.split_bits;
  kernel::ListShape& lists = plan.lanes.lists;
  // A segment's accumulators hold at most its weights' terms, each of at most 2^24 (2^t): 112
  // of them stay below 2^31 whatever flush interval the dot form needs.
  static_assert(kMaxSegmentWeights << kInt32TermBits < (std::int64_t{1} << 31));
  // Segments of equal size: the slots are chosen for the whole layer, so a short last segment
  // (144 inputs as 112 + 32) took slots padded for the long ones or spilled theirs.
  lists.segments =
      std::max<std::int64_t>(1, (weights.cols + kMaxSegmentWeights - 1) / kMaxSegmentWeights);
  lists.capacity = std::max<std::int64_t>(1, (weights.cols + lists.segments - 1) / lists.segments);
  lists.lo_values = split.groups == 1 ? weights.max_k + 1 : 1 << split.split_bits;
  lists.keys = 2 * split.groups * lists.lo_values;
  if (split.fits && lists.keys > kernel::kMaxKeys)
    fail("shift kernel: ", lists.keys, " entry-list keys exceed ", kernel::kMaxKeys);
  for (int code = 0; code < 256; ++code) {
    const int amount = code & 0x7F, negative = code >> 7;
    const int group = amount >> split.split_bits, lo = amount & ((1 << split.split_bits) - 1);
    const bool listed = amount != kZeroCode && group < split.groups && lo < lists.lo_values;
    // Per group, lo from the highest down, positive before negative (loops.inc).
    lists.key_of_code[code] = static_cast<std::uint8_t>(
        listed ? 2 * (group * lists.lo_values + lists.lo_values - 1 - lo) + negative : lists.keys);
  }
  switch (path) {
    case KernelPath::portable:
      plan.loops = &portable::loops;
      break;
#if defined(__x86_64__)
    case KernelPath::avx2:
      plan.loops = &avx2::loops;
      break;
    case KernelPath::avx512:
      plan.loops = &avx512::loops;
      break;
#endif
    default:
      fail("shift kernel: path ", kernel_path_name(path), " is not built for this CPU");
  }
  bool runs = false;
  for (const KernelPath available : available_kernel_paths()) runs |= available == path;
  if (!runs) fail("shift kernel: this CPU lacks the instructions of path ", kernel_path_name(path));
  // The dot form's int16 lanes take a term of m + K <= 13 bits with room for several per lane (a
  // flush every floor((2^15 - 1) / 2^(m + K)) terms); an int32 lane they are widened into
  // gathers two of them, 2 * cols / 32 terms of a row: below 2^18 terms of at most 2^13 for
  // cols < 2^22.
  const int term_bits = magnitude_bits(format) + weights.max_k;
  const bool narrow = form == LoopForm::dot && plan.accumulator == Accumulator::int32_blocks &&
                      term_bits <= kDot16TermBits &&
                      weights.padded_cols() < (std::int64_t{1} << 22);
  if (narrow && plan.loops->dot16) {
    plan.lanes.dot16 = true;
    plan.lanes.dot16_flush = ((1 << 15) - 1) >> term_bits;
  }
  // The table form's terms are int16 values too; it sums a whole row in one int32 lane.
  plan.lanes.table16 = narrow && plan.loops->table_rows && weights.max_k <= kMaxNibbleAmount &&
                       (weights.padded_cols() << term_bits) < (std::int64_t{1} << 31);
  // One lo level of a segment, every input at the extreme, fits an int16 lane.
  static_assert(kMaxSegmentWeights << kColumn16Bits <= std::numeric_limits<std::int16_t>::max());
  if (form == LoopForm::columns && plan.accumulator == Accumulator::int32_blocks &&
      split.groups == 1 && magnitude_bits(format) <= kColumn16Bits)
    plan.lanes.column16_bits = magnitude_bits(format);
  return plan;
}

bool cheaper(const Plan& a, const Plan& b) {
  if (a.accumulator != b.accumulator) return a.accumulator < b.accumulator;
  if (a.accumulator != Accumulator::int32_blocks) return false;
  if (a.lanes.groups != b.lanes.groups) return a.lanes.groups < b.lanes.groups;
  return (a.lanes.dot16 && !b.lanes.dot16) || (a.lanes.table16 && !b.lanes.table16) ||
         (a.lanes.column16_bits && !b.lanes.column16_bits);
}

namespace {

// The largest of v ^ (v >> 31) (signed: v for v >= 0 and ~v = -v - 1 for v < 0, so a value
// fits b signed bits when this fits b - 1 unsigned ones) or of v as unsigned, over x[0, n).
// `omp simd` on a loop of its own: GCC 12 leaves a combined `parallel for simd` reduction scalar.
template <bool Signed>
std::uint32_t widest_of(const std::int32_t* x, std::int64_t n) {
  std::uint32_t widest = 0;
#pragma omp simd reduction(max : widest)
  for (std::int64_t i = 0; i < n; ++i)
    widest = std::max(widest, static_cast<std::uint32_t>(Signed ? x[i] ^ (x[i] >> 31) : x[i]));
  return widest;
}

}  // namespace

ActivationFormat narrowest_format(const ActivationFormat& format, const std::int32_t* x,
                                  std::int64_t n) {
  // Only a pass over memory: threads pay from about a million values.
  constexpr std::int64_t kPiece = std::int64_t{1} << 16;
  const bool parallel = n >= (std::int64_t{1} << 20);
  std::uint32_t widest = 0;
#pragma omp parallel for reduction(max : widest) if (parallel)
  for (std::int64_t first = 0; first < n; first += kPiece) {
    const std::int64_t count = std::min(kPiece, n - first);
    widest = std::max(widest, format.is_signed ? widest_of<true>(x + first, count)
                                               : widest_of<false>(x + first, count));
  }
  const int bits = std::bit_width(widest) + (format.is_signed ? 1 : 0);
  return {std::clamp(bits, 2, format.bits), format.is_signed};
}

CodeRows code_rows(const PackedWeights& weights, std::int64_t first_row) {
  return {weights.row(first_row), weights.row_bytes(), weights.padded_cols(), weights.code_bits};
}

void order_for_dot16(const std::int32_t* x, std::int64_t cols, int code_bits, std::int16_t* x16) {
  const std::int64_t padded = (cols + kPackedBlock - 1) / kPackedBlock * kPackedBlock;
  std::copy(x, x + cols, x16);
  std::fill(x16 + cols, x16 + padded, std::int16_t{0});
  if (code_bits == 4)
    for (std::int16_t* block = x16; block != x16 + padded; block += kPackedBlock)
      std::swap_ranges(block + 16, block + 32, block + 32);
}

void run_dot(const Plan& plan, const DotTask& task) {
  if (plan.lanes.dot16) return plan.loops->dot16(task);
  plan.loops->dot(task);
}

namespace {

void combine_halves(std::int64_t* high, const std::int64_t* low, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) high[i] = (high[i] << 16) + low[i];
}

}  // namespace

void run_columns(const Plan& plan, ColumnTask task, std::int64_t* sums_low) {
  task.segment_stride = plan.lanes.lists.capacity * task.width;
  if (plan.accumulator != Accumulator::int32_halves) return plan.loops->columns(task);
  std::int64_t* high = task.sums;
  task.part = ActivationPart::high_half;
  plan.loops->columns(task);
  task.part = ActivationPart::low_half;
  task.sums = sums_low;
  plan.loops->columns(task);
  for (std::int64_t r = task.row_begin; r < task.row_end;
       ++r, high += task.sums_stride, sums_low += task.sums_stride)
    combine_halves(high, sums_low, task.width);
}

std::int64_t row_chunk(std::int64_t rows, bool parallel) {
  if (!parallel) return std::max<std::int64_t>(1, rows);
  const std::int64_t pieces = 4 * static_cast<std::int64_t>(omp_get_max_threads());
  return std::max<std::int64_t>(1, (rows + pieces - 1) / pieces);
}

}  // namespace kernel

}  // namespace ds::shift
