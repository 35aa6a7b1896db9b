// Packed weights prepared once for repeated calls: the plan, and the column form's entry lists
// (a schedule of slots per key, a record per row and segment, spilled entries: loops.hpp), built
// on the first batched call.
#include <omp.h>

#include <algorithm>
#include <limits>

#include "shiftops/kernel/plan.hpp"

namespace ds::shift {

namespace kernel {

namespace {

// A spilled entry costs about two slots: it is shifted on its own, and its list ends in a
// branch whose outcome varies from segment to segment.
constexpr std::int64_t kSpillCost = 2;
// In the int16 column form a slot costs an add on half the vectors, a spill a widening and a
// shift on all of them.
constexpr std::int64_t kSpillCost16 = 6;
// Rows whose counts choose the slots: enough segments for the histogram's tail, few enough that
// weights prepared for a single call (training through the kernel) are not read twice over.
constexpr std::int64_t kSampleRows = 256;

// How many of the `capacity` weights from `first` fall within the row's `cols`.
int weights_in_segment(const ListShape& shape, std::int64_t first, std::int64_t cols) {
  return static_cast<int>(std::clamp<std::int64_t>(cols - first, 0, shape.capacity));
}

// How many weights of each key (zero weights: key `keys`) a segment's codes hold.
void count_keys(const ListShape& shape, const std::uint8_t* codes, int in_segment,
                int (&per_key)[kMaxKeys + 1]) {
  std::fill_n(per_key, shape.keys + 1, 0);
  for (int j = 0; j < in_segment; ++j) ++per_key[shape.key_of_code[codes[j]]];
}

// The most a run of lo levels' Horner sum reaches in units of the largest input, 2^bits, from
// the entries of the keys `signs` picks (1 positive, 2 negative, 3 both): a level l levels above
// the run's last weighs 2^l and holds at most its keys' slots, the segment at most `capacity`
// entries; the heaviest levels take them first.
std::int64_t run_bound(const ListShape& shape, const Schedule& schedule, int first, int last,
                       int signs) {
  std::int64_t bound = 0, left = shape.capacity;
  for (int level = first; level <= last; ++level) {
    const std::int64_t entries =
        std::min<std::int64_t>(left, (signs & 1 ? schedule.slots[2 * level] : 0) +
                                         (signs & 2 ? schedule.slots[2 * level + 1] : 0));
    bound += entries << (last - level);
    left -= entries;
  }
  return bound;
}

// Where the int16 column form widens (Schedule::widen_after): each run of levels as long as its
// sum fits an int16 lane. Unsigned inputs make the positive entries' sum and the negative ones'
// each at least zero, so the run's value is bounded by the larger; signed ones by both together.
// A single level always fits (make_plan).
void chain_levels(const ListShape& shape, bool is_unsigned, int column16_bits, Schedule& schedule) {
  const auto bound = [&](int first, int last) {
    if (!is_unsigned) return run_bound(shape, schedule, first, last, 3);
    return std::max(run_bound(shape, schedule, first, last, 1),
                    run_bound(shape, schedule, first, last, 2));
  };
  constexpr std::int64_t kMost = std::numeric_limits<std::int16_t>::max();
  int first = 0;
  for (int level = 0; level < shape.lo_values; ++level) {
    const bool last =
        level + 1 == shape.lo_values || bound(first, level + 1) << column16_bits > kMost;
    schedule.widen_after[level] = last ? static_cast<std::uint8_t>(level + 1 - first) : 0;
    if (last) first = level + 1;
  }
}

// Per key, the slots that minimise slots + cost * spills over the segments of up to kSampleRows
// rows spread over the layer (cost kSpillCost, or kSpillCost16 for the int16 column form): one
// more slot pays while more than 1 / cost of the segments have more entries than slots.
Schedule make_schedule(const ListShape& shape, const Lanes& lanes, const PackedWeights& weights) {
  const std::int64_t bins = shape.capacity + 1;
  std::vector<std::int64_t> histogram(static_cast<std::size_t>(shape.keys * bins), 0);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(weights.padded_cols()));
  std::int64_t segments = 0;
  const std::int64_t step = std::max<std::int64_t>(1, weights.rows / kSampleRows);
  for (std::int64_t r = 0; r < weights.rows; r += step) {
    weights.decode_row(r, codes.data());
    for (std::int64_t first = 0; first < shape.segments * shape.capacity;
         first += shape.capacity, ++segments) {
      int per_key[kMaxKeys + 1];
      count_keys(shape, codes.data() + first, weights_in_segment(shape, first, weights.cols),
                 per_key);
      for (int key = 0; key < shape.keys; ++key) ++histogram[key * bins + per_key[key]];
    }
  }
  Schedule schedule{};
  for (int key = 0; key < shape.keys; ++key) {
    const std::int64_t* of_key = histogram.data() + key * bins;
    std::int64_t more = segments - of_key[0];  // segments with more entries than `slots`
    int slots = 0;
    const std::int64_t spill_cost = lanes.column16_bits ? kSpillCost16 : kSpillCost;
    while (spill_cost * more > segments) more -= of_key[++slots];
    schedule.slots[key] = static_cast<std::uint8_t>(slots);
    schedule.fixed_slots += slots;
  }
  if (lanes.column16_bits) chain_levels(shape, lanes.is_unsigned, lanes.column16_bits, schedule);
  schedule.record_bytes = schedule.fixed_slots + 2 * lanes.groups + 4;
  schedule.row_bytes = shape.segments * schedule.record_bytes;
  // About 256 KiB of records per chunk: they stay in the L2 cache while the tiles reread them.
  schedule.chunk_rows = std::max<std::int64_t>(
      1, (std::int64_t{1} << 18) / std::max<std::int64_t>(1, schedule.row_bytes));
  return schedule;
}

// Where a segment's spill offset (uint32, in pairs, unaligned) sits in its record.
std::uint8_t* spill_offset(const Schedule& schedule, int groups, std::uint8_t* record) {
  return record + schedule.fixed_slots + 2 * groups;
}

std::uint32_t read_u32(const std::uint8_t* at) {
  std::uint32_t value;
  std::copy_n(at, sizeof value, reinterpret_cast<std::uint8_t*>(&value));
  return value;
}

void write_u32(std::uint32_t value, std::uint8_t* at) {
  std::copy_n(reinterpret_cast<const std::uint8_t*>(&value), sizeof value, at);
}

// Where each key's entries go. Keys run (group, lo from the highest down, sign); the spill
// lists run per group, positive then negative, each in key order.
struct KeyPlaces {
  int slot_begin[kMaxKeys];
  int list[kMaxKeys];
  std::uint8_t lo[kMaxKeys];
  std::vector<int> list_order;  // the keys in spill-list order
  std::vector<int> list_end;    // where each list's keys end in list_order

