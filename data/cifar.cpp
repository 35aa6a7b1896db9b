#include "data/cifar.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "data/file_bytes.hpp"
#include "tensor/error.hpp"

namespace ds::data {
namespace {

constexpr std::int64_t kImageBytes = 3 * 32 * 32;

struct LabelField {
  const char* what;
  std::int32_t classes;
};

std::vector<LabelField> label_fields(CifarFormat format) {
  if (format == CifarFormat::cifar10) return {{"label", 10}};
  return {{"coarse label", 20}, {"fine label", 100}};
}

// The folder that holds the files: `root` itself or its standard sub-folder.
std::filesystem::path data_folder(const std::string& root, const char* subfolder,
                                  const char* marker, const char* dataset) {
  std::error_code error;
  if (!std::filesystem::is_directory(root, error)) {
    fail(dataset, ": directory ", root, " does not exist");
  }
  const std::filesystem::path nested = std::filesystem::path(root) / subfolder;
  if (!std::filesystem::exists(std::filesystem::path(root) / marker, error) &&
      std::filesystem::is_directory(nested, error)) {
    return nested;
  }
  return root;
}

CifarRecords concatenate(const std::vector<CifarRecords>& parts) {
  std::int64_t count = 0;
  for (const auto& part : parts) count += part.images.size(0);
  const std::int64_t label_count = parts.front().labels.size(1);
  CifarRecords all{Tensor::empty({count, 3, 32, 32}, DType::u8),
                   Tensor::empty({count, label_count}, DType::i32)};
  std::uint8_t* image = all.images.data<std::uint8_t>();
  std::int32_t* label = all.labels.data<std::int32_t>();
  for (const auto& part : parts) {
    const std::int64_t n = part.images.size(0);
    std::memcpy(image, part.images.data<std::uint8_t>(), n * kImageBytes);
    std::memcpy(label, part.labels.data<std::int32_t>(), n * label_count * sizeof(std::int32_t));
    image += n * kImageBytes;
    label += n * label_count;
  }
  return all;
}

CifarRecords read_cifar_files(const std::filesystem::path& folder,
                              const std::vector<std::string>& files, CifarFormat format) {
  std::vector<CifarRecords> parts;
  for (const auto& file : files) {
    const std::string path = (folder / file).string();
    parts.push_back(parse_cifar(read_file(path), path, format));
  }
  return parts.size() == 1 ? parts.front() : concatenate(parts);
}

}  // namespace

CifarRecords parse_cifar(std::string_view bytes, const std::string& name, CifarFormat format) {
  const std::vector<LabelField> fields = label_fields(format);
  const auto label_bytes = static_cast<std::int64_t>(fields.size());
  const std::int64_t record = label_bytes + kImageBytes;
  const auto size = static_cast<std::int64_t>(bytes.size());
  if (size == 0) fail(name, ": empty file, no CIFAR records");
  if (size % record != 0) {
    fail(name, ": truncated CIFAR file (", size, " bytes is not a whole number of ", record,
         "-byte records)");
  }
  const std::int64_t count = size / record;
  CifarRecords out{Tensor::empty({count, 3, 32, 32}, DType::u8),
                   Tensor::empty({count, label_bytes}, DType::i32)};
  const auto* in = reinterpret_cast<const std::uint8_t*>(bytes.data());
  std::uint8_t* image = out.images.data<std::uint8_t>();
  std::int32_t* label = out.labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < count; ++i, in += record) {
    for (std::int64_t f = 0; f < label_bytes; ++f) {
      const std::int32_t value = in[f];
      if (value >= fields[f].classes) {
        fail(name, ": ", fields[f].what, " ", value, " of record ", i, " is out of range [0, ",
             fields[f].classes, ")");
      }
      label[i * label_bytes + f] = value;
    }
    std::memcpy(image + i * kImageBytes, in + label_bytes, kImageBytes);
  }
  return out;
}

TensorDataset load_cifar10(const std::string& root, Split split) {
  const auto folder = data_folder(root, "cifar-10-batches-bin", "test_batch.bin", "CIFAR-10");
  const std::vector<std::string> files =
      split == Split::train
          ? std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                     "data_batch_4.bin", "data_batch_5.bin"}
          : std::vector<std::string>{"test_batch.bin"};
  CifarRecords records = read_cifar_files(folder, files, CifarFormat::cifar10);
  // Error messages count the training samples over the five files end to end.
  const std::string name = files.size() > 1 ? "data_batch_{1..5}.bin" : files.front();
  return TensorDataset(records.images, records.labels.select(1, 0), 10, (folder / name).string());
}

TensorDataset load_cifar100(const std::string& root, Split split, Cifar100Label label) {
  const auto folder = data_folder(root, "cifar-100-binary", "test.bin", "CIFAR-100");
  const std::string file = split == Split::train ? "train.bin" : "test.bin";
  CifarRecords records = read_cifar_files(folder, {file}, CifarFormat::cifar100);
  const bool fine = label == Cifar100Label::fine;
  return TensorDataset(records.images, records.labels.select(1, fine ? 1 : 0), fine ? 100 : 20,
                       (folder / file).string());
}

}  // namespace ds::data
