#pragma once
// A folder of images with one sub-folder per class (the ImageNet train/val layout and
// torchvision's ImageFolder): root/<class>/**/<file>. Classes are the sub-folder names sorted
// byte-wise and numbered from 0; within a class, files are sorted by their path. Files whose
// extension (case-insensitive) is not in the list are ignored. Images decode to u8 [3, H, W].
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace ds::data {

class ImageFolder final : public Dataset {
 public:
  // Scans the folders; the images themselves are decoded by get(). Throws when `root` is
  // missing or not a directory, when it has no class folder and when a class folder holds no
  // image file.
  explicit ImageFolder(const std::string& root,
                       std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp"});

  std::int64_t size() const override { return static_cast<std::int64_t>(samples_.size()); }
  // Reads and decodes one file; throws naming the file when it is unreadable or corrupt.
  Example get(std::int64_t index) const override;
  std::int64_t num_classes() const override { return static_cast<std::int64_t>(classes_.size()); }
  std::string sample_name(std::int64_t index) const override { return path(index); }

  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& path(std::int64_t index) const;
  std::int32_t label(std::int64_t index) const;

 private:
  struct Sample {
    std::string path;
    std::int32_t label;
  };
  const Sample& sample(std::int64_t index) const;

  std::string root_;
  std::vector<std::string> classes_;
  std::vector<Sample> samples_;
};

}  // namespace ds::data
