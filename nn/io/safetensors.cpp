#include "nn/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "nn/io/atomic_file.hpp"

namespace ds::nn {
namespace {

// The format is little-endian; tensors are copied to and from the file byte for byte.
static_assert(std::endian::native == std::endian::little,
              "the safetensors reader and writer assume a little-endian host");

using Json = nlohmann::ordered_json;  // keeps the header's keys in state-dict order

// The limit of the reference implementation: a larger header means a corrupt or foreign file.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::string_view kMetadataKey = "__metadata__";

struct StoredType {
  std::string_view name;  // the dtype string in the header
  std::uint64_t bytes;    // per element in the file
  DType dtype;            // what it becomes in memory
};

// I64 exists only for PyTorch's int64 buffers (BatchNorm's num_batches_tracked): we hold them
// as i32.
constexpr StoredType kStoredTypes[] = {
    {"F32", 4, DType::f32}, {"F64", 8, DType::f64}, {"I32", 4, DType::i32},
    {"I8", 1, DType::i8},   {"U8", 1, DType::u8},   {"I64", 8, DType::i32},
};
constexpr const StoredType& kI64 = kStoredTypes[5];

std::string describe_file(const std::string& path) { return concat("weights file '", path, "'"); }

bool is_batch_counter(const std::string& name) {
  constexpr std::string_view suffix = "num_batches_tracked";
  return name.ends_with(suffix) &&
         (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.');
}

const StoredType& stored_type_for_saving(const std::string& name, DType dtype) {
  if (dtype == DType::i32 && is_batch_counter(name)) return kI64;
  for (const auto& stored : kStoredTypes)
    if (stored.dtype == dtype) return stored;
  fail("weights file: no stored type for ", dtype_name(dtype));
}

// ---------------------------------------------------------------- reading

struct Entry {
  std::string name;
  const StoredType* stored;
  Shape shape;
  std::uint64_t begin, end;  // relative to the data section
};

struct FileContext {
  const std::string& path;
  template <typename... Parts>
  [[noreturn]] void fail_at(const std::string& key, Parts&&... parts) const {
    fail(describe_file(path), ": key '", key, "': ", std::forward<Parts>(parts)...);
  }
};

const StoredType& stored_type_named(const FileContext& file, const std::string& key,
                                    const std::string& name) {
  for (const auto& stored : kStoredTypes)
    if (stored.name == name) return stored;
  file.fail_at(key, "unknown dtype '", name, "' (deepshift reads F32, F64, I32, I8, U8, I64)");
}

std::uint64_t unsigned_field(const FileContext& file, const std::string& key, const Json& value,
                             const char* field) {
  if (!value.is_number_unsigned())
    file.fail_at(key, "'", field, "' must hold non-negative integers, got ", value.dump());
  return value.get<std::uint64_t>();
}

const Json& required_field(const FileContext& file, const std::string& key, const Json& entry,
                           const char* field) {
  const auto found = entry.find(field);
  if (found == entry.end()) file.fail_at(key, "missing field '", field, "'");
  return *found;
}

Entry parse_entry(const FileContext& file, const std::string& key, const Json& value) {
  if (!value.is_object()) file.fail_at(key, "entry is not a JSON object: ", value.dump());
  Entry entry{key, nullptr, {}, 0, 0};

  const Json& dtype = required_field(file, key, value, "dtype");
  if (!dtype.is_string()) file.fail_at(key, "'dtype' is not a string: ", dtype.dump());
  entry.stored = &stored_type_named(file, key, dtype.get<std::string>());

  const Json& shape = required_field(file, key, value, "shape");
  if (!shape.is_array()) file.fail_at(key, "'shape' is not an array: ", shape.dump());
  // Computed in bytes with overflow checks: a hostile shape must not wrap around to a size
  // that happens to match the offsets.
  std::uint64_t bytes = entry.stored->bytes;
  for (const Json& dim : shape) {
    const std::uint64_t size = unsigned_field(file, key, dim, "shape");
    if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        (size != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / size))
      file.fail_at(key, "shape ", shape.dump(), " is too large");
    bytes *= size;
    entry.shape.push_back(static_cast<std::int64_t>(size));
  }

  const Json& offsets = required_field(file, key, value, "data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    file.fail_at(key, "'data_offsets' must be [begin, end], got ", offsets.dump());
  entry.begin = unsigned_field(file, key, offsets[0], "data_offsets");
  entry.end = unsigned_field(file, key, offsets[1], "data_offsets");
  if (entry.end < entry.begin)
    file.fail_at(key, "data_offsets ", offsets.dump(), " end before they begin");
  if (entry.end - entry.begin != bytes)
    file.fail_at(key, "dtype ", entry.stored->name, " and shape ", shape.dump(), " need ", bytes,
                 " bytes but data_offsets ", offsets.dump(), " span ", entry.end - entry.begin);
  return entry;
}

WeightsMetadata parse_metadata(const FileContext& file, const Json& value) {
  if (!value.is_object()) file.fail_at(std::string(kMetadataKey), "must be a JSON object");
  WeightsMetadata metadata;
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string())
      file.fail_at(std::string(kMetadataKey), "value of '", key, "' is not a string");
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

// The spec: the tensors' data tile the data section exactly, without gaps or overlaps.
void check_layout(const FileContext& file, std::vector<Entry>& entries, std::uint64_t data_bytes) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  std::uint64_t covered = 0;
  for (const Entry& entry : entries) {
    if (entry.begin < covered)
      file.fail_at(entry.name, "data [", entry.begin, ", ", entry.end,
                   ") overlaps the previous tensor's, which ends at ", covered);
    if (entry.begin > covered)
      file.fail_at(entry.name, "data starts at ", entry.begin, ", leaving a gap after ", covered);
    if (entry.end > data_bytes)
      fail(describe_file(file.path), ": truncated: key '", entry.name, "' needs data up to byte ",
           entry.end, " but the data section holds ", data_bytes);
    covered = entry.end;
  }
  if (covered != data_bytes)
    fail(describe_file(file.path), ": ", data_bytes - covered,
         " bytes of data after the last tensor belong to no key");
}

void read_bytes(const FileContext& file, std::ifstream& in, void* data, std::uint64_t size) {
  if (size > 0 && !in.read(static_cast<char*>(data), static_cast<std::streamsize>(size)))
    fail(describe_file(file.path), ": truncated: the file ended while reading");
}

Tensor read_tensor(const FileContext& file, std::ifstream& in, const Entry& entry) {
  Tensor tensor = Tensor::empty(entry.shape, entry.stored->dtype);
  if (entry.stored != &kI64) {
    read_bytes(file, in, tensor.data_ptr(), entry.end - entry.begin);
    return tensor;
  }
  std::vector<std::int64_t> wide(static_cast<std::size_t>(tensor.numel()));
  read_bytes(file, in, wide.data(), entry.end - entry.begin);
  auto* narrow = tensor.data<std::int32_t>();
  for (std::size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < std::numeric_limits<std::int32_t>::min() ||
        wide[i] > std::numeric_limits<std::int32_t>::max())
      file.fail_at(entry.name, "I64 value ", wide[i], " at index ", i,
                   " does not fit the i32 tensor it loads into");
    narrow[i] = static_cast<std::int32_t>(wide[i]);
  }
  return tensor;
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const WeightsMetadata& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::set<std::string> names;
  std::vector<std::pair<const StoredType*, Tensor>> contents;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey)
      fail(describe_file(path), ": '", kMetadataKey, "' is reserved and cannot name a tensor");
    if (!names.insert(name).second) fail(describe_file(path), ": key '", name, "' appears twice");
    if (!tensor.defined()) fail(describe_file(path), ": key '", name, "' is an undefined tensor");
    const StoredType& stored = stored_type_for_saving(name, tensor.dtype());
    const std::uint64_t bytes = static_cast<std::uint64_t>(tensor.numel()) * stored.bytes;
    header[name] = Json{{"dtype", stored.name},
                        {"shape", tensor.shape()},
                        {"data_offsets", Json::array({offset, offset + bytes})}};
    offset += bytes;
    contents.emplace_back(&stored, tensor.detach().to(Device::cpu()).contiguous());
  }
  std::string text = header.dump();
  // Trailing spaces align the data section to 8 bytes, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');

  write_file_atomically(path, describe_file(path), [&](std::FILE* file, const std::string& temp) {
    const std::uint64_t length = text.size();
    write_bytes(file, &length, sizeof length, temp);
    write_bytes(file, text.data(), text.size(), temp);
    for (const auto& [stored, tensor] : contents) {
      if (stored != &kI64) {
        write_bytes(file, tensor.data_ptr(), tensor.numel() * stored->bytes, temp);
        continue;
      }
      const auto narrow = tensor.to_vector<std::int32_t>();
      const std::vector<std::int64_t> wide(narrow.begin(), narrow.end());
      write_bytes(file, wide.data(), wide.size() * sizeof(std::int64_t), temp);
    }
  });
}

