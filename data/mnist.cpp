#include "data/mnist.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "data/file_bytes.hpp"
#include "tensor/error.hpp"

namespace ds::data {
namespace {

constexpr unsigned char kUnsignedByteType = 0x08;
constexpr std::size_t kMaxIdxDims = 8;  // MNIST needs 3; more is a corrupt header

std::uint32_t big_endian_u32(const unsigned char* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

Tensor parse_raw_idx(std::string_view bytes, const std::string& name) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 4) {
    fail(name, ": truncated IDX file (", bytes.size(), " bytes, no room for the magic number)");
  }
  if (data[0] != 0 || data[1] != 0) {
    fail(name, ": wrong magic number (first bytes ", int{data[0]}, " ", int{data[1]},
         ", an IDX file starts with 0 0): not an IDX file");
  }
  if (data[2] != kUnsignedByteType) {
    fail(name, ": unsupported IDX element type 0x", std::hex, int{data[2]},
         " (this reader handles unsigned bytes, 0x08)");
  }
  const std::size_t ndim = data[3];
  if (ndim == 0 || ndim > kMaxIdxDims) {
    fail(name, ": wrong magic number (", ndim, " dimensions; expected 1 to ", kMaxIdxDims, ")");
  }
  const std::size_t header = 4 + 4 * ndim;
  if (bytes.size() < header) {
    fail(name, ": truncated IDX header (", bytes.size(), " bytes, the header needs ", header, ")");
  }
  Shape shape;
  std::uint64_t count = 1;
  // An empty array may still have absurd other sizes, which would overflow the tensor's own
  // element count (found by fuzz_idx): bound the product of the non-zero sizes too.
  std::int64_t nonzero_product = 1;
  for (std::size_t d = 0; d < ndim; ++d) {
    const std::uint32_t size = big_endian_u32(data + 4 + 4 * d);
    shape.push_back(size);
    // A corrupt header may multiply past 2^64; saturating keeps the comparison below right.
    if (__builtin_mul_overflow(count, std::uint64_t{size}, &count)) count = UINT64_MAX;
    if (size != 0 &&
        __builtin_mul_overflow(nonzero_product, std::int64_t{size}, &nonzero_product)) {
      fail(name, ": corrupt IDX header (sizes ", shape_str(shape), "... overflow 64 bits)");
    }
  }
  const std::uint64_t available = bytes.size() - header;
  if (count > available) {
    fail(name, ": truncated IDX data (the header promises ", shape_str(shape), " = ", count,
         " bytes, the file holds ", available, ")");
  }
  if (count < available) {
    fail(name, ": IDX data has ", available - count, " bytes left over after the ",
         shape_str(shape), " array its header describes");
  }
  Tensor out = Tensor::empty(shape, DType::u8);
  if (count > 0) std::memcpy(out.data<std::uint8_t>(), data + header, count);
  return out;
}

// The MNIST distribution ships gzip'd files; some mirrors unpack them. Accept either.
std::string find_idx_file(const std::string& dir, const std::string& base) {
  const std::filesystem::path raw = std::filesystem::path(dir) / base;
  std::error_code error;
  if (std::filesystem::exists(raw, error)) return raw.string();
  const std::string gz = raw.string() + ".gz";
  if (std::filesystem::exists(gz, error)) return gz;
  fail("MNIST: neither ", raw.string(), " nor ", gz, " exists");
}

}  // namespace

Tensor parse_idx(std::string_view bytes, const std::string& name) {
  if (is_gzip(bytes)) return parse_raw_idx(gunzip(bytes, name), name);
  return parse_raw_idx(bytes, name);
}

Tensor read_idx(const std::string& path) { return parse_idx(read_file(path), path); }

TensorDataset load_mnist(const std::string& dir, Split split) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    fail("MNIST: directory ", dir, " does not exist");
  }
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string image_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  const Tensor images = read_idx(image_path);
  const Tensor labels = read_idx(label_path);
  if (images.dim() != 3) {
    fail(image_path, ": expected images [N, rows, cols], got ", shape_str(images.shape()));
  }
  if (labels.dim() != 1) fail(label_path, ": expected labels [N], got ", shape_str(labels.shape()));
  if (images.size(0) != labels.size(0)) {
    fail(image_path, " holds ", images.size(0), " images but ", label_path, " holds ",
         labels.size(0), " labels: counts disagree");
  }
  constexpr std::int64_t kClasses = 10;
  const std::uint8_t* label = labels.data<std::uint8_t>();
  std::vector<std::int32_t> label_values(label, label + labels.numel());
  for (std::size_t i = 0; i < label_values.size(); ++i) {
    if (label_values[i] >= kClasses) {
      fail(label_path, ": label ", label_values[i], " of sample ", i, " is out of range [0, ",
           kClasses, ")");
    }
  }
  return TensorDataset(images.unsqueeze(1), Tensor::from_vector(label_values, {labels.size(0)}),
                       kClasses, image_path);
}

}  // namespace ds::data
