#include "nn/io/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>

#include "tensor/error.hpp"

namespace ds::nn {

void write_bytes(std::FILE* file, const void* data, std::size_t size, const std::string& temp) {
  if (size > 0 && std::fwrite(data, 1, size, file) != size)
    fail("cannot write '", temp, "': ", std::strerror(errno));
}

void write_file_atomically(
    const std::string& path, const std::string& what,
    const std::function<void(std::FILE* file, const std::string& temp)>& write) {
  const std::string temp = path + ".tmp";
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) fail(what, ": cannot create '", temp, "': ", std::strerror(errno));
  const auto discard = [&] { std::remove(temp.c_str()); };
  try {
    write(file, temp);
    if (std::fflush(file) != 0) fail("cannot write '", temp, "': ", std::strerror(errno));
    // Devices that cannot be synced (EINVAL) have nothing to lose in a crash.
    if (::fsync(::fileno(file)) != 0 && errno != EINVAL)
      fail("cannot sync '", temp, "': ", std::strerror(errno));
  } catch (const std::exception& error) {
    std::fclose(file);
    discard();
    fail(what, ": ", error.what());
  }
  if (std::fclose(file) != 0) {
    discard();
    fail(what, ": cannot close '", temp, "': ", std::strerror(errno));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    discard();
    fail(what, ": cannot rename '", temp, "' onto it: ", error.message());
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, "'" + path + "'", [&](std::FILE* file, const std::string& temp) {
    write_bytes(file, text.data(), text.size(), temp);
  });
}

}  // namespace ds::nn
