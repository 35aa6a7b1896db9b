#include "data/image_folder.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>

#include "data/image.hpp"
#include "tensor/error.hpp"

namespace fs = std::filesystem;

namespace ds::data {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::vector<std::string> sorted_class_names(const fs::path& root) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> sorted_image_files(const fs::path& folder,
                                            const std::vector<std::string>& extensions) {
  std::vector<std::string> files;
  // Symbolic links to folders are not followed inside a class: a link cycle would never end.
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    const std::string extension = lower(entry.path().extension().string());
    if (std::find(extensions.begin(), extensions.end(), extension) != extensions.end()) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, std::vector<std::string> extensions)
    : root_(root) {
  for (auto& extension : extensions) extension = lower(extension);
  std::error_code error;
  if (!fs::is_directory(root, error)) fail("ImageFolder: directory ", root, " does not exist");
  try {
    classes_ = sorted_class_names(root);
    if (classes_.empty()) fail("ImageFolder: ", root, " has no class sub-folders");
    for (std::size_t label = 0; label < classes_.size(); ++label) {
      const fs::path folder = fs::path(root) / classes_[label];
      const std::vector<std::string> files = sorted_image_files(folder, extensions);
      if (files.empty()) {
        fail("ImageFolder: class folder ", folder.string(), " is empty (no image files)");
      }
      for (const auto& file : files) samples_.push_back({file, static_cast<std::int32_t>(label)});
    }
  } catch (const fs::filesystem_error& failure) {
    fail("ImageFolder: cannot scan ", root, ": ", failure.what());
  }
}

const ImageFolder::Sample& ImageFolder::sample(std::int64_t index) const {
  if (index < 0 || index >= size()) {
    fail("ImageFolder ", root_, ": sample index ", index, " is outside [0, ", size(), ")");
  }
  return samples_[static_cast<std::size_t>(index)];
}

Example ImageFolder::get(std::int64_t index) const {
  const Sample& chosen = sample(index);
  return {read_image(chosen.path), chosen.label};
}

const std::string& ImageFolder::path(std::int64_t index) const { return sample(index).path; }

std::int32_t ImageFolder::label(std::int64_t index) const { return sample(index).label; }

}  // namespace ds::data
