#pragma once
// The batching loader: shuffles per epoch, applies the transform to every sample and stacks
// samples into batches, optionally on background threads that decode ahead.
//
//   DataLoader loader(dataset, transform, {.batch_size = 128, .workers = 2, .seed = 1});
//   for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (std::optional<Batch> batch = loader.next()) train_step(batch->images, batch->labels);
//   }
//
// Reproducibility: the order of epoch e is randperm(N) drawn from a generator seeded by
// (seed, e), and the transform of the sample at dataset index i in epoch e draws from its own
// generator seeded by (seed, e, i). So the batches depend on the seed and the epoch only: they
// are the same for any number of workers and any prefetch depth.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.hpp"
#include "data/transforms.hpp"

namespace ds::data {

struct Batch {
  Tensor images;  // f32 [B, C, H, W]
  Tensor labels;  // i32 [B]
};

struct LoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  int workers = 0;         // background threads; 0 makes each batch in next() itself
  int prefetch = 2;        // batches each worker may finish ahead of the consumer
  std::uint64_t seed = 0;
};

class DataLoader {
 public:
  // The transform must turn every sample into an f32 image of one common shape (use
  // to_tensor(), and resize/crop images of varying size).
  DataLoader(std::shared_ptr<const Dataset> dataset, Transform transform,
             LoaderOptions options = {});
  // Stops the workers and joins them, also in the middle of an epoch.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return options_; }

  // Begins epoch `epoch` (any epoch, in any order), abandoning the one in progress.
  void start_epoch(std::int64_t epoch);
  // The next batch of the current epoch, or nothing once the epoch is over. Rethrows the
  // ds::Error of a sample that could not be read or transformed (that batch is then skipped).
  std::optional<Batch> next();

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  Batch make_batch(std::int64_t batch_index) const;
  void work();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  Transform transform_;
  LoaderOptions options_;

  std::int64_t epoch_ = -1;
  std::vector<std::int64_t> order_;  // dataset indices of the epoch, in delivery order
  std::int64_t next_to_deliver_ = 0;

  std::mutex mutex_;
  std::condition_variable ready_;       // a slot was filled
  std::condition_variable space_;       // the consumer took a slot, or stop_ was set
  std::map<std::int64_t, Slot> slots_;  // finished batches not yet delivered
  std::int64_t next_to_claim_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ds::data
