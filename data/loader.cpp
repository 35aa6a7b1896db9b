#include "data/loader.hpp"

#include <cstring>
#include <utility>

#include "tensor/error.hpp"
#include "tensor/random.hpp"

namespace ds::data {
namespace {

// SplitMix64's finaliser: decorrelates seeds that differ in one bit (epoch 1 vs 2).
std::uint64_t mix(std::uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

std::uint64_t epoch_seed(std::uint64_t seed, std::int64_t epoch) {
  return mix(mix(seed) ^ static_cast<std::uint64_t>(epoch));
}

std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
  return mix(epoch_seed(seed, epoch) ^ mix(static_cast<std::uint64_t>(index)));
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, Transform transform,
                       LoaderOptions options)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), options_(options) {
  if (!dataset_) fail("DataLoader: no dataset");
  if (!transform_) fail("DataLoader: no transform (use to_tensor() at least)");
  if (options_.batch_size <= 0) {
    fail("DataLoader: batch_size must be positive, got ", options_.batch_size);
  }
  if (options_.workers < 0) fail("DataLoader: workers must be >= 0, got ", options_.workers);
  if (options_.prefetch <= 0)
    fail("DataLoader: prefetch must be positive, got ", options_.prefetch);
}

DataLoader::~DataLoader() { stop_workers(); }

std::int64_t DataLoader::batches_per_epoch() const {
  const std::int64_t n = dataset_->size();
  const std::int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch(std::int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  const std::int64_t n = dataset_->size();
  order_.resize(static_cast<std::size_t>(n));
  if (options_.shuffle) {
    Generator gen(epoch_seed(options_.seed, epoch));
    const Tensor permutation = randperm(n, gen);
    const std::int32_t* index = permutation.data<std::int32_t>();
    for (std::int64_t i = 0; i < n; ++i) order_[i] = index[i];
  } else {
    for (std::int64_t i = 0; i < n; ++i) order_[i] = i;
  }
  next_to_deliver_ = 0;
  next_to_claim_ = 0;
  stop_ = false;
  slots_.clear();
  for (int w = 0; w < options_.workers; ++w) workers_.emplace_back([this] { work(); });
}

std::optional<Batch> DataLoader::next() {
  if (epoch_ < 0) fail("DataLoader::next: call start_epoch first");
  if (next_to_deliver_ >= batches_per_epoch()) return std::nullopt;
  if (workers_.empty()) return make_batch(next_to_deliver_++);
  Slot slot;
  {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return slots_.count(next_to_deliver_) != 0; });
    auto found = slots_.find(next_to_deliver_);
    slot = std::move(found->second);
    slots_.erase(found);
    ++next_to_deliver_;
  }
  space_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

void DataLoader::work() {
  const std::int64_t total = batches_per_epoch();
  const std::int64_t window =
      static_cast<std::int64_t>(options_.workers) * static_cast<std::int64_t>(options_.prefetch);
  while (true) {
    std::int64_t batch_index;
    {
      std::unique_lock lock(mutex_);
      // Claim the next batch only while fewer than `window` batches wait undelivered.
      space_.wait(lock, [&] {
        return stop_ || next_to_claim_ >= total || next_to_claim_ < next_to_deliver_ + window;
      });
      if (stop_ || next_to_claim_ >= total) return;
      batch_index = next_to_claim_++;
    }
    Slot slot;
    try {
      slot.batch = make_batch(batch_index);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      slots_.emplace(batch_index, std::move(slot));
    }
    ready_.notify_all();
  }
}

void DataLoader::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

Batch DataLoader::make_batch(std::int64_t batch_index) const {
  const std::int64_t n = static_cast<std::int64_t>(order_.size());
  const std::int64_t begin = batch_index * options_.batch_size;
  const std::int64_t count = std::min(options_.batch_size, n - begin);
  Batch batch;
  batch.labels = Tensor::empty({count}, DType::i32);
  std::int32_t* labels = batch.labels.data<std::int32_t>();
  Shape image_shape;
  float* images = nullptr;
  for (std::int64_t k = 0; k < count; ++k) {
    const std::int64_t index = order_[begin + k];
    const Example example = dataset_->get(index);
    Generator gen(sample_seed(options_.seed, epoch_, index));
    const Tensor image = transform_(example.image, gen).contiguous();
    if (image.dtype() != DType::f32) {
      fail("DataLoader: the transform must produce f32 images (add to_tensor()), ",
           dataset_->sample_name(index), " is ", describe(image));
    }
    if (k == 0) {
      image_shape = image.shape();
      Shape batch_shape{count};
      batch_shape.insert(batch_shape.end(), image_shape.begin(), image_shape.end());
      batch.images = Tensor::empty(batch_shape, DType::f32);
      images = batch.images.data<float>();
    } else if (image.shape() != image_shape) {
      fail("DataLoader: ", dataset_->sample_name(index), " has shape ", shape_str(image.shape()),
           " but the batch's first sample (", dataset_->sample_name(order_[begin]), ") has ",
           shape_str(image_shape), " (resize or crop to one size)");
    }
    std::memcpy(images + k * image.numel(), image.data<float>(), image.numel() * sizeof(float));
    labels[k] = example.label;
  }
  return batch;
}

}  // namespace ds::data
