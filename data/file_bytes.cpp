#include "data/file_bytes.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "tensor/error.hpp"

namespace ds::data {

std::string read_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) fail(path, ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  // In one read where the size is known (a character at a time, MNIST's 26 MB took a tenth of a
  // trainer's start), then whatever a pipe or a growing file still holds.
  std::string bytes;
  const auto size = std::filesystem::file_size(path, error);
  if (!error && size > 0) {
    bytes.resize(size);
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    bytes.resize(static_cast<std::size_t>(in.gcount()));
  }
  if (!in.bad() && in.good())
    bytes.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) fail(path, ": read error");
  return bytes;
}

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string gunzip(std::string_view bytes, const std::string& name, std::size_t max_bytes) {
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip header and trailer, not a raw zlib stream.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) fail(name, ": cannot start zlib");
  const auto refuse = [&](const auto&... reason) {
    inflateEnd(&stream);
    fail(name, ": ", reason...);
  };
  // One byte of room past the limit tells data over the limit from data exactly at it.
  const std::size_t capacity = max_bytes + (max_bytes < SIZE_MAX ? 1 : 0);
  std::string out;
  // A gzip member ends with its size modulo 2^32; the last one's, capped, sizes the buffer so
  // that a file of one member is inflated without growing it (each doubling zeroes and copies).
  if (bytes.size() >= 18) {
    const auto* tail = reinterpret_cast<const unsigned char*>(bytes.data() + bytes.size() - 4);
    const std::size_t stated = tail[0] | tail[1] << 8 | tail[2] << 16 | std::size_t{tail[3]} << 24;
    out.resize(std::min({capacity, stated + 1, std::size_t{1} << 26}));
  }
  std::size_t filled = 0, consumed = 0;
  int status = Z_OK;
  for (;;) {
    if (status == Z_STREAM_END) {
      const std::string_view rest = bytes.substr(consumed);
      if (std::all_of(rest.begin(), rest.end(), [](char c) { return c == 0; })) break;
      if (!is_gzip(rest)) {
        refuse("data that is not gzip follows the last gzip member (", rest.size(),
               " bytes from byte ", consumed, ")");
      }
      inflateReset(&stream);
    }
    // Grown by doubling only when full: a file of many small members then costs no more
    // zeroing than one member of the same output.
    if (filled == out.size())
      out.resize(std::min(capacity, std::max<std::size_t>(2 * out.size(), 1u << 16)));
    // zlib counts in uInt, so feed and drain at most 1 GiB per call.
    const std::size_t in_chunk = std::min<std::size_t>(bytes.size() - consumed, 1u << 30);
    const std::size_t room = std::min<std::size_t>(out.size() - filled, 1u << 30);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_chunk);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + filled);
    stream.avail_out = static_cast<uInt>(room);
    status = inflate(&stream, Z_NO_FLUSH);
    consumed += in_chunk - stream.avail_in;
    filled += room - stream.avail_out;
    if (filled > max_bytes) refuse("gzip data inflates to more than ", max_bytes, " bytes");
    if (status == Z_BUF_ERROR && consumed == bytes.size() && stream.avail_out != 0)
      refuse("truncated gzip data (the stream ends after ", bytes.size(), " bytes)");
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR)
      refuse("corrupt gzip data (", stream.msg ? stream.msg : "unknown zlib error", ")");
  }
  inflateEnd(&stream);
  out.resize(filled);
  return out;
}

}  // namespace ds::data