  KeyPlaces(const ListShape& shape, const Schedule& schedule, int groups) {
    for (int key = 0, slot = 0; key < shape.keys; slot += schedule.slots[key++]) {
      slot_begin[key] = slot;
      const int level = key >> 1, group = level / shape.lo_values;
      list[key] = 2 * group + (key & 1);
      lo[key] = static_cast<std::uint8_t>((group + 1) * shape.lo_values - 1 - level);
    }
    for (int l = 0; l < 2 * groups; ++l) {
      for (int key = 0; key < shape.keys; ++key)
        if (list[key] == l) list_order.push_back(key);
      list_end.push_back(static_cast<int>(list_order.size()));
    }
  }
};

// One segment's record from its codes, its spills appended to `spills` as (index, lo) pairs
// (the record holds their offset in `spills`, in pairs). A counting sort by key whose i-th
// entry of key k goes to slot i of k while i < slots[k] and to k's place in the spill lists
// after that, in one pass over the codes (a zero weight goes to a scratch slot).
void fill_segment(const ListShape& shape, const Schedule& schedule, const KeyPlaces& places,
                  int groups, const std::uint8_t* codes, int in_segment, std::uint8_t* record,
                  std::vector<std::uint8_t>& spills) {
  int counts[kMaxKeys + 1];
  count_keys(shape, codes, in_segment, counts);
  // Each list's count from the running total: adding to the count's byte per key chained every
  // key's add to the last through memory.
  std::uint8_t* list_counts = record + schedule.fixed_slots;
  int spill_begin[kMaxKeys], spilled = 0;
  for (int l = 0, k = 0; l < 2 * groups; ++l) {
    const int before = spilled;
    for (; k < places.list_end[static_cast<std::size_t>(l)]; ++k) {
      const int key = places.list_order[static_cast<std::size_t>(k)];
      spill_begin[key] = spilled;
      spilled += std::max(0, counts[key] - schedule.slots[key]);
    }
    list_counts[l] = static_cast<std::uint8_t>(spilled - before);
  }
  // Wraps only when the thread's list passes 2^32 pairs, which the caller refuses.
  const auto offset = static_cast<std::uint32_t>(spills.size() / 2);
  write_u32(offset, spill_offset(schedule, groups, record));
  spills.resize(spills.size() + 2 * static_cast<std::size_t>(spilled));
  std::uint8_t* pairs = spills.data() + 2 * std::size_t{offset};
  std::fill(record, record + schedule.fixed_slots, static_cast<std::uint8_t>(shape.capacity));
  std::uint8_t scratch[kMaxSegmentWeights];
  std::uint8_t* slot_of[kMaxKeys + 1];
  std::uint8_t* spill_of[kMaxKeys + 1];
  int slots[kMaxKeys + 1], taken[kMaxKeys + 1] = {};
  for (int key = 0; key < shape.keys; ++key) {
    slot_of[key] = record + places.slot_begin[key];
    spill_of[key] = pairs + 2 * spill_begin[key];
    slots[key] = schedule.slots[key];
  }
  slot_of[shape.keys] = spill_of[shape.keys] = scratch;
  slots[shape.keys] = kMaxSegmentWeights;
  for (int j = 0; j < in_segment; ++j) {
    const int key = shape.key_of_code[codes[j]];
    const int i = taken[key]++;
    *(i < slots[key] ? slot_of[key] + i : spill_of[key] + 2 * (i - slots[key])) =
        static_cast<std::uint8_t>(j);
  }
  for (std::uint8_t* pair = pairs; pair != pairs + 2 * spilled; pair += 2)
    pair[1] = places.lo[shape.key_of_code[codes[pair[0]]]];
}

}  // namespace

const EntryLists* Preparation::lists(const PackedWeights& weights) const {
  if (plan.lanes.wide64) return nullptr;
  std::call_once(built_, [&] {
    const ListShape& shape = plan.lanes.lists;
    const int groups = plan.lanes.groups;
    lists_.schedule = make_schedule(shape, plan.lanes, weights);
    const Schedule& schedule = lists_.schedule;
    const KeyPlaces places(shape, schedule, groups);
    lists_.records.assign(static_cast<std::size_t>(weights.rows * schedule.row_bytes), 0);
    // Each thread appends the spills of its rows to its own list; the lists are then joined and
    // the records' offsets moved by where their thread's list starts.
    std::vector<std::vector<std::uint8_t>> thread_spills(
        static_cast<std::size_t>(omp_get_max_threads()));
    std::vector<int> thread_of_row(static_cast<std::size_t>(weights.rows));
#pragma omp parallel if (worth_threads(weights.rows * weights.padded_cols() * 8))
    {
      const int thread = omp_get_thread_num();
      std::vector<std::uint8_t>& spills = thread_spills[static_cast<std::size_t>(thread)];
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(weights.padded_cols()));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < weights.rows; ++r) {
        weights.decode_row(r, codes.data());
        std::uint8_t* record = lists_.records.data() + r * schedule.row_bytes;
        for (std::int64_t first = 0; first < shape.segments * shape.capacity;
             first += shape.capacity, record += schedule.record_bytes)
          fill_segment(shape, schedule, places, groups, codes.data() + first,
                       weights_in_segment(shape, first, weights.cols), record, spills);
        thread_of_row[static_cast<std::size_t>(r)] = thread;
      }
    }
    std::vector<std::uint32_t> thread_start;
    for (const auto& spills : thread_spills) {
      if (lists_.spills.size() / 2 + spills.size() / 2 > std::numeric_limits<std::uint32_t>::max())
        fail("shift kernel: a layer of ", weights.rows, "x", weights.cols,
             " weights spills more than 2^32 entries out of its slots");
      thread_start.push_back(static_cast<std::uint32_t>(lists_.spills.size() / 2));
      lists_.spills.insert(lists_.spills.end(), spills.begin(), spills.end());
    }
    for (std::int64_t r = 0; r < weights.rows; ++r) {
      const std::uint32_t start = thread_start[static_cast<std::size_t>(thread_of_row[r])];
      std::uint8_t* record = lists_.records.data() + r * schedule.row_bytes;
      for (std::int64_t s = 0; s < shape.segments; ++s, record += schedule.record_bytes) {
        std::uint8_t* field = spill_offset(schedule, groups, record);
        write_u32(read_u32(field) + start, field);
      }
    }
  });
  return &lists_;
}

