#include "fixtures.hpp"

#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace ds::test {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ds-data-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary folder");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::file(const std::string& relative) const {
  const std::filesystem::path full = path_ / relative;
  std::filesystem::create_directories(full.parent_path());
  return full.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string gzip_bytes(const std::string& bytes) {
  z_stream stream{};
  // 16 + MAX_WBITS writes a gzip header and trailer.
  if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&stream, bytes.size()) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

std::string idx_header(const std::vector<std::uint32_t>& dims) {
  std::string out{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(d >> shift));
  }
  return out;
}

std::string idx_bytes(const std::vector<std::uint32_t>& dims,
                      const std::vector<std::uint8_t>& pattern) {
  std::string out = idx_header(dims);
  std::uint64_t count = 1;
  for (std::uint32_t d : dims) count *= d;
  for (std::uint64_t i = 0; i < count; ++i) {
    out.push_back(static_cast<char>(pattern.empty() ? i : pattern[i % pattern.size()]));
  }
  return out;
}

std::uint8_t cifar_pixel(std::int64_t record, std::int64_t pixel) {
  return static_cast<std::uint8_t>((record * 7 + pixel) % 256);
}

std::string cifar_bytes(const std::vector<std::vector<std::uint8_t>>& labels) {
  std::string out;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    for (std::uint8_t label : labels[i]) out.push_back(static_cast<char>(label));
    for (std::int64_t p = 0; p < 3072; ++p) {
      out.push_back(static_cast<char>(cifar_pixel(static_cast<std::int64_t>(i), p)));
    }
  }
  return out;
}

}  // namespace ds::test