WeightsFile read_safetensors(const std::string& path) {
  const FileContext file{path};
  std::error_code error;
  const std::uint64_t file_bytes = std::filesystem::file_size(path, error);
  if (error) fail(describe_file(path), ": cannot read: ", error.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(describe_file(path), ": cannot open: ", std::strerror(errno));

  if (file_bytes < 8)
    fail(describe_file(path), ": truncated: ", file_bytes,
         " bytes, fewer than the 8 of the header length");
  std::uint64_t header_bytes = 0;
  read_bytes(file, in, &header_bytes, sizeof header_bytes);
  if (header_bytes > kMaxHeaderBytes)
    fail(describe_file(path), ": header length ", header_bytes,
         " is absurd (over 100 MB): not a safetensors file");
  if (header_bytes > file_bytes - 8)
    fail(describe_file(path), ": truncated: the header needs ", header_bytes, " bytes but only ",
         file_bytes - 8, " follow its length");
  std::string text(header_bytes, '\0');
  read_bytes(file, in, text.data(), header_bytes);

  Json header;
  try {
    header = Json::parse(text);
  } catch (const Json::parse_error& parse_error) {
    fail(describe_file(path), ": header is not valid JSON: ", parse_error.what());
  }
  if (!header.is_object()) fail(describe_file(path), ": header is not a JSON object");

  WeightsFile result;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey)
      result.metadata = parse_metadata(file, value);
    else
      entries.push_back(parse_entry(file, key, value));
  }
  check_layout(file, entries, file_bytes - 8 - header_bytes);
  // Sorted and gap-free, so the tensors follow one another in the file.
  for (const Entry& entry : entries)
    result.tensors.push_back({entry.name, read_tensor(file, in, entry)});
  return result;
}

std::vector<NamedTensor> load_safetensors(const std::string& path) {
  return read_safetensors(path).tensors;
}

void save_weights(const Module& module, const std::string& path, const WeightsMetadata& metadata) {
  save_safetensors(path, module.state_dict(), metadata);
}

void load_weights(Module& module, const std::string& path) {
  module.load_state_dict(load_safetensors(path), describe_file(path));
}

}  // namespace ds::nn