const std::uint8_t* Preparation::table_tiles(const PackedWeights& weights) const {
  // Past the second call the counter is only read: no cache line bouncing between threads.
  if (!plan.lanes.table16) return nullptr;
  if (table_calls_.load(std::memory_order_relaxed) < 2 && table_calls_.fetch_add(1) == 0)
    return nullptr;
  std::call_once(tiles_built_, [&] {
    const std::int64_t inputs = weights.padded_cols(), tile_bytes = inputs * kTableRows / 2;
    const std::int64_t tiles = (weights.rows + kTableRows - 1) / kTableRows;
    tiles_.assign(static_cast<std::size_t>(tiles * tile_bytes), kZeroNibble * 0x11);
#pragma omp parallel if (worth_threads(weights.rows * inputs * 8))
    {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(inputs));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < weights.rows; ++r) {
        weights.decode_row(r, codes.data());
        std::uint8_t* byte = tiles_.data() + r / kTableRows * tile_bytes + r % kTableRows;
        for (std::int64_t i = 0; i < inputs; i += 2, byte += kTableRows)
          *byte = static_cast<std::uint8_t>(code_to_nibble(codes[i]) | code_to_nibble(codes[i + 1])
                                                                           << 4);
      }
    }
  });
  return tiles_.data();
}

