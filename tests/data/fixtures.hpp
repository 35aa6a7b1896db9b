#pragma once
// Small dataset files made by the tests themselves: IDX and CIFAR byte strings, gzip, and a
// temporary folder that cleans up after itself.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ds::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / relative, as a string; creates the parent folders.
  std::string file(const std::string& relative) const;

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
std::string gzip_bytes(const std::string& bytes);

// The header of an IDX file of unsigned bytes with these dimensions.
std::string idx_header(const std::vector<std::uint32_t>& dims);
// An IDX file of unsigned bytes with the given dimensions; values cycle through `pattern`
// (the index of the byte when empty).
std::string idx_bytes(const std::vector<std::uint32_t>& dims,
                      const std::vector<std::uint8_t>& pattern = {});

// CIFAR records whose label bytes are `labels[i]` and whose pixel p of record i is
// (i * 7 + p) % 256.
std::string cifar_bytes(const std::vector<std::vector<std::uint8_t>>& labels);
std::uint8_t cifar_pixel(std::int64_t record, std::int64_t pixel);

}  // namespace ds::test
