#include "data/dataset.hpp"

#include <utility>

namespace ds::data {

const char* split_name(Split split) { return split == Split::train ? "train" : "test"; }

TensorDataset::TensorDataset(Tensor images, Tensor labels, std::int64_t num_classes,
                             std::string name)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      num_classes_(num_classes),
      name_(std::move(name)) {
  if (images_.dtype() != DType::u8 || images_.dim() != 4) {
    fail(name_, ": images must be u8 [N, C, H, W], got ", describe(images_));
  }
  if (labels_.dtype() != DType::i32 || labels_.dim() != 1) {
    fail(name_, ": labels must be i32 [N], got ", describe(labels_));
  }
  if (labels_.size(0) != images_.size(0)) {
    fail(name_, ": ", images_.size(0), " images but ", labels_.size(0), " labels");
  }
  images_ = images_.contiguous();
  labels_ = labels_.contiguous();
  const std::int32_t* label = labels_.data<std::int32_t>();
  for (std::int64_t i = 0; i < labels_.size(0); ++i) {
    if (label[i] < 0 || label[i] >= num_classes_) {
      fail(name_, ": label ", label[i], " of sample ", i, " is outside [0, ", num_classes_, ")");
    }
  }
}

std::string Dataset::sample_name(std::int64_t index) const {
  return "sample " + std::to_string(index);
}

std::string TensorDataset::sample_name(std::int64_t index) const {
  return name_ + ", sample " + std::to_string(index);
}

Example TensorDataset::get(std::int64_t index) const {
  if (index < 0 || index >= size()) {
    fail(name_, ": sample index ", index, " is outside [0, ", size(), ")");
  }
  return {images_.select(0, index), labels_.data<std::int32_t>()[index]};
}

}  // namespace ds::data
