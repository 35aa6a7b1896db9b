// Packed weights prepared once for repeated calls: the plan, and the column form's entry lists
// sorted by key (a counting sort per segment), built on the first batched call.
#include <algorithm>

#include "shiftops/kernel/plan.hpp"

namespace ds::shift {

namespace kernel {

namespace {

// One row's lists: per segment, the counts of each key, then the in-segment indices of the
// nonzero weights in key order (stable: increasing index within a key). Zero weights (key
// `keys`) land in the slots after the last key's, which no loop reads: no branch.
void sort_row(const ListShape& shape, const std::uint8_t* codes, std::int64_t cols,
              std::uint8_t* entries, std::uint8_t* counts) {
  for (std::int64_t first = 0; first < shape.row_slots;
       first += shape.capacity, entries += shape.capacity, counts += shape.keys) {
    const int in_segment =
        static_cast<int>(std::clamp<std::int64_t>(cols - first, 0, shape.capacity));
    int per_key[kMaxKeys + 1] = {};
    for (int j = 0; j < in_segment; ++j) ++per_key[shape.key_of_code[codes[first + j]]];
    int next[kMaxKeys + 1];
    int slot = 0;
    for (int key = 0; key <= shape.keys; slot += per_key[key], ++key) {
      next[key] = slot;
      if (key < shape.keys) counts[key] = static_cast<std::uint8_t>(per_key[key]);
    }
    for (int j = 0; j < in_segment; ++j)
      entries[next[shape.key_of_code[codes[first + j]]]++] = static_cast<std::uint8_t>(j);
  }
}

}  // namespace

const EntryLists* Preparation::lists(const PackedWeights& weights) const {
  if (plan.lanes.wide64) return nullptr;
  std::call_once(built_, [&] {
    const ListShape& shape = plan.lanes.lists;
    lists_.entries.assign(static_cast<std::size_t>(weights.rows * shape.row_slots), 0);
    lists_.counts.assign(static_cast<std::size_t>(weights.rows * shape.row_counts), 0);
#pragma omp parallel if (worth_threads(weights.rows * weights.padded_cols() * 8))
    {
      std::vector<std::uint8_t> codes(static_cast<std::size_t>(weights.padded_cols()));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < weights.rows; ++r) {
        weights.decode_row(r, codes.data());
        sort_row(shape, codes.data(), weights.cols, lists_.entries.data() + r * shape.row_slots,
                 lists_.counts.data() + r * shape.row_counts);
      }
    }
  });
  return &lists_;
}

void point_at_lists(const Preparation& preparation, const PackedWeights& weights,
                    std::int64_t first_row, ColumnTask& task) {
  const EntryLists* lists = preparation.lists(weights);
  if (!lists) return;
  const ListShape& shape = preparation.plan.lanes.lists;
  task.entries = lists->entries.data() + first_row * shape.row_slots;
  task.counts = lists->counts.data() + first_row * shape.row_counts;
}

}  // namespace kernel

PreparedWeights::PreparedWeights(std::shared_ptr<const PackedWeights> weights,
                                 const ActivationFormat& format, KernelPath path)
    : weights_(std::move(weights)), format_(format), path_(path) {
  auto preparation = std::make_shared<kernel::Preparation>();
  preparation->plan = kernel::make_plan(*weights_, format_, path_);
  preparation_ = std::move(preparation);
}

Accumulator PreparedWeights::accumulator() const { return preparation_->plan.accumulator; }

}  // namespace ds::shift