const Preparation& Preparation::narrowed(const PackedWeights& weights,
                                         const ActivationFormat& format, int own_bits,
                                         KernelPath path) const {
  std::atomic<const Preparation*>& known = by_bits_[static_cast<std::size_t>(format.bits)];
  if (const Preparation* found = known.load(std::memory_order_acquire)) return *found;
  const std::lock_guard lock(narrowed_mutex_);
  if (const Preparation* found = known.load(std::memory_order_relaxed)) return *found;
  Plan narrower_plan = make_plan(weights, format, path, plan.form);
  const Preparation* chosen = this;
  if (cheaper(narrower_plan, plan)) {
    // The plan of the widest format that costs the same holds every narrower value too: all
    // widths of one cost share the preparation kept under that widest one, whichever comes
    // first. (The format's own plan costs more, so the search ends below its bits.)
    int widest = format.bits;
    for (int bits = format.bits + 1; bits < own_bits; ++bits) {
      const Plan wider = make_plan(weights, {bits, format.is_signed}, path, plan.form);
      if (cheaper(narrower_plan, wider)) break;
      narrower_plan = wider;
      widest = bits;
    }
    std::atomic<const Preparation*>& owner = by_bits_[static_cast<std::size_t>(widest)];
    chosen = owner.load(std::memory_order_relaxed);
    if (!chosen) {
      auto made = std::make_unique<Preparation>();
      made->plan = narrower_plan;
      chosen = made.get();
      narrower_.push_back(std::move(made));
      owner.store(chosen, std::memory_order_release);
    }
  }
  known.store(chosen, std::memory_order_release);
  return *chosen;
}

void point_at_lists(const Preparation& preparation, const PackedWeights& weights,
                    std::int64_t first_row, ColumnTask& task) {
  const EntryLists* lists = preparation.lists(weights);
  if (!lists) return;
  task.schedule = &lists->schedule;
  task.records = lists->records.data() + first_row * lists->schedule.row_bytes;
  task.spills = lists->spills.data();
}

}  // namespace kernel

PreparedWeights::PreparedWeights(std::shared_ptr<const PackedWeights> weights,
                                 const ActivationFormat& format, KernelPath path)
    : weights_(std::move(weights)), format_(format), path_(path) {
  weights_->validate("shift kernel");
  for (const LoopForm form : {LoopForm::dot, LoopForm::columns}) {
    auto preparation = std::make_shared<kernel::Preparation>();
    preparation->plan = kernel::make_plan(*weights_, format_, path_, form);
    // Narrowing is monotone: if 2-bit activations do not give a cheaper plan, nothing does.
    preparation->narrowing_pays = kernel::cheaper(
        kernel::make_plan(*weights_, {2, format_.is_signed}, path_, form), preparation->plan);
    preparations_[static_cast<int>(form)] = std::move(preparation);
  }
}

const kernel::Preparation& PreparedWeights::preparation(LoopForm form) const {
  return *preparations_[static_cast<int>(form)];
}

const kernel::Preparation& PreparedWeights::preparation_for(LoopForm form, const std::int32_t* x,
                                                            std::int64_t n) const {
  const kernel::Preparation& own = preparation(form);
  if (!own.narrowing_pays) return own;
  return own.narrowed(*weights_, kernel::narrowest_format(format_, x, n), format_.bits, path_);
}

Accumulator PreparedWeights::accumulator(LoopForm form) const {
  return preparation(form).plan.accumulator;
}

}  // namespace ds::shift
