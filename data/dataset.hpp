#pragma once
// The dataset interface shared by every reader, and the in-memory dataset that the MNIST and
// CIFAR readers return.
//
// Images are u8 tensors laid out [C, H, W] (channels first, like torchvision's tensors and
// like the CIFAR files): C is 1 for MNIST and 3 (RGB) for CIFAR and image folders. The
// transforms in data/transforms.hpp turn them into the f32 tensors a model eats.
#include <cstdint>
#include <string>

#include "tensor/tensor.hpp"

namespace ds::data {

struct Example {
  Tensor image;  // u8 [C, H, W]
  std::int32_t label = 0;
};

enum class Split { train, test };
const char* split_name(Split split);

// Implementations must allow get() from several threads at once: the loader's workers share one.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  // Throws ds::Error for an index outside [0, size()) and for a sample that cannot be read.
  virtual Example get(std::int64_t index) const = 0;
  virtual std::int64_t num_classes() const = 0;
  // How error messages name sample `index`: its file where it has one of its own. Called from
  // the loader's workers too.
  virtual std::string sample_name(std::int64_t index) const;
};

// Samples held in memory: images u8 [N, C, H, W], labels i32 [N] in [0, num_classes).
class TensorDataset final : public Dataset {
 public:
  // `name` (a path, usually) is used in error messages.
  TensorDataset(Tensor images, Tensor labels, std::int64_t num_classes, std::string name);

  std::int64_t size() const override { return images_.size(0); }
  // The image is a view into the dataset's storage: transforms must not write into it.
  Example get(std::int64_t index) const override;
  std::int64_t num_classes() const override { return num_classes_; }
  std::string sample_name(std::int64_t index) const override;
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }

 private:
  Tensor images_;
  Tensor labels_;
  std::int64_t num_classes_;
  std::string name_;
};

}  // namespace ds::data
